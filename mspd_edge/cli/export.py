"""``mspd-edge export`` and ``mspd-edge check`` (click commands for the ``mspd-edge`` group).

``export_command`` needs torch only for ``--model``/zoo classifiers; ``check_command`` needs
onnx alone. Errors are one ``error: FILE: why`` line on stderr and exit status 1; usage
errors exit 2.
"""
import json
import shutil
from pathlib import Path

import click

from ..backends.precision import PRECISIONS, export_reason
from ..calibration.data import COUNT as CALIBRATION_COUNT
from .common import OneLineUsageError, fail as _fail


def _load_zoo(ref, option, checkpoint=None):
    from ..zoo import load_model

    try:
        return load_model(ref, checkpoint=checkpoint)
    except (ValueError, KeyError, OSError, RuntimeError) as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None


def _paired_classifier(model):
    """The default label classifier of a loaded zoo model (``info.pair``), or None."""
    pair = getattr(getattr(model, "info", None), "pair", None)
    if pair is None:
        from ..zoo.embedded import EMBEDDED
        pair = EMBEDDED.get(getattr(getattr(model, "info", None), "name", None), {}).get("pair")
    return pair


def _classifier_source(ref):
    """A zoo classifier (torch module) or an ONNX file path."""
    if ref.lower().endswith(".onnx"):
        if not Path(ref).is_file():
            raise click.BadParameter(f"{ref}: no such file", param_hint="--classifier")
        return ref
    return _load_zoo(ref, "--classifier")


@click.command("export")
@click.option("--model", "model_ref", metavar="NAME_OR_CHECKPOINT",
              help="Backbone: a zoo name (see list_models) or a checkpoint / model manifest file.")
@click.option("--checkpoint", type=click.Path(dir_okay=False, path_type=Path),
              help="Weights for --model NAME (e.g. runs/<name>/best.pt before a model is shipped).")
@click.option("--onnx", "onnx_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Backbone made elsewhere: an ONNX classifier with one float NCHW input in "
                   "[0,1] and logits out (opset 13-20).")
@click.option("--classifier", "classifier_ref", metavar="NAME_OR_CHECKPOINT_OR_ONNX",
              help="Label classifier: a zoo name, a checkpoint, or an .onnx file.  "
                   "[default: the --model's paired classifier; none for --onnx]")
@click.option("--no-classifier", is_flag=True, help="Export no classifier graph.")
@click.option("--eps", type=click.FloatRange(0, 255, min_open=True),
              help="Default L-inf budget written to the manifest, in 1/255 units.  "
                   "[default: the backbone's; by input size for --onnx]")
@click.option("--classes", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Text file with one class name per line (for --onnx backbones).")
@click.option("-o", "--outdir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output folder (created when missing; existing graphs are replaced).")
@click.option("--no-verify", is_flag=True,
              help="Skip comparing the exported gradient with torch autograd.")
@click.option("--precision", type=click.Choice(PRECISIONS), default="fp32", show_default=True,
              help="Precision of the gradient graphs (the label graphs stay fp32): fp16 for "
                   "CUDA, TensorRT and Jetson; int8 (symmetric Q/DQ, calibrated) for TensorRT.")
@click.option("--calibration-data", metavar="NPZ_OR_IMAGES",
              help="int8: real images to calibrate on (a CIFAR-style .npz, folder or glob).  "
                   "[default: $MSPD_EDGE_CALIBRATION_DATA, else ../shared/data/cifar10/train.npz]")
@click.option("--calibration-images", type=click.IntRange(min=1), default=CALIBRATION_COUNT,
              show_default=True, help="int8: how many calibration images (x N noisy copies each).")
def export_command(model_ref, checkpoint, onnx_path, classifier_ref, no_classifier, eps, classes,
                   outdir, no_verify, precision, calibration_data, calibration_images):
    """Export a backbone as ONNX graphs for ONNX Runtime and TensorRT.

    Writes OUTDIR/backbone.onnx (images -> logits), backbone_grad.onnx (images, labels ->
    d sum-CE / d images), mcgs_step.onnx (one whole SmoothStep of the MCGS cascade),
    classifier.onnx (images -> logits; when a classifier is exported) and manifest.json.
    Batch dimensions are dynamic. Every graph is checked against TensorRT 10's ONNX operator
    table; problems are printed (the graphs are still written: ONNX Runtime runs them).
    With --precision fp16 or int8 the folder holds that precision's gradient graphs instead
    (backbone_grad.int8.onnx, mcgs_step.int8.onnx) next to the fp32 label graphs.
    """
    from ..export.onnxutil import ExportError

    why = export_reason(precision)
    if why:
        raise OneLineUsageError(f"--precision {precision}: {why}")

    if (model_ref is None) == (onnx_path is None):
        raise click.UsageError("give exactly one of --model and --onnx")
    if checkpoint is not None and model_ref is None:
        raise click.UsageError("--checkpoint goes with --model")
    if no_classifier and classifier_ref:
        raise click.UsageError("--classifier and --no-classifier exclude each other")
    if onnx_path is not None and not onnx_path.is_file():
        raise click.BadParameter(f"{onnx_path}: no such file", param_hint="--onnx")
    class_names = None
    if classes is not None:
        class_names = [line.strip() for line in classes.read_text().splitlines() if line.strip()]

    paired = False
    if model_ref is not None:
        backbone = _load_zoo(model_ref, "--model", checkpoint)
        source = model_ref
        if classifier_ref is None and not no_classifier:
            classifier_ref = _paired_classifier(backbone)
            paired = classifier_ref is not None
            if classifier_ref is None:
                click.echo(f"note: {backbone.info.name} has no paired classifier; exporting none "
                           "(pass --classifier to add one)", err=True)
    else:
        backbone, source = str(onnx_path), str(onnx_path)
    classifier = None
    if classifier_ref is not None and not no_classifier:
        try:
            classifier = _classifier_source(classifier_ref)
        except click.BadParameter as exc:
            if paired:
                exc.message = (f"{exc.message} (the paired classifier of {backbone.info.name}; pass "
                               "--classifier or --no-classifier)")
            raise

    from ..export.bundle import export_bundle

    fp32_dir = outdir if precision == "fp32" else outdir.with_name(f".{outdir.name}.fp32.partial")
    try:
        manifest = export_bundle(backbone, fp32_dir, classifier=classifier, classes=class_names,
                                 eps=None if eps is None else eps / 255, verify=not no_verify)
        if precision != "fp32":
            manifest = _reduce(fp32_dir, outdir, precision, calibration_data, calibration_images)
    except ExportError as exc:
        _fail(f"{source}: {exc}")
    except OSError as exc:
        _fail(f"{exc.filename or outdir}: {exc.strerror or exc}")
    finally:
        if fp32_dir != outdir:
            shutil.rmtree(fp32_dir, ignore_errors=True)
    for graph, result in manifest["tensorrt"].items():
        status = "ok" if result["ok"] else "FAIL"
        click.echo(f"{manifest[graph]}: {manifest['graphs'][graph]['nodes']} nodes, TensorRT check "
                   f"{status}", err=True)
        for p in result["problems"]:
            click.echo(f"  {p['node']} ({p['op']}): {p['reason']}", err=True)
    check = manifest.get("verification", {}).get("backbone_grad_vs_torch")
    if check:
        click.echo(f"backbone_grad vs torch autograd: max rel err {check['max_rel_err']:.1e}, "
                   f"cosine {check['cosine']:.8f}", err=True)
    click.echo(f"wrote {outdir}/manifest.json", err=True)


def _reduce(fp32_dir, outdir, precision, data, count):
    """The ``precision`` bundle of ``fp32_dir`` in ``outdir`` (:mod:`mspd_edge.calibration`)."""
    from ..calibration.bundle import CalibrationError, reduce_bundle
    from ..calibration.data import CalibrationDataError, calibration_images

    try:
        images, image_set = calibration_images(data, count) if precision == "int8" else (None, None)
    except CalibrationDataError as exc:
        raise OneLineUsageError(f"--calibration-data: {exc}") from None
    try:
        manifest = reduce_bundle(fp32_dir, outdir, precision, images, image_set=image_set)
    except CalibrationError as exc:
        _fail(f"{outdir}: {exc}")
    if precision == "int8":
        cal = manifest["calibration"]
        click.echo(f"int8: calibrated on {cal['images']} x {cal['copies_per_image']} copies "
                   f"({cal['method']}); kept in float: "
                   f"{', '.join(manifest['graphs']['backbone_grad']['float_nodes'])}", err=True)
    return manifest


@click.command("check")
@click.argument("path", type=click.Path(exists=True, path_type=Path), metavar="DIR_OR_ONNX")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
def check_command(path, as_json):
    """Check an export bundle (or one .onnx file) for TensorRT's ONNX parser.

    Per graph: every node's operator, tensor type and the restrictions of onnx-tensorrt's
    operator table (TensorRT 10), onnx.checker, strict shape inference, and the sha256 recorded
    in the manifest. Exit status 0 when every graph passes, 1 otherwise.
    """
    from ..bundle import BundleError
    from ..export.bundle import check_bundle, check_file

    if path.is_dir():
        try:
            reports = check_bundle(path)
        except BundleError as exc:
            _fail(str(exc))
    else:
        reports = {path.name: check_file(path)}
    if as_json:
        click.echo(json.dumps({g: r.as_dict() for g, r in reports.items()}, indent=2))
    else:
        for report in reports.values():
            for line in report.lines():
                click.echo(line)
    if not all(r.ok for r in reports.values()):
        failed = ", ".join(r.name for r in reports.values() if not r.ok)
        _fail(f"{path}: not TensorRT-ready: {failed}")
