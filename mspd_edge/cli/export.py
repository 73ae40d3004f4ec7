"""``mspd-edge export`` and ``mspd-edge check`` (click commands for the ``mspd-edge`` group).

``export_command`` needs torch only for ``--model``/zoo classifiers; ``check_command`` needs
onnx alone. Errors are one ``error: FILE: why`` line on stderr and exit status 1; usage
errors exit 2.
"""
import json
from pathlib import Path

import click

from .common import fail as _fail


def _load_zoo(ref, option, checkpoint=None):
    from mspd_edge.zoo import load_model

    try:
        return load_model(ref, checkpoint=checkpoint)
    except (ValueError, KeyError, OSError, RuntimeError) as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None


def _paired_classifier(model):
    """The default label classifier of a loaded zoo model (``info.pair``), or None."""
    pair = getattr(getattr(model, "info", None), "pair", None)
    if pair is None:
        from mspd_edge.zoo.embedded import EMBEDDED
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
def export_command(model_ref, checkpoint, onnx_path, classifier_ref, no_classifier, eps, classes,
                   outdir, no_verify):
    """Export a backbone as ONNX graphs for ONNX Runtime and TensorRT.

    Writes OUTDIR/backbone.onnx (images -> logits), backbone_grad.onnx (images, labels ->
    d sum-CE / d images), mcgs_step.onnx (one whole SmoothStep of the MCGS cascade),
    classifier.onnx (images -> logits; when a classifier is exported) and manifest.json.
    Batch dimensions are dynamic. Every graph is checked against TensorRT 10's ONNX operator
    table; problems are printed (the graphs are still written: ONNX Runtime runs them).
    """
    from ..export.onnxutil import ExportError

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

    try:
        manifest = export_bundle(backbone, outdir, classifier=classifier, classes=class_names,
                                 eps=None if eps is None else eps / 255, verify=not no_verify)
    except ExportError as exc:
        _fail(f"{source}: {exc}")
    except OSError as exc:
        _fail(f"{exc.filename or outdir}: {exc.strerror or exc}")
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


@click.command("check")
@click.argument("path", type=click.Path(exists=True, path_type=Path), metavar="DIR_OR_ONNX")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
def check_command(path, as_json):
    """Check an export bundle (or one .onnx file) for TensorRT's ONNX parser.

    Per graph: every node's operator, tensor type and the restrictions of onnx-tensorrt's
    operator table (TensorRT 10), onnx.checker, strict shape inference, and the sha256 recorded
    in the manifest. Exit status 0 when every graph passes, 1 otherwise.
    """
    from ..export.bundle import check_bundle, check_file
    from ..export.onnxutil import ExportError

    if path.is_dir():
        try:
            reports = check_bundle(path)
        except ExportError as exc:
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
