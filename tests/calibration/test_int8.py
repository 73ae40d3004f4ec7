"""INT8 gradient graphs: symmetric Q/DQ (TensorRT's), the float-kept ops, and what int8 costs.

Tolerances (measured on the shipped backbone, 16 CIFAR-10 test images x 20 copies, calibration
on training images; docs/precision.md): cosine 0.995-0.997 and 93-96% of the gradient's signs
as fp32's, the rest being entries near zero; the limits (0.98, 90%) leave room for calibration
on 8 images and fail a graph quantized without the float-kept ops (73% of the signs agree).
Protection effect: what int8 protection does to an unseen robust target's loss must keep most
of what fp32's does (measured about 90%; limit 70%).
"""
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from conftest import gradients

from mspd_edge.calibration.int8 import FLOAT_NEAR_INPUT, float_nodes, own_weights
from mspd_edge.measure.compare import array_error

WEIGHT_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")


def _run(model, feed):
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(["grad"], feed)[0]


def test_own_weights_unshares_and_keeps_the_function(shipped_bundle):
    model = onnx.load(str(shipped_bundle / "backbone_grad.onnx"))
    users = lambda m: [n.input[1] for n in m.graph.node if n.op_type in WEIGHT_OPS]  # noqa: E731
    assert len(set(users(model))) < len(users(model))          # the export shares weights
    unshared = own_weights(model)
    assert len(set(users(unshared))) == len(users(unshared))
    rng = np.random.default_rng(0)
    feed = {"images": rng.random((2, 3, 32, 32), dtype=np.float32), "labels": np.array([1, 2])}
    np.testing.assert_array_equal(_run(unshared, feed), _run(model, feed))


def test_quantized_graph_is_symmetric_and_keeps_the_listed_ops_float(reduced):
    import json

    manifest = json.loads((reduced["int8"] / "manifest.json").read_text())
    entry = manifest["graphs"]["backbone_grad"]
    model = onnx.load(str(reduced["int8"] / entry["file"]))
    inits = {t.name: t for t in model.graph.initializer}
    dq = {n.output[0] for n in model.graph.node if n.op_type == "DequantizeLinear"}
    zero_points = [inits[n.input[2]] for n in model.graph.node
                   if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    assert zero_points and all(z.data_type == onnx.TensorProto.INT8 and
                               not onnx.numpy_helper.to_array(z).any() for z in zero_points)
    kept = set(entry["float_nodes"])
    assert len(kept) == 2 + FLOAT_NEAR_INPUT and "/logits/Gemm" in kept
    for node in model.graph.node:
        if node.op_type in WEIGHT_OPS:
            assert (node.input[0] in dq) == (node.name not in kept), node.name
    assert manifest["tensorrt"]["backbone_grad"]["ok"] and manifest["tensorrt"]["mcgs_step"]["ok"]
    assert manifest["calibration"]["size"] == 8 and manifest["calibration"]["method"] == "percentile"


def test_float_nodes_of_the_fp32_graph(shipped_bundle):
    model = own_weights(onnx.load(str(shipped_bundle / "backbone_grad.onnx")))
    kept = float_nodes(model)
    ops = {n.name: n.op_type for n in model.graph.node}
    assert [ops[k] for k in kept[:2]] == ["Gemm", "Gemm"]
    last = [n.name for n in model.graph.node if n.op_type in WEIGHT_OPS][-FLOAT_NEAR_INPUT:]
    assert kept[2:] == last and float_nodes(model, near_input=0) == kept[:2]


def test_int8_gradient_against_fp32(shipped_bundle, reduced, test_images):
    images = test_images[0]
    err = array_error(gradients(reduced["int8"], images), gradients(shipped_bundle, images))
    assert err["cosine"] > 0.98 and err["sign_agreement"] > 0.9, err


@pytest.mark.slow
def test_int8_protection_effect_on_an_unseen_target(shipped_bundle, reduced, test_images):
    """The loss of the PreAct target on int8-protected images falls about as much as on fp32's."""
    import torch
    import torch.nn.functional as F

    from mspd_edge.pipeline import Settings
    from mspd_edge.runtime.cascade import OrtBackend
    from mspd_edge.measure.compare import protect_all
    from mspd_edge.zoo import load_model

    images, truth = test_images
    target = load_model("cifar10-target-preact")

    def loss(batch):
        x = torch.from_numpy(np.stack(batch)).permute(0, 3, 1, 2).float() / 255
        with torch.no_grad():
            return F.cross_entropy(target(x), torch.from_numpy(truth.astype(np.int64))).item()

    drops = {}
    for precision in ("fp32", "int8"):
        with OrtBackend(shipped_bundle if precision == "fp32" else reduced[precision], threads=1) as b:
            settings = Settings(seed=0).resolved(b)
            labels = b.predict(np.stack([i.transpose(2, 0, 1) / 255 for i in images]).astype(np.float32),
                               "classifier")
            drops[precision] = loss(images) - loss(protect_all(b, images, settings, labels))
    assert drops["fp32"] > 0 and drops["int8"] > 0.7 * drops["fp32"], drops
