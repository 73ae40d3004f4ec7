"""Reduced-precision export bundles, made from an fp32 bundle (onnx and onnxruntime; no torch).

One folder per precision: ``reduce_bundle(fp32_dir, out_dir, "int8", images)`` writes
``backbone_grad.int8.onnx`` and ``mcgs_step.int8.onnx`` (the ``mcgs_step`` graph composed
around the reduced gradient graph, so the SmoothStep's own arithmetic stays float32), copies
the float32 label graphs (``backbone.onnx``, ``classifier.onnx``: labels are always fp32) and
writes a manifest with ``"precision"``, each graph's precision and float-kept nodes, and for
int8 the calibration (image set, size, copies, method, library). Every graph keeps float32
inputs and outputs, so the runtime feeds every bundle alike.
"""
import json
import shutil
from pathlib import Path

import onnx

from mspd_edge import defaults
from mspd_edge.bundle import MANIFEST, Bundle, check_manifest, manifest_precision
from mspd_edge.digest import sha256_file
from mspd_edge.export.bundle import save_graph
from mspd_edge.export.step import mcgs_step_graph

from .fp16 import to_fp16
from .int8 import FLOAT_NEAR_INPUT, quantize_int8

REDUCED = ("fp16", "int8")
LABEL_GRAPHS = ("backbone", "classifier")
CALIBRATION_METHOD = "percentile"


class CalibrationError(ValueError):
    """A reduced bundle cannot be made (one line saying why)."""


def _reduce(grad, precision, feeds, method):
    if precision == "fp16":
        model, kept = to_fp16(grad)
        return model, {"float_nodes": kept}
    model, kept = quantize_int8(grad, feeds, method=method)
    return model, {"float_nodes": kept, "float_near_input": FLOAT_NEAR_INPUT}


def reduce_bundle(source, out_dir, precision, images=None, *, image_set=None,
                  n_samples=defaults.N_SAMPLES, seed=0, method=CALIBRATION_METHOD):
    """Write the ``precision`` ("fp16" or "int8") bundle of fp32 bundle ``source`` to ``out_dir``.

    int8 needs ``images`` (uint8, real images: the calibration set) and ``image_set`` (how the
    manifest names them, e.g. ``"cifar10 train.npz[:16]"``). Returns the manifest.
    """
    if precision not in REDUCED:
        raise CalibrationError(f"precision must be one of {REDUCED}, got {precision!r}")
    source = Path(source)
    manifest = Bundle(source).verify_all().manifest
    if manifest_precision(manifest) != "fp32":
        raise CalibrationError(f"{source}: holds {manifest['precision']} graphs; reduce an fp32 export")
    feeds = None
    if precision == "int8":
        if not images:
            raise CalibrationError("int8 needs calibration images (real images of the backbone's domain)")
        feeds = _feeds(source, images, n_samples, seed)
    grad, extra = _reduce(onnx.load(str(source / manifest["backbone_grad"])), precision, feeds, method)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    reduced = {k: v for k, v in manifest.items() if k not in ("verification",)}
    reduced.update(precision=precision, graphs={}, sha256={}, tensorrt={},
                   source={"manifest_sha256": sha256_file(source / MANIFEST),
                           "backbone_grad_sha256": manifest["sha256"][manifest["backbone_grad"]]})
    docs = {g: manifest.get("graphs", {}).get(g, {}).get("doc", g) for g in manifest.get("graphs", {})}
    for graph, model in (("backbone_grad", grad), ("mcgs_step", mcgs_step_graph(grad))):
        model.doc_string = f"mspd-edge {graph} ({precision}): {docs.get(graph, graph)}"
        save_graph(reduced, out, graph, model, f"{graph}.{precision}.onnx", docs.get(graph, graph),
                   precision, **extra)
    for graph in LABEL_GRAPHS:
        if graph in manifest:
            _copy_graph(source, out, graph, manifest, reduced)
    if precision == "int8":
        reduced["calibration"] = _calibration_record(image_set, len(images), n_samples, seed, method)
    check_manifest(reduced, out / MANIFEST)
    (out / MANIFEST).write_text(json.dumps(reduced, indent=2) + "\n")
    return reduced


def _feeds(source, images, n_samples, seed):
    from mspd_edge.runtime.cascade import OrtBackend

    from .feeds import calibration_feeds

    with OrtBackend(source, threads=None) as fp32:
        return calibration_feeds(fp32, list(images), n_samples, seed)


def _copy_graph(source, out, graph, manifest, reduced):
    file = manifest[graph]
    shutil.copyfile(source / file, out / file)
    reduced[graph] = file
    reduced["graphs"][graph] = {**manifest["graphs"][graph], "precision": "fp32"}
    reduced["sha256"][file] = manifest["sha256"][file]
    reduced["tensorrt"][graph] = manifest["tensorrt"][graph]


def _calibration_record(image_set, count, n_samples, seed, method):
    import onnxruntime

    return {"images": image_set or "unnamed", "size": count, "copies_per_image": n_samples,
            "noise_seed": seed, "inputs": "the cascade's first-epoch noisy copies, fp32 labels",
            "method": method, "activations": "int8 per tensor, symmetric (zero point 0)",
            "weights": "int8 per output channel, symmetric (zero point 0)",
            "library": f"onnxruntime.quantization {onnxruntime.__version__}"}
