"""Writing an export bundle (the contract: :mod:`mspd_edge.bundle`) and checking its graphs.

``export_bundle`` writes it (needs torch only when given torch modules); ``check_bundle``
checks it with onnx alone, so a torch-free device can use it.
"""
import json
from pathlib import Path

import numpy as np
import onnx

from mspd_edge import __version__
from mspd_edge.bundle import (BATCH, FILES, FORMAT, FORMAT_VERSION, GRAD, IMAGES, LABELS, MANIFEST,
                              Bundle, check_manifest)
from mspd_edge.digest import sha256_file
from mspd_edge.util import first_line

from .onnxutil import OPSET, ExportError, input_chw, num_classes, op_counts, opset_of


def _signature(model):
    def spec(vi):
        t = vi.type.tensor_type
        dims = [d.dim_param if d.dim_param else d.dim_value for d in t.shape.dim]
        return {"name": vi.name, "dtype": onnx.helper.tensor_dtype_to_np_dtype(t.elem_type).name,
                "shape": dims}
    return {"inputs": [spec(v) for v in model.graph.input],
            "outputs": [spec(v) for v in model.graph.output]}


def _is_torch_module(obj):
    try:
        import torch
    except ImportError:
        return False
    return isinstance(obj, torch.nn.Module)


def _forward(source, input_size, opset):
    from .graphs import onnx_forward_graph, torch_forward_graph

    if _is_torch_module(source):
        if input_size is None:
            raise ExportError("input_size is needed for a torch module without .info")
        return torch_forward_graph(source, tuple(input_size), opset=opset)
    return onnx_forward_graph(source, opset=opset)


def _check_dynamic_batch(forward, what):
    """Run ``forward`` at batch 1 and 2 (ONNX Runtime, when installed): a graph exported with a
    fixed batch size that our clean-up could not free fails here instead of at run time."""
    try:
        import onnxruntime as ort
    except ImportError:
        return
    options = ort.SessionOptions()
    options.log_severity_level = 4       # the failure is reported in our message
    x = np.random.default_rng(0).random((2, *input_chw(forward)), dtype=np.float32)
    try:
        session = ort.InferenceSession(forward.SerializeToString(), options,
                                       providers=["CPUExecutionProvider"])
        one = session.run(None, {IMAGES: x[:1]})[0]
        two = session.run(None, {IMAGES: x})[0]
    except Exception as err:  # noqa: BLE001 - ORT raises its own types
        raise ExportError(f"the {what} graph does not run with a dynamic batch (was it exported with "
                          f"a fixed batch size?): {first_line(err)}") from None
    if not np.allclose(one[0], two[0], rtol=1e-3, atol=1e-4):
        raise ExportError(f"the {what} graph gives batch-dependent logits (exported with a fixed "
                          "batch size?)")


def _verify_against_torch(module, grad_model, input_size, n=2, seed=0):
    """Max |g_ort - g_torch| / max |g_torch| and cosine on ``n`` random images (None: no ORT)."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    import torch

    from mspd_edge.reference import input_grad

    rng = np.random.default_rng(seed)
    x = rng.random((n, *input_size), dtype=np.float32)
    k = grad_model.graph.output[2].type.tensor_type.shape.dim[1].dim_value
    y = rng.integers(0, k, n).astype(np.int64)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(grad_model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    got = session.run([GRAD], {IMAGES: x, LABELS: y})[0].astype(np.float64)
    was_training = module.training
    module.eval()
    try:
        ref = input_grad(module, torch.from_numpy(x), torch.from_numpy(y)).numpy().astype(np.float64)
    finally:
        module.train(was_training)
    scale = np.abs(ref).max()
    rel = float(np.abs(got - ref).max() / scale) if scale > 0 else float(np.abs(got).max())
    cos = float((got * ref).sum() / (np.linalg.norm(got) * np.linalg.norm(ref) + 1e-300))
    return {"images": n, "max_rel_err": rel, "cosine": cos}


def export_bundle(backbone, out_dir, *, classifier=None, input_size=None, classes=None, eps=None,
                  name=None, classifier_name=None, opset=OPSET, verify=True):
    """Write the ONNX graphs of ``backbone`` (and ``classifier``) to ``out_dir``; the manifest.

    ``backbone``/``classifier``: a torch module (``model.info`` from ``load_model`` supplies
    input size, classes, eps and name) or an ONNX classifier (path, bytes or ModelProto: one
    float NCHW input in [0, 1], logits out). Explicit keyword arguments override ``info``.
    ``verify`` compares the ORT gradient with torch autograd on two random images (torch
    backbones only) and records the result.
    """
    from .gradient import gradient_graph
    from .step import mcgs_step_graph

    info = getattr(backbone, "info", None)
    if input_size is None and info is not None:
        input_size = tuple(info.input_size)
    forward = _forward(backbone, input_size, opset)
    if not _is_torch_module(backbone):
        _check_dynamic_batch(forward, "backbone")
    chw = input_chw(forward)
    if input_size is not None and tuple(input_size) != chw:
        raise ExportError(f"the backbone graph takes {chw}, not the input size {tuple(input_size)}")
    k = num_classes(forward)
    if classes is None and info is not None:
        classes = list(info.classes)
    if classes is not None and len(classes) != k:
        raise ExportError(f"{len(classes)} class names for a backbone with {k} logits")
    if eps is None:
        eps = getattr(info, "eps", None)
    if eps is None:
        from mspd_edge.defaults import EPS_BY_INPUT_SIZE
        eps = EPS_BY_INPUT_SIZE.get(chw[1])
        if eps is None:
            raise ExportError(f"no default eps for input size {chw[1]}x{chw[2]}: pass eps")
    name = name or getattr(info, "name", None) or "backbone"

    models = {"backbone": forward}
    models["backbone_grad"] = gradient_graph(forward)
    models["mcgs_step"] = mcgs_step_graph(models["backbone_grad"])
    if classifier is not None:
        cls_info = getattr(classifier, "info", None)
        cls_forward = _forward(classifier, chw, opset)
        if not _is_torch_module(classifier):
            _check_dynamic_batch(cls_forward, "classifier")
        if input_chw(cls_forward) != chw:
            raise ExportError(f"the classifier takes {input_chw(cls_forward)}, the backbone {chw}")
        if num_classes(cls_forward) != k:
            raise ExportError(f"the classifier has {num_classes(cls_forward)} classes, the backbone {k}")
        models["classifier"] = cls_forward
        classifier_name = classifier_name or getattr(cls_info, "name", None) or "classifier"
    docs = {
        "backbone": "images [n,C,H,W] float32 in [0,1] -> logits [n,K]",
        "backbone_grad": "images, labels int64 [n] -> grad = d sum-CE / d images, loss [n], logits",
        "mcgs_step": "center [B,C,H,W], labels [B], noise [N,B,C,H,W], eps, direction -> stepped [B,C,H,W]",
        "classifier": "images [n,C,H,W] float32 in [0,1] -> logits [n,K]",
    }

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stale = out / FILES["classifier"]
    if "classifier" not in models and stale.exists():
        stale.unlink()
    manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, "precision": "fp32"}
    manifest.update({
        "name": name, "classifier_name": classifier_name if "classifier" in models else None,
        "dataset": getattr(info, "dataset", None),
        "input_size": list(chw), "channels": chw[0], "num_classes": k,
        "classes": list(classes) if classes is not None else None,
        "eps": float(eps), "opset": opset_of(models["backbone_grad"]), "batch_dim": BATCH,
        "graphs": {}, "sha256": {}, "tensorrt": {}, "versions": _versions(backbone, classifier),
    })
    for g, model in models.items():
        model.doc_string = f"mspd-edge {g}: {docs[g]}"
        save_graph(manifest, out, g, model, FILES[g], docs[g])
    manifest["tensorrt_version_checked"] = "10.0 (onnx-tensorrt operators.md)"
    if verify and _is_torch_module(backbone):
        result = _verify_against_torch(backbone, models["backbone_grad"], chw)
        if result is not None:
            manifest["verification"] = {"backbone_grad_vs_torch": result}
    check_manifest(manifest, out / MANIFEST)
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def save_graph(manifest, out, graph, model, file, doc, precision="fp32", **extra):
    """Write ``model`` as ``out/file`` and record it as ``graph`` in ``manifest``: the file, its
    sha256, ops, signature, ``precision`` (of its float tensors) and TensorRT check."""
    from .trt_support import check_model

    path = Path(out) / file
    onnx.save(model, str(path))
    report = check_model(model, file)
    manifest[graph] = file
    manifest["graphs"][graph] = {"file": file, "doc": doc, "opset": opset_of(model),
                                 "nodes": len(model.graph.node), "ops": op_counts(model),
                                 "precision": precision, **extra, **_signature(model)}
    manifest["sha256"][file] = sha256_file(path)
    manifest["tensorrt"][graph] = {"ok": report.ok, "problems": report.problems}


def _versions(*sources):
    versions = {"mspd_edge": __version__, "onnx": onnx.__version__}
    if any(_is_torch_module(s) for s in sources):
        import torch
        versions["torch"] = torch.__version__
    try:
        import onnxruntime
        versions["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    return versions


def check_bundle(bundle_dir):
    """Check every graph of a bundle: the contract and each graph's sha256 (the runtime's checks,
    :class:`~mspd_edge.bundle.BundleError` when one fails), then onnx.checker, shape inference
    and the TensorRT table. Returns ``{graph: GraphReport}``."""
    bundle = Bundle(bundle_dir).verify_all()
    return {g: check_file(bundle.path(g)) for g in bundle.graphs}


def check_file(path):
    """TensorRT-table check of one ONNX file plus onnx.checker and strict shape inference."""
    from .trt_support import GraphReport, check_model

    path = Path(path)
    try:
        model = onnx.load(str(path))
    except Exception as err:  # noqa: BLE001
        report = GraphReport(path.name, ok=False)
        report.problems.append({"node": "(file)", "op": "-", "reason": f"unreadable ONNX ({err})"})
        return report
    report = check_model(model, path.name)
    for what, fn in (("onnx.checker", lambda: onnx.checker.check_model(model, full_check=True)),
                     ("shape inference", lambda: onnx.shape_inference.infer_shapes(
                         model, strict_mode=True))):
        try:
            fn()
        except Exception as err:  # noqa: BLE001
            report.ok = False
            report.problems.insert(0, {"node": "(model)", "op": "-", "reason": f"{what}: {first_line(err)}"})
    return report
