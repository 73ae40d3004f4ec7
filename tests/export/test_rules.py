"""Gradient rules the zoo does not reach, on small hand-written graphs, against finite differences.

Each graph maps images [n, 3, 4, 4] to logits [n, 5]. The check is directional: <grad, v> vs
(L(x + h v) - L(x - h v)) / 2h of the summed per-image loss the same graph outputs, for a few
random directions v; float32 and h = 1e-3 give ~1e-3 agreement, while a wrong rule is off by O(1).
"""
import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from mspd_edge.export.gradient import gradient_graph
from mspd_edge.export.onnxutil import prepare_forward
from mspd_edge.export.trt_support import check_model

from export_helpers import session

RNG = np.random.default_rng(0)


def _w(name, *shape, scale=0.5):
    return numpy_helper.from_array((RNG.standard_normal(shape) * scale).astype(np.float32), name)


def _i(name, values):
    return numpy_helper.from_array(np.asarray(values, np.int64), name)


def _f(name, value):
    return numpy_helper.from_array(np.asarray(value, np.float32), name)


def _graph(nodes, inits, opset=17):
    graph = helper.make_graph(
        nodes, "rules", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 5])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


N = helper.make_node
CASES = {
    "div_where_split_abs_gemm": _graph([
        N("Flatten", ["x"], ["a"]),
        N("Gemm", ["a", "w1"], ["h"], transB=0, alpha=0.7),
        N("Split", ["h", "split"], ["p", "q"], axis=1),
        N("Abs", ["q"], ["qa"]), N("Add", ["qa", "one"], ["den"]), N("Div", ["p", "den"], ["r"]),
        N("Greater", ["p", "zero"], ["pos"]), N("Mul", ["p", "half"], ["ph"]),
        N("Where", ["pos", "r", "ph"], ["s"]),
        N("Gemm", ["w2", "s"], ["yt"], transA=1, transB=1), N("Transpose", ["yt"], ["y"], perm=[1, 0]),
    ], [_w("w1", 48, 8), _i("split", [4, 4]), _f("one", 1.0), _f("zero", 0.0), _f("half", 0.5),
        _w("w2", 4, 5)]),
    "matmul_both_active_softmax_layernorm": _graph([
        N("Reshape", ["x", "tok_shape"], ["t"]),                       # [n, 3, 16] tokens
        N("LayerNormalization", ["t", "ln_s", "ln_b"], ["tn"], axis=-1, epsilon=1e-5),
        N("MatMul", ["tn", "wq"], ["qk"]),                              # [n, 3, 16]
        N("Transpose", ["qk"], ["kt"], perm=[0, 2, 1]),
        N("MatMul", ["qk", "kt"], ["att"]),                             # both operands active
        N("Softmax", ["att"], ["pr"], axis=-1),
        N("MatMul", ["pr", "tn"], ["o"]),
        N("ReduceMin", ["o"], ["m"], axes=[1], keepdims=0),             # [n, 16]
        N("Add", ["m", "three"], ["m_pos"]), N("Log", ["m_pos"], ["lg"]),
        N("MatMul", ["lg", "w"], ["y"]),
    ], [_i("tok_shape", [0, 3, 16]), _w("ln_s", 16), _w("ln_b", 16), _w("wq", 16, 16, scale=0.2),
        _f("three", 3.0), _w("w", 16, 5)]),
    "pad_negative_gather_run_slices_expand_mean": _graph([
        N("Pad", ["x", "pads"], ["xp"], mode="constant"),               # +1 on H, -1 (crop) on W
        N("Gather", ["xp", "rows"], ["g"], axis=2),                     # rows 1..4 of 6
        N("Slice", ["g", "s0", "e0", "a0", "st0"], ["sl"]),             # W reversed: 2, 1
        N("ReduceMean", ["sl"], ["slm"], axes=[3], keepdims=1),
        N("Expand", ["slm", "eshape"], ["ce"]),                         # [n,3,4,1] -> [n,3,4,2]
        N("Mean", ["sl", "ce", "sl"], ["mn"]),
        N("GlobalMaxPool", ["mn"], ["gm"]), N("Flatten", ["gm"], ["fl"]),
        N("Add", ["fl", "two"], ["den"]), N("Reciprocal", ["den"], ["rc"]),
        N("MatMul", ["rc", "w"], ["y"]),
    ], [_i("pads", [0, 0, 1, 0, 0, 0, 1, -1]), _i("rows", [1, 2, 3, 4]),
        _i("s0", [-1]), _i("e0", [0]), _i("a0", [3]), _i("st0", [-1]),
        _i("eshape", [1, 3, 4, 2]), _f("two", 2.0), _w("w", 3, 5)]),
    "pools_and_activations": _graph([
        N("Conv", ["x", "k"], ["c"], pads=[1, 1, 1, 1], strides=[1, 1]),
        N("HardSigmoid", ["c"], ["hs"], alpha=0.3, beta=0.4),
        N("Softplus", ["c"], ["sp"]), N("Mul", ["hs", "sp"], ["m"]),
        N("MaxPool", ["m"], ["mp"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
        N("AveragePool", ["m"], ["ap"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
          count_include_pad=1),
        N("Sub", ["mp", "ap"], ["d"]), N("Tanh", ["d"], ["t"]),
        N("ReduceMean", ["t"], ["r"], axes=[2, 3], keepdims=0),
        N("Gemm", ["r", "w"], ["y"], transB=1),
    ], [_w("k", 4, 3, 3, 3), _w("w", 5, 4)]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_rule_directional_derivatives(case):
    grad = gradient_graph(prepare_forward(CASES[case]))
    assert check_model(grad).ok
    sess = session(grad)
    x = RNG.random((3, 3, 4, 4), dtype=np.float32) + 0.1
    y = np.array([0, 2, 4], np.int64)

    def loss(z):
        return float(sess.run(["loss"], {"images": z.astype(np.float32), "labels": y})[0].sum())

    g = sess.run(["grad"], {"images": x, "labels": y})[0].astype(np.float64)
    h = 1e-3
    for _ in range(3):
        v = RNG.standard_normal(x.shape)
        fd = (loss(x + h * v) - loss(x - h * v)) / (2 * h)
        ad = float((g * v).sum())
        assert abs(fd - ad) <= 2e-3 * max(1.0, abs(ad)), (fd, ad)
