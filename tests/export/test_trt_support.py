"""The TensorRT-readiness check flags what onnx-tensorrt's operator table rules out."""
import numpy as np
from onnx import TensorProto, helper, numpy_helper

from mspd_edge.export.trt_support import SUPPORTED, UNSUPPORTED, check_model


def _model(nodes, inputs, outputs, inits=(), opset=17):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def _f(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def test_supported_graph_passes():
    m = _model([helper.make_node("Relu", ["x"], ["r"], name="relu"),
                helper.make_node("ReduceSum", ["r", "axes"], ["y"], name="sum", keepdims=0)],
               [_f("x", ["n", 3])], [_f("y", ["n"])],
               [numpy_helper.from_array(np.array([1], np.int64), "axes")])
    report = check_model(m, "ok")
    assert report.ok and report.problems == [] and report.nodes == 2
    assert report.lines()[0].startswith("ok: OK (2 nodes")


def test_unsupported_op_is_flagged_by_name():
    m = _model([helper.make_node("Relu", ["x"], ["r"], name="relu"),
                helper.make_node("SoftmaxCrossEntropyLoss", ["r", "t"], ["y"], name="ce")],
               [_f("x", ["n", 3]), helper.make_tensor_value_info("t", TensorProto.INT64, ["n"])],
               [_f("y", [])])
    report = check_model(m, "bad")
    assert not report.ok
    assert report.problems == [{"node": "ce", "op": "SoftmaxCrossEntropyLoss",
                                "reason": "SoftmaxCrossEntropyLoss is not supported by TensorRT "
                                          "10.0's ONNX parser"}]
    assert any("ce (SoftmaxCrossEntropyLoss)" in line for line in report.lines())


def test_restrictions_and_types():
    axes = helper.make_tensor_value_info("axes", TensorProto.INT64, [1])
    m = _model([
        helper.make_node("ReduceSum", ["x", "axes"], ["s"], name="dyn_axes"),
        helper.make_node("MaxPool", ["x4"], ["p", "idx"], name="pool_idx", kernel_shape=[2, 2]),
        helper.make_node("Cast", ["p"], ["pi"], name="to_int", to=TensorProto.INT32),
        helper.make_node("Sigmoid", ["xi"], ["si"], name="int_sigmoid"),
        helper.make_node("Identity", ["idx"], ["idx_out"], name="use_idx"),
    ], [_f("x", ["n", 3]), axes, _f("x4", ["n", 3, 4, 4]),
        helper.make_tensor_value_info("xi", TensorProto.INT32, ["n"])],
        [_f("s", None), helper.make_tensor_value_info("pi", TensorProto.INT32, None),
         helper.make_tensor_value_info("si", TensorProto.INT32, None),
         helper.make_tensor_value_info("idx_out", TensorProto.INT64, None)])
    report = check_model(m)
    reasons = {p["node"]: p["reason"] for p in report.problems}
    assert reasons["dyn_axes"] == "axes must be an initializer"
    assert reasons["pool_idx"] == "the Indices output is unsupported"
    assert reasons["int_sigmoid"].startswith("type INT32 of 'si' not supported")
    assert "to_int" not in reasons and "use_idx" not in reasons


def test_opset_range_and_custom_domains():
    m = _model([helper.make_node("Relu", ["x"], ["y"], name="r")], [_f("x", [1])], [_f("y", [1])],
               opset=21)
    assert "outside TensorRT" in check_model(m).problems[0]["reason"]
    m = _model([helper.make_node("Gelu", ["x"], ["y"], name="g", domain="com.microsoft")],
               [_f("x", [1])], [_f("y", [1])])
    m.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    assert "plugin" in check_model(m).problems[0]["reason"]


def test_table_is_consistent():
    assert not set(SUPPORTED) & UNSUPPORTED
    for op in ("Conv", "ConvTranspose", "BatchNormalization", "MaxPool", "Sign", "LogSoftmax",
               "DepthToSpace", "Where", "Equal", "Expand", "LayerNormalization", "Erf"):
        assert op in SUPPORTED
    for op in ("SoftmaxCrossEntropyLoss", "NegativeLogLikelihoodLoss", "MaxUnpool", "Unique"):
        assert op in UNSUPPORTED
