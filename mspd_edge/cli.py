"""The ``mspd-edge`` command line: a thin layer over :func:`mspd_edge.protect.protect_files`.

Backends are built lazily by the functions in ``BACKENDS`` (torch is imported only for
``--backend torch``), so torch-free backends can share this module.
"""
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import click
from tqdm import tqdm

from . import __version__, defaults
from .camera.command import camera_command
from .io import ImageError, write_atomic
from .labels import FOLDER, MODEL_MODES, LabelError, label_source, pipeline_mode
from .pipeline import Settings, check_epochs
from .train.command import train_command
from .protect import NoInputError, protect_files

DEVICES = ("cpu", "cuda")
EXIT_FAILED = 1   # some input failed; click uses 2 for usage errors


@dataclass
class Models:
    """A ready backend and the metadata (``ModelInfo``) of the models behind it."""

    backend: object
    backbone: object
    classifier: object | None


def _torch_models(backbone, classifier, device, need_classifier):
    """The reference PyTorch backend for zoo names or checkpoints."""
    import torch

    from .torch_backend import TorchBackend
    from .zoo import load_model

    if device == "cuda" and not torch.cuda.is_available():
        raise click.BadParameter("CUDA is not available on this machine", param_hint="--device")
    back = _load(load_model, backbone, "--backbone")
    if need_classifier and classifier is None:
        classifier = back.info.pair
        if classifier is None:
            raise click.UsageError(f"backbone {back.info.name} has no paired classifier: "
                                   "pass --classifier, or use --labels couple")
    cls = _load(load_model, classifier, "--classifier") if need_classifier else None
    return Models(TorchBackend(back, cls, device), back.info, None if cls is None else cls.info)


def _load(load_model, name, option):
    try:
        return load_model(name)
    except (ValueError, KeyError, OSError, RuntimeError) as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None


BACKENDS = {"torch": _torch_models}   # name -> (backbone, classifier, device, need_classifier) -> Models


def _check_epochs(ctx, param, value):
    try:
        return check_epochs(value)
    except ValueError:
        raise click.BadParameter("a non-empty string of F and B, e.g. FB") from None


def _check_labels(ctx, param, value):
    if value in MODEL_MODES or value == FOLDER or Path(value).is_file():
        return value
    raise click.BadParameter(f"{value!r} is not one of {', '.join(MODEL_MODES + (FOLDER,))} "
                             "nor an existing CSV file")


_OPTIONS = [
    click.argument("inputs", metavar="INPUT...", nargs=-1, required=True),
    click.option("-o", "--outdir", required=True, type=click.Path(file_okay=False, path_type=Path),
                 help="Output folder (created when missing)."),
    click.option("-r", "--recursive", is_flag=True, help="Also look in the subfolders of folder inputs."),
    click.option("--eps", type=click.FloatRange(0, 255, min_open=True),
                 help="L-inf budget in 1/255 units.  [default: the backbone's, 8 for CIFAR-10]"),
    click.option("--n-samples", type=click.IntRange(min=1), default=defaults.N_SAMPLES,
                 show_default=True, help="Noisy copies per smoothing step."),
    click.option("--lr", type=click.FloatRange(0, min_open=True), default=defaults.LR,
                 show_default=True, help="Epoch learning rate."),
    click.option("--epochs", default=defaults.EPOCHS, show_default=True, callback=_check_epochs,
                 help="Epoch sequence, F forward and B backward."),
    click.option("--seed", type=click.IntRange(min=0),
                 help="Noise seed.  [default: a fresh one, printed and in the report]"),
    click.option("--labels", default="classifier", show_default=True, callback=_check_labels,
                 metavar="classifier|couple|folder|FILE.csv",
                 help="Label per image: the classifier's prediction, the backbone's (couple), "
                      "ground truth from the parent folder's name, or from a CSV file with the "
                      "columns file,label (file relative to the CSV; label a class index or name)."),
    click.option("--backbone", default=defaults.BACKBONE, show_default=True,
                 help="Backbone whose gradients protect: a zoo name or a checkpoint file."),
    click.option("--classifier", help="Label classifier (only for --labels classifier): a zoo name "
                                      "or a checkpoint file.  [default: the backbone's pair]"),
    click.option("--batch-size", type=click.IntRange(min=1),
                 help="Images per cascade call.  [default: automatic]"),
    click.option("--device", type=click.Choice(DEVICES), default=DEVICES[0], show_default=True,
                 help="Where the models run."),
    click.option("--backend", type=click.Choice(sorted(BACKENDS)), default="torch", show_default=True,
                 help="Implementation of the cascade."),
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


def _job_command(summary_line):
    def decorate(function):
        function.__doc__ = f"{summary_line}\n{_COMMON_HELP}"
        for option in reversed(_OPTIONS):
            function = option(function)
        return function
    return decorate


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="mspd-edge")
def main():
    """Preemptive image protection with the MCGS cascade (MSPD)."""


main.add_command(camera_command)
main.add_command(train_command)


@main.command()
@_job_command("Protect images before publishing them (MSPD / MCGS).")
def protect(**options):
    _run_job(options, reverse=False)


@main.command()
@_job_command("Preemptive Reversion of protected images: clip(2 x - MCGS(x)).\n\n"
              "A diagnostic attack that strips protection given the backbone; not a defense.")
def revert(**options):
    _run_job(options, reverse=True)


def _run_job(options, reverse):
    labels_option = options["labels"]
    models = BACKENDS[options["backend"]](options["backbone"], options["classifier"],
                                          options["device"], labels_option == "classifier")
    _check_classes(models)
    classes = models.backbone.classes
    try:
        labels = label_source(labels_option, classes)
    except LabelError as exc:
        raise click.BadParameter(str(exc), param_hint="--labels") from None
    quiet = options["quiet"]
    try:
        summary = protect_files(options["inputs"], options["outdir"], models.backend, _settings(options),
                                reverse=reverse, labels=labels, classes=classes,
                                recursive=options["recursive"], overwrite=options["overwrite"],
                                max_pixels=options["max_pixels"], metrics=options["report"] is not None,
                                progress=not quiet,
                                log=_logger(quiet))
    except NoInputError as exc:
        raise click.UsageError(str(exc)) from None
    except ImageError as exc:
        _fail(str(exc))
    if options["report"]:
        _write_report(options["report"], summary.report(**_job_settings(options, models)))
    if not quiet:
        _print_summary(summary, models.backend.input_size)
    click.get_current_context().exit(EXIT_FAILED if summary.errors else 0)


def _settings(options):
    eps = options["eps"]
    return Settings(eps=None if eps is None else eps / 255, n_samples=options["n_samples"],
                    lr=options["lr"], epochs=options["epochs"], seed=options["seed"],
                    label_mode=pipeline_mode(options["labels"]), batch_size=options["batch_size"])


def _logger(quiet):
    def log(line, error):
        if error or not quiet:
            tqdm.write(line, file=sys.stderr)   # keeps a running progress bar intact
    return log


def _check_classes(models):
    if models.classifier is not None and tuple(models.classifier.classes) != tuple(models.backbone.classes):
        raise click.UsageError(f"classifier {models.classifier.name} and backbone {models.backbone.name} "
                               "have different classes")


def _job_settings(options, models):
    return {"inputs": list(options["inputs"]), "outdir": str(options["outdir"]),
            "recursive": options["recursive"], "labels": options["labels"],
            "backend": options["backend"], "device": options["device"],
            "backbone": models.backbone.name,
            "classifier": None if models.classifier is None else models.classifier.name,
            "input_size": list(models.backend.input_size), "max_pixels": options["max_pixels"]}


def _write_report(path, report):
    try:
        write_atomic(path, (json.dumps(report, indent=2) + "\n").encode())
    except OSError as exc:
        _fail(f"{path}: cannot write the report: {exc.strerror or exc}")


def _fail(message):
    click.echo(f"error: {message}", err=True)
    click.get_current_context().exit(EXIT_FAILED)


def _print_summary(summary, input_size):
    verb = "reverted" if summary.reverse else "protected"
    click.echo(f"{verb} {len(summary.images)} image(s) ({len(summary.skipped)} skipped, "
               f"{len(summary.errors)} failed); seed {summary.settings.seed}", err=True)
    resized = sum(record["resized"] for record in summary.images)
    if resized:
        h, w = input_size[1:]
        click.echo(f"note: {resized} image(s) not {w}x{h}: the perturbation was computed at {w}x{h} "
                   "and resized to each image", err=True)
