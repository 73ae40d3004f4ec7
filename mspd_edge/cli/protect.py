"""``mspd-edge protect`` and ``mspd-edge revert``: a thin layer over ``protect_files``."""
import signal
import threading
from pathlib import Path

import click

from .. import defaults
from ..imaging import budget_levels
from ..io import OUTPUT_FORMATS, check_writable
from ..job import FileOptions, NoInputError, OutputError
from ..labels import FOLDER, MODEL_MODES, LabelError, label_source, pipeline_mode
from ..protect import protect_files
from .args import (apply, backend_args, backend_choice, backend_options, build_models, cascade_args, check_classes,
                   settings_from)
from .common import EXIT_ABORTED, OneLineUsageError
from .distributed import OutputFolder, engine_args, run_on_engine
from .job import finish, job_settings, logger, start_notes, stop_on_ctrl_c


def _check_labels(ctx, param, value):
    if value in MODEL_MODES or value == FOLDER or Path(value).is_file():
        return value
    raise click.BadParameter(f"{value!r} is not one of {', '.join(MODEL_MODES + (FOLDER,))} "
                             "nor an existing CSV file")


_JOB_OPTIONS = [
    click.argument("inputs", metavar="INPUT...", nargs=-1, required=True),
    click.option("-o", "--outdir", required=True, type=OutputFolder(),
                 help="Output folder (created when missing)."),
    click.option("-r", "--recursive", is_flag=True, help="Also look in the subfolders of folder inputs."),
    cascade_args(),
    click.option("--labels", default="classifier", show_default=True, callback=_check_labels,
                 metavar="classifier|couple|folder|FILE.csv",
                 help="Label per image: the classifier's prediction, the backbone's (couple), "
                      "ground truth from the parent folder's name, or from a CSV file with the "
                      "columns file,label (file relative to the CSV; label a class index or name)."),
    backend_args(),
    click.option("--batch-size", type=click.IntRange(min=1),
                 help="Images per cascade call.  [default: automatic]"),
    click.option("--max-pixels", type=click.IntRange(min=1), default=defaults.MAX_PIXELS,
                 show_default=True, help="Refuse images with more pixels."),
    click.option("--report", type=click.Path(dir_okay=False, path_type=Path),
                 help="Write a JSON report: per image the label, L-inf, L2, SSIM and time; "
                      "the settings, including the seed."),
    click.option("--format", "fmt", type=click.Choice(OUTPUT_FORMATS), default=OUTPUT_FORMATS[0],
                 show_default=True, help="Output format, lossless either way (WebP: smaller files; "
                                         "no gray mode, so gray is written as RGB)."),
    click.option("--overwrite", is_flag=True, help="Replace existing outputs (else they are skipped)."),
    click.option("-q", "--quiet", is_flag=True,
                 help="Print errors only: no progress bar, skip notes or summary."),
    engine_args(),
]

_COMMON_HELP = """
INPUT: image files (PNG, JPEG, WebP, BMP or TIFF, 8-bit gray, RGB or with alpha), folders
or glob patterns; a folder's other files, and its subfolders unless -r, are skipped and
reported. Each result is OUTDIR/<stem>.png (or .webp): a file input by its name, a folder
input's files by their path inside that folder (every input shares OUTDIR). Same size and
channels, every value within --eps of the original (8-bit rounding included), with the
input's ICC profile, EXIF (orientation applied) and XMP. Two inputs with one output
(photo.jpg and photo.png; a/x.png and b/x.png of the folder inputs a and b) are an error for
the second that names both. An image of another size than the model's input (32x32 for
CIFAR-10 models) is resized to it for the gradients; the perturbation is resized back and
added at full resolution. The result depends on the image and the settings alone.

Existing outputs are kept (and reported) unless --overwrite, so running a stopped job again
finishes it. Ctrl-C stops after the current image(s) (twice: at once), on either engine,
and writes the report of what finished (the rest: pending). Exit status: 0 when every input was written or skipped, 1 when some
input failed (one "error: FILE: why" line each on stderr; the others are still processed),
2 for usage errors (no input found, an output folder that cannot be written), 130 when
interrupted.
"""


def _job_command(name, summary_line):
    def decorate(function):
        function.__doc__ = f"{summary_line}\n{_COMMON_HELP}"
        return click.command(name)(apply(_JOB_OPTIONS)(function))
    return decorate


@_job_command("protect", "Protect images before publishing them (MSPD / MCGS).")
def protect_command(**options):
    run_job(options, reverse=False)


@_job_command("revert", "Preemptive Reversion of protected images: clip(2 x - MCGS(x)).\n\n"
                        "A diagnostic attack that strips protection given the backbone; not a defense.")
def revert_command(**options):
    run_job(options, reverse=True)


def run_job(options, reverse):
    """Build the backend, protect (or revert) the inputs on the engine, report, and exit with the
    status; the first Ctrl-C stops the job after its current image(s), a second one at once."""
    try:
        with stop_on_ctrl_c() as stop:
            status = _run_job(options, reverse, stop)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        status = EXIT_ABORTED
    if status == EXIT_ABORTED and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)   # a late Ctrl-C must not turn exit 130 into a kill
    click.get_current_context().exit(status)


def _run_job(options, reverse, stop):
    status = run_on_engine(options, reverse, stop)   # --engine ray: cli/distributed.py
    if status is not None:
        return status
    labels_option = options["labels"]
    options["backend"] = backend_choice(options)
    models = build_models(options["backend"], backend_options(options), labels_option == "classifier")
    check_classes(models)
    classes = models.backbone.classes
    try:
        labels = label_source(labels_option, classes)
    except LabelError as exc:
        raise click.BadParameter(str(exc), param_hint="--labels") from None
    quiet = options["quiet"]
    settings = settings_from(options, pipeline_mode(labels_option), options["batch_size"])
    _check_report_folder(options["report"])
    if options["eps"] is not None and budget_levels(settings.eps) != options["eps"] and not quiet:
        click.echo(f"note: --eps {options['eps']:g}: the outputs change by at most "
                   f"{budget_levels(settings.eps)}/255 (whole 8-bit levels)", err=True)
    file_options = FileOptions(options["fmt"], options["max_pixels"], options["report"] is not None, classes)
    notes = start_notes(quiet, options["eps"])
    try:
        summary = protect_files(options["inputs"], options["outdir"], models.backend, settings,
                                options=file_options, reverse=reverse, labels=labels,
                                recursive=options["recursive"], overwrite=options["overwrite"],
                                progress=not quiet, log=logger(quiet), stop=stop,
                                on_start=lambda sizes: notes(sizes, models.backbone))
    except NoInputError as exc:
        raise click.UsageError(str(exc)) from None
    except OutputError as exc:
        raise OneLineUsageError(str(exc)) from None
    return finish(options, summary, summary.report(**_job_settings(options, models)))


def _check_report_folder(report):
    if report is not None:
        try:
            check_writable(report.parent)
        except OSError as exc:
            raise OneLineUsageError(f"{report}: cannot write the report there: {exc.strerror or exc}") from None


def _job_settings(options, models):
    return job_settings(options, backend=options["backend"], device=options["device"],
                        provider=models.backend.provider, precision=models.backend.precision,
                        model_dir=None if models.backend.bundle is None else str(models.backend.bundle.root),
                        backbone=models.backbone.name, dataset=models.backbone.dataset,
                        classifier=None if models.classifier is None else models.classifier.name,
                        input_size=list(models.backend.input_size), max_pixels=options["max_pixels"])
