"""``mspd-edge protect`` and ``mspd-edge revert``: a thin layer over ``protect_files``."""
import sys
from pathlib import Path

import click
from tqdm import tqdm

from .. import defaults
from ..io import ImageError
from ..labels import FOLDER, MODEL_MODES, LabelError, label_source, pipeline_mode
from ..protect import NoInputError, protect_files
from .args import apply, backend_args, backend_options, build_models, cascade_args, check_classes, settings_from
from .common import EXIT_FAILED, fail, write_report


def _check_labels(ctx, param, value):
    if value in MODEL_MODES or value == FOLDER or Path(value).is_file():
        return value
    raise click.BadParameter(f"{value!r} is not one of {', '.join(MODEL_MODES + (FOLDER,))} "
                             "nor an existing CSV file")


_JOB_OPTIONS = [
    click.argument("inputs", metavar="INPUT...", nargs=-1, required=True),
    click.option("-o", "--outdir", required=True, type=click.Path(file_okay=False, path_type=Path),
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
    click.option("--overwrite", is_flag=True, help="Replace existing outputs (else they are skipped)."),
    click.option("-q", "--quiet", is_flag=True,
                 help="Print errors only: no progress bar, skip notes or summary."),
]

_COMMON_HELP = """
INPUT: image files (PNG, JPEG, WebP, BMP or TIFF, 8-bit gray, RGB or with alpha), folders
or glob patterns. Each result is OUTDIR/<stem>.png (folder inputs keep their sub-paths):
same size and channels, every value within --eps of the original (8-bit rounding
included). Gray stays gray, alpha is copied, EXIF orientation is applied. An image of
another size than the model's input (32x32 for CIFAR-10 models) is resized to it for the
gradients; the perturbation is resized back and added at full resolution.

Existing outputs are kept (and reported) unless --overwrite. Exit status: 0 when every
input was written or skipped, 1 when some input failed (one "error: FILE: why" line each
on stderr; the others are still processed), 2 for usage errors, including no input found.
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
    """Build the backend, protect (or revert) the inputs, report, and exit with the status."""
    labels_option = options["labels"]
    models = build_models(options["backend"], backend_options(options), labels_option == "classifier")
    check_classes(models)
    classes = models.backbone.classes
    try:
        labels = label_source(labels_option, classes)
    except LabelError as exc:
        raise click.BadParameter(str(exc), param_hint="--labels") from None
    quiet = options["quiet"]
    settings = settings_from(options, pipeline_mode(labels_option), options["batch_size"])
    try:
        summary = protect_files(options["inputs"], options["outdir"], models.backend, settings,
                                reverse=reverse, labels=labels, classes=classes,
                                recursive=options["recursive"], overwrite=options["overwrite"],
                                max_pixels=options["max_pixels"], metrics=options["report"] is not None,
                                progress=not quiet, log=_logger(quiet))
    except NoInputError as exc:
        raise click.UsageError(str(exc)) from None
    except ImageError as exc:
        fail(str(exc))
    if options["report"]:
        write_report(options["report"], summary.report(**_job_settings(options, models)))
    if not quiet:
        _print_summary(summary, models.backend.input_size)
    click.get_current_context().exit(EXIT_FAILED if summary.errors else 0)


def _logger(quiet):
    def log(line, error):
        if error or not quiet:
            tqdm.write(line, file=sys.stderr)   # keeps a running progress bar intact
    return log


def _job_settings(options, models):
    return {"inputs": list(options["inputs"]), "outdir": str(options["outdir"]),
            "recursive": options["recursive"], "labels": options["labels"],
            "backend": options["backend"], "device": options["device"],
            "provider": getattr(models.backend, "provider", None),
            "precision": getattr(models.backend, "precision", "fp32"),
            "model_dir": None if getattr(models.backend, "bundle", None) is None
            else str(models.backend.bundle.root),
            "backbone": models.backbone.name,
            "classifier": None if models.classifier is None else models.classifier.name,
            "input_size": list(models.backend.input_size), "max_pixels": options["max_pixels"]}


def _print_summary(summary, input_size):
    verb = "reverted" if summary.reverse else "protected"
    click.echo(f"{verb} {len(summary.images)} image(s) ({len(summary.skipped)} skipped, "
               f"{len(summary.errors)} failed); seed {summary.settings.seed}", err=True)
    resized = sum(record["resized"] for record in summary.images)
    if resized:
        h, w = input_size[1:]
        click.echo(f"note: {resized} image(s) not {w}x{h}: the perturbation was computed at {w}x{h} "
                   "and resized to each image", err=True)
