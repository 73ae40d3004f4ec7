"""The ``mspd-edge`` command line: a thin layer over :func:`mspd_edge.protect.protect_files`.

Backends are built lazily by the functions in ``BACKENDS`` (torch is imported only for
``--backend torch`` and to make a missing export), so ``--backend ort|trt`` runs on a device
without torch. ``parity`` and ``bench`` compare and time the backends (``mspd_edge.runtime``).
"""
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import click
from tqdm import tqdm

from . import __version__, defaults
from .camera.command import camera_command
from .evaluate.command import evaluate_command
from .export.commands import check_command, export_command
from .io import ImageError, write_atomic
from .labels import FOLDER, MODEL_MODES, LabelError, label_source, pipeline_mode
from .pipeline import Settings, check_epochs
from .train.command import train_command
from .protect import NoInputError, protect_files

DEVICES = ("cpu", "cuda")
PROVIDERS = ("cpu", "cuda", "tensorrt")   # ONNX Runtime execution providers (--backend ort)
EXIT_FAILED = 1   # some input failed; click uses 2 for usage errors


@dataclass
class Models:
    """A ready backend and the metadata (``ModelInfo``) of the models behind it."""

    backend: object
    backbone: object
    classifier: object | None


def _torch_models(backbone, classifier, device, need_classifier, *, threads=None):
    """The reference PyTorch backend for zoo names or checkpoints."""
    import torch

    from .torch_backend import TorchBackend
    from .zoo import load_model

    if device == "cuda" and not torch.cuda.is_available():
        raise click.BadParameter("CUDA is not available on this machine", param_hint="--device")
    if threads:
        torch.set_num_threads(threads)
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


def _runtime_bundle(backbone, classifier, need_classifier, model_dir):
    """The export bundle of the runtime backends: ``--model-dir``, else the cached export."""
    from .runtime.bundle import Bundle, BundleError

    folder = model_dir if model_dir is not None else _cached_export(backbone, classifier, need_classifier)
    try:
        bundle = Bundle(folder)
    except BundleError as exc:
        raise click.BadParameter(str(exc), param_hint="--model-dir") from None
    if need_classifier and not bundle.has("classifier"):
        raise click.UsageError(f"{folder} has no classifier graph: use --labels couple (or a "
                               "ground-truth label mode), or export with a classifier")
    return bundle


def _cached_export(backbone, classifier, need_classifier):
    """The export of the models in the cache (made once; see ``mspd_edge.runtime.exports``).

    The backbone's paired classifier is exported with it whenever it is known, so one export
    serves every label mode. Finding a cached export needs no torch; making one does.
    """
    from .runtime import exports

    pair = classifier or exports.paired_classifier(backbone)
    for candidate in ((backbone, pair), (backbone, None)) if pair else ((backbone, None),):
        folder = exports.export_dir(*candidate)
        if exports.is_complete(folder) and (candidate[1] or not need_classifier):
            return folder
    try:
        import torch  # noqa: F401
    except ImportError:
        raise click.UsageError(
            f"no export of {backbone} is cached in {exports.export_dir(backbone, pair) or 'the cache'} "
            "and making one needs torch (pip install 'mspd-edge[torch,export]'): run `mspd-edge "
            "export` on a machine with torch and pass its folder as --model-dir") from None
    return _make_export(backbone, classifier, need_classifier)


def _make_export(backbone, classifier, need_classifier):
    from .export import ExportError, export_bundle
    from .runtime import exports
    from .zoo import load_model

    back = _load(load_model, backbone, "--backbone")
    classifier = classifier or back.info.pair
    if need_classifier and classifier is None:
        raise click.UsageError(f"backbone {back.info.name} has no paired classifier: pass "
                               "--classifier, or use --labels couple")
    cls = None
    if classifier:
        try:
            cls = _load(load_model, classifier, "--classifier")
        except click.BadParameter:
            if need_classifier:
                raise
            classifier = None   # the pair is not at hand; --labels couple needs none
    folder = exports.export_dir(backbone, classifier)
    if folder is None:
        raise click.UsageError(f"cannot locate the weights files of {backbone} to key an export "
                               "cache: run `mspd-edge export` and pass the folder as --model-dir")
    if exports.is_complete(folder):
        return folder
    click.echo(f"note: exporting {backbone}{' + ' + classifier if classifier else ''} to ONNX "
               f"in {folder} (once)", err=True)
    partial = folder.with_name(f".{folder.name}.{os.getpid()}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        export_bundle(back, partial, classifier=cls)
    except ExportError as exc:
        shutil.rmtree(partial, ignore_errors=True)
        raise click.UsageError(f"cannot export {backbone}: {exc}") from None
    shutil.rmtree(folder, ignore_errors=True)   # an incomplete earlier attempt
    os.replace(partial, folder)
    return folder


def _ort_models(backbone, classifier, device, need_classifier, *, model_dir=None, provider=None,
                threads=None, route="auto", copies_per_call="auto"):
    """The cascade on ONNX Runtime (``mspd_edge.runtime``): never imports torch itself."""
    from .runtime.cascade import OrtBackend
    from .runtime.runners import ProviderUnavailable, available_providers

    provider = provider or ("cuda" if device == "cuda" else "cpu")
    try:
        offered = available_providers()
    except ProviderUnavailable as exc:
        raise click.UsageError(str(exc)) from None
    if provider not in offered:
        raise click.BadParameter(f"this onnxruntime offers {', '.join(offered)}; {provider} needs "
                                 "onnxruntime-gpu (see docs/runtime.md)", param_hint="--provider")
    bundle = _runtime_bundle(backbone, classifier, need_classifier, model_dir)
    backend = OrtBackend(bundle, provider=provider, threads=threads, route=route,
                         copies_per_call=copies_per_call)
    return Models(backend, bundle.meta("backbone"), bundle.meta("classifier") if need_classifier else None)


def _trt_models(backbone, classifier, device, need_classifier, *, model_dir=None, provider=None,
                threads=None, route="auto", copies_per_call=None):
    """The cascade on TensorRT engines (built once per GPU and cached)."""
    from .runtime.cascade import TrtBackend
    from .runtime.trt import trt_available

    if provider is not None:
        raise click.UsageError("--provider chooses ONNX Runtime's execution provider: it goes "
                               "with --backend ort (--backend trt is TensorRT itself)")
    ok, why = trt_available()
    if not ok:
        raise click.UsageError(f"--backend trt: {why}")
    bundle = _runtime_bundle(backbone, classifier, need_classifier, model_dir)
    backend = TrtBackend(bundle, route=route, copies_per_call=copies_per_call,
                         log=lambda line: click.echo(f"note: {line}", err=True))
    return Models(backend, bundle.meta("backbone"), bundle.meta("classifier") if need_classifier else None)


# name -> (backbone, classifier, device, need_classifier, **runtime options) -> Models
BACKENDS = {"torch": _torch_models, "ort": _ort_models, "trt": _trt_models}
RUNTIME_BACKENDS = ("ort", "trt")


def _build_models(name, options, need_classifier, threads=None, route="auto"):
    """``BACKENDS[name]`` with the options of a command; runtime options only where they apply."""
    builder = BACKENDS[name]
    if name in RUNTIME_BACKENDS:
        extra = {"copies_per_call": options["copies_per_call"]} if options.get("copies_per_call") else {}
        return builder(options["backbone"], options["classifier"], options["device"], need_classifier,
                       model_dir=options["model_dir"], provider=options["provider"],
                       threads=threads, route=route, **extra)
    if options.get("model_dir") is not None or options.get("provider") is not None:
        raise click.UsageError("--model-dir and --provider go with --backend ort or trt")
    return builder(options["backbone"], options["classifier"], options["device"], need_classifier,
                   **({"threads": threads} if threads else {}))


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
                 help="Implementation of the cascade: the PyTorch reference, ONNX Runtime or "
                      "TensorRT (ort and trt never import torch)."),
    click.option("--model-dir", type=click.Path(file_okay=False, exists=True, path_type=Path),
                 help="Export folder (`mspd-edge export`) for --backend ort/trt.  [default: the "
                      "models' export in ~/.cache/mspd-edge/exports (or $MSPD_EDGE_CACHE), made "
                      "once, which needs torch]"),
    click.option("--provider", type=click.Choice(PROVIDERS),
                 help="ONNX Runtime execution provider for --backend ort.  [default: cuda with "
                      "--device cuda, else cpu]"),
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
main.add_command(export_command)   # mspd-edge export / check (mspd_edge.export; torch only to export)
main.add_command(check_command)
main.add_command(evaluate_command)


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
    models = _build_models(options["backend"], options, labels_option == "classifier")
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
            "provider": getattr(models.backend, "provider", None),
            "model_dir": None if getattr(models.backend, "bundle", None) is None
            else str(models.backend.bundle.root),
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


# -- parity and bench: every backend on the same images ------------------------------------
BACKEND_SPECS = ("torch", "ort", "ort-cpu", "ort-cuda", "ort-tensorrt", "trt")
WORKER_PREFIX = "BENCH_JSON "


def _parse_specs(value):
    """``NAME[:ROUTE],...`` -> list; NAME in BACKEND_SPECS, ROUTE step or grad (runtime only)."""
    specs = [item.strip() for item in value.split(",") if item.strip()]
    for spec in specs:
        name, _, route = spec.partition(":")
        if name not in BACKEND_SPECS or (route and (name == "torch" or route not in ("step", "grad"))):
            raise click.BadParameter(f"{spec!r}: use {', '.join(BACKEND_SPECS)}, optionally with "
                                     ":step or :grad for the runtime ones (e.g. ort:grad)",
                                     param_hint="--backends")
    if len(set(specs)) != len(specs) or not specs:
        raise click.BadParameter("a non-empty list without repeats", param_hint="--backends")
    return specs


def _available_specs():
    """The backends this machine can run: torch if installed, ORT per provider, TensorRT."""
    import importlib.util

    from .runtime.runners import ProviderUnavailable, available_providers
    from .runtime.trt import trt_available

    specs = ["torch"] if importlib.util.find_spec("torch") is not None else []
    try:
        specs += ["ort" if p == "cpu" else f"ort-{p}" for p in available_providers()]
    except ProviderUnavailable:
        pass
    if trt_available()[0]:
        specs.append("trt")
    return specs


def _spec_models(spec, options, need_classifier, threads=None):
    """Models for one backend spec (``ort-cuda:grad`` ...); the backend is named after ``spec``."""
    name, _, route = spec.partition(":")
    kind = "ort" if name.startswith("ort") else name
    opts = dict(options)
    opts.setdefault("provider", None)
    if kind == "torch":
        opts.update(model_dir=None, provider=None)
    elif name.startswith("ort-"):
        opts["provider"] = name[4:]
    models = _build_models(kind, opts, need_classifier, threads=threads, route=route or "auto")
    models.backend.name = spec
    return models


def _load_image_set(source, limit):
    from .runtime.bench import load_images

    try:
        images = load_images(source, limit)
    except (OSError, ValueError, ImageError) as exc:
        raise click.BadParameter(f"{source}: {exc}", param_hint="IMAGES/--data") from None
    if not images:
        raise click.UsageError(f"no images found in {source}")
    return images


_MODEL_OPTIONS = [
    click.option("--model-dir", type=click.Path(file_okay=False, exists=True, path_type=Path),
                 help="Export folder for the runtime backends.  [default: the cached export of "
                      "--backbone/--classifier, made once]"),
    click.option("--backbone", default=defaults.BACKBONE, show_default=True,
                 help="Backbone (zoo name or checkpoint) of the torch backend and the export."),
    click.option("--classifier", help="Label classifier.  [default: the backbone's pair]"),
    click.option("--labels", type=click.Choice(["classifier", "couple"]), default="classifier",
                 show_default=True, help="Labels from the classifier or the backbone."),
    click.option("--device", type=click.Choice(DEVICES), default=DEVICES[0], show_default=True,
                 help="Device of the torch backend (and ORT's default provider)."),
    click.option("--threads", type=click.IntRange(min=1),
                 help="CPU threads of every backend (torch and ONNX Runtime alike).  "
                      "[default: the CPUs this process may use]"),
    click.option("--n-samples", type=click.IntRange(min=1), default=defaults.N_SAMPLES,
                 show_default=True, help="Noisy copies per smoothing step."),
    click.option("--epochs", default=defaults.EPOCHS, show_default=True, callback=_check_epochs,
                 help="Epoch sequence."),
    click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Noise seed."),
    click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
                 help="Also write the results as JSON."),
]


def _model_options(function):
    for option in reversed(_MODEL_OPTIONS):
        function = option(function)
    return function


def _default_threads():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _runtime_model_dir(specs, options, need_classifier):
    """Resolve the export once (made in this process if needed) for the runtime specs."""
    if any(not s.startswith("torch") for s in specs) and options["model_dir"] is None:
        bundle = _runtime_bundle(options["backbone"], options["classifier"], need_classifier, None)
        options["model_dir"] = bundle.root
    return options


@main.command()
@click.argument("images", metavar="IMAGES")
@_model_options
@click.option("--backends", default="auto", show_default=True,
              help="Comma-separated backends to compare (torch, ort, ort-cuda, ort-tensorrt, trt; "
                   "runtime ones may add :step or :grad); auto: every one available here.")
@click.option("--reference", help="Backend the others are compared with.  [default: torch when "
                                  "installed, else ort]")
@click.option("--limit", type=click.IntRange(min=1), default=64, show_default=True,
              help="Images to use at most.")
@click.option("--eps", type=click.FloatRange(0, 255, min_open=True),
              help="L-inf budget in 1/255 units.  [default: the backbone's]")
@click.option("--min-cosine", type=float, default=0.9999, show_default=True,
              help="Tolerance: gradient cosine similarity at least.")
@click.option("--max-rel-err", type=float, default=1e-3, show_default=True,
              help="Tolerance: gradient max |error| / max |reference| at most.")
@click.option("--max-diff", type=click.IntRange(min=0), default=2, show_default=True,
              help="Tolerance: protected-image max |difference| in 1/255 units at most.")
@click.option("--min-identical", type=click.FloatRange(0, 1), default=0.99, show_default=True,
              help="Tolerance: share of identical 8-bit values at least.")
def parity(images, backends, reference, limit, eps, min_cosine, max_rel_err, max_diff,
           min_identical, **options):
    """Compare every backend with the reference on the same images and noise.

    IMAGES: a folder, glob or image file, or a CIFAR-style .npz (e.g. the CIFAR-10 test
    split). Per backend: the input gradient's cosine and relative error, the protected images'
    max |d| in 1/255 units and share of identical 8-bit values (all backends protect with the
    reference's labels and the same seed), and the label agreement. Prints a markdown table;
    exit status 1 when a backend is over a tolerance. Run it on a new device after install.
    """
    from .pipeline import Settings
    from .runtime.compare import Tolerances, parity as run_parity, parity_table

    specs = _available_specs() if backends == "auto" else _parse_specs(backends)
    reference = reference or ("torch" if "torch" in specs else specs[0] if specs else None)
    if reference not in specs:
        raise click.BadParameter(f"{reference!r} is not among the backends {specs}",
                                 param_hint="--reference")
    if len(specs) < 2:
        raise click.UsageError(f"parity needs two backends; available here: {specs}")
    need_classifier = options["labels"] == "classifier"
    options = _runtime_model_dir(specs, dict(options), need_classifier)
    threads = options.pop("threads") or _default_threads()
    image_set = _load_image_set(images, limit)
    built = {spec: _spec_models(spec, options, need_classifier, threads).backend for spec in specs}
    ref = built[reference]
    settings = Settings(eps=None if eps is None else eps / 255, n_samples=options["n_samples"],
                        epochs=options["epochs"], seed=options["seed"],
                        label_mode=pipeline_mode(options["labels"])).resolved(ref)
    tolerances = Tolerances(min_cosine=min_cosine, max_rel_err=max_rel_err,
                            max_diff_255=max_diff, min_identical=min_identical)
    records = run_parity(built, image_set, settings, reference, tolerances=tolerances,
                         log=lambda line: click.echo(line, err=True))
    click.echo(f"{len(image_set)} images, seed {settings.seed}, N={settings.n_samples}, "
               f"eps {settings.eps * 255:g}/255, threads {threads}")
    click.echo(parity_table(records))
    if options["json_path"]:
        _write_report(options["json_path"], {"settings": {"images": len(image_set), "seed": settings.seed,
                      "n_samples": settings.n_samples, "eps": settings.eps, "epochs": settings.epochs,
                      "reference": reference, "tolerances": tolerances.__dict__}, "records": records})
    click.get_current_context().exit(0 if all(r["ok"] for r in records) else EXIT_FAILED)


def _default_bench_data():
    root = Path(__file__).resolve().parents[1]
    for candidate in (root.parent / "shared" / "data" / "cifar10" / "test.npz", root / "samples"):
        if candidate.exists():
            return str(candidate)
    raise click.UsageError("no default images (CIFAR-10 test split or samples/): pass --data")


@main.command()
@_model_options
@click.option("--backends", default="torch,ort", show_default=True,
              help="Comma-separated backends (torch, ort, ort-cuda, ort-tensorrt, trt; runtime "
                   "ones may add :step or :grad to time one epoch route).")
@click.option("--batch-sizes", default="1,16", show_default=True, help="Comma-separated batch sizes.")
@click.option("--images", "count", type=click.IntRange(min=1), default=32, show_default=True,
              help="Images per batch size (cycled from --data when it has fewer).")
@click.option("--data", help="Images: a CIFAR-style .npz, a folder or a glob.  [default: "
                             "../shared/data/cifar10/test.npz beside the repo, else samples/]")
@click.option("--warmup", type=click.IntRange(min=0), default=1, show_default=True,
              help="Untimed batches first, per batch size.")
@click.option("--isolate/--no-isolate", default=True, show_default=True,
              help="Time each backend in a fresh process (own peak memory and thread pools).")
@click.option("--copies-per-call", type=click.IntRange(min=1),
              help="Noisy copies per engine call for the runtime backends (a tuning knob: "
                   "small calls stay in the CPU cache).  [default: 20 on the CPU, no cap on GPUs]")
@click.option("--worker", hidden=True)
def bench(backends, batch_sizes, count, data, warmup, isolate, copies_per_call, worker, **options):
    """Time backends on the same images: throughput, latency and peak memory.

    Every backend protects the same images with the same seed and settings, after a warm-up;
    prints a markdown table with each backend's throughput relative to torch measured in the
    same run, and writes the records to --json (keys backend, batch_size, images_per_s,
    p50_ms, p95_ms, peak_rss_mb, ms_per_image, ratio_vs_torch, ...).
    """
    from .pipeline import Settings
    from .runtime.bench import machine, markdown_table, time_backend, with_ratios

    specs = _parse_specs(worker or backends)
    try:
        sizes = [int(b) for b in batch_sizes.split(",") if b.strip()]
    except ValueError:
        sizes = []
    if not sizes or min(sizes) < 1:
        raise click.BadParameter("comma-separated positive integers", param_hint="--batch-sizes")
    data = data or _default_bench_data()
    options = dict(options, copies_per_call=copies_per_call)
    options["threads"] = options["threads"] or _default_threads()
    need_classifier = options["labels"] == "classifier"

    def measure(spec):
        backend = _spec_models(spec, options, need_classifier, options["threads"]).backend
        images = _load_image_set(data, count)
        settings = Settings(n_samples=options["n_samples"], epochs=options["epochs"],
                            seed=options["seed"], label_mode=pipeline_mode(options["labels"]))
        return time_backend(backend, images, settings.resolved(backend), sizes, name=spec,
                            warmup=warmup, extra={"threads": options["threads"]})

    if worker:
        click.echo(WORKER_PREFIX + json.dumps(measure(specs[0])))
        return
    options = _runtime_model_dir(specs, options, need_classifier)
    records, failures = [], []
    for spec in specs:
        click.echo(f"bench: {spec} ...", err=True)
        try:
            records += _bench_worker(spec, options, sizes, count, data, warmup) if isolate else measure(spec)
        except click.ClickException as exc:
            failures.append({"backend": spec, "error": exc.format_message()})
            click.echo(f"error: {spec}: {exc.format_message()}", err=True)
    reference = "torch" if any(r["backend"] == "torch" for r in records) else None
    if reference:
        with_ratios(records, reference)
    click.echo(markdown_table(records, reference or "torch"))
    if options["json_path"]:
        settings = {k: options[k] for k in ("n_samples", "epochs", "seed", "labels", "threads",
                                            "backbone", "classifier")}
        settings.update(images=count, data=data, batch_sizes=sizes, warmup=warmup, isolate=isolate,
                        copies_per_call=copies_per_call,
                        model_dir=None if options["model_dir"] is None else str(options["model_dir"]))
        _write_report(options["json_path"], {"machine": machine(), "settings": settings,
                                             "records": records, "failures": failures})
    click.get_current_context().exit(EXIT_FAILED if failures else 0)


def _bench_worker(spec, options, sizes, count, data, warmup):
    """Run one backend's measurement in a fresh ``python -m mspd_edge.cli bench --worker``."""
    argv = [sys.executable, "-m", "mspd_edge.cli", "bench", "--worker", spec,
            "--batch-sizes", ",".join(map(str, sizes)), "--images", str(count), "--data", data,
            "--warmup", str(warmup), "--threads", str(options["threads"]),
            "--n-samples", str(options["n_samples"]), "--epochs", options["epochs"],
            "--seed", str(options["seed"]), "--labels", options["labels"],
            "--backbone", options["backbone"], "--device", options["device"]]
    if options["classifier"]:
        argv += ["--classifier", options["classifier"]]
    if options["copies_per_call"]:
        argv += ["--copies-per-call", str(options["copies_per_call"])]
    if options["model_dir"] is not None and not spec.startswith("torch"):
        argv += ["--model-dir", str(options["model_dir"])]
    done = subprocess.run(argv, capture_output=True, text=True)
    for line in done.stdout.splitlines():
        if line.startswith(WORKER_PREFIX):
            return json.loads(line[len(WORKER_PREFIX):])
    tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
    raise click.ClickException(f"the benchmark process failed (exit {done.returncode}): {tail}")


if __name__ == "__main__":
    main()
