"""Every reverse-mode rule of ``gradient._RULES``, each on a tiny graph, against torch autograd.

A case is a few hand-written ONNX nodes from ``x`` (images [3, 3, 4, 4]) to ``t`` using the
rule's operator on the differentiated path, and the same computation in torch. A fixed head,
``Flatten`` and ``MatMul`` by a random [numel(t), 5] matrix, turns ``t`` into logits, so every
element of ``t`` reaches the loss with its own weight. The graph goes through
``prepare_forward`` (as exported graphs do) and ``gradient_graph``, must pass the TensorRT
table check, and runs in ONNX Runtime; torch evaluates the case in float64 from the same
float32 inputs and differentiates the summed cross-entropy. Every operator has a torch
equivalent, so no case needs finite differences.

Tolerance, for grad, loss and logits alike: |got - ref| <= 1e-5 |ref| + 1e-6 max |ref|,
elementwise. The reference is exact to float64, so the error is ONNX Runtime's float32
rounding, a few ulps per operation over a dozen or so operations: measured at most 5e-7 of
max |ref| (3e-7 for grad), and every element within 1e-5 |ref| + 1e-7 max |ref|, so the
tolerance leaves a tenfold margin for other CPUs and ONNX Runtime builds. A wrong rule (a sign,
a factor, a misplaced element, a wrong branch) is off by O(1); even a rule fed gradients
scaled by 1.001 fails, which ``test_case_catches_a_perturbed_rule`` checks for every case.
Inputs avoid the points where a derivative jumps (ties, zeros, clip bounds), where PyTorch's
conventions rather than the calculus decide.
"""
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper, numpy_helper

from mspd_edge.export.gradient import _RULES, UnsupportedOperatorError, gradient_graph
from mspd_edge.bundle import BATCH, IMAGES, LOGITS
from mspd_edge.export.onnxutil import make_model, prepare_forward
from mspd_edge.export.trt_support import check_model

from export_helpers import session

SHAPE, CLASSES = (3, 3, 4, 4), 5
LABELS = np.array([0, 2, 4], np.int64)
SIGNED, POSITIVE, WIDE = (-2.0, 2.0), (0.5, 2.0), (-4.0, 4.0)
RTOL, ATOL = 1e-5, 1e-6
RNG = np.random.default_rng(0)


def W(*shape):
    return (RNG.standard_normal(shape) * 0.5).astype(np.float32)


def ints(*values):
    return np.array(values, np.int64)


def N(op, inputs, outputs="t", **attrs):
    """A node; inputs and outputs are space-separated names, ``x`` being the images."""
    names = [IMAGES if n == "x" else n for n in inputs.split()]
    return helper.make_node(op, names, outputs.split(), **attrs)


@dataclass
class Case:
    name: str            # the operator, or OPERATOR/variant
    nodes: list
    torch_fn: object     # (x, c) -> t, with c the float constants as float64 tensors
    consts: dict = field(default_factory=dict)
    opset: int = 17
    domain: tuple = SIGNED
    prepare: bool = True

    @property
    def op(self):
        return self.name.split("/")[0]

    def torch_t(self, x):
        c = SimpleNamespace(**{k: torch.from_numpy(v).double() for k, v in self.consts.items()
                               if v.dtype == np.float32})
        return self.torch_fn(x, c)

    def model(self, head):
        inits = [numpy_helper.from_array(v, k) for k, v in {**self.consts, "head": head}.items()]
        graph = helper.make_graph(
            self.nodes + [N("Flatten", "t", "flat"), N("MatMul", "flat head", LOGITS)], self.name,
            [helper.make_tensor_value_info(IMAGES, TensorProto.FLOAT, [BATCH, *SHAPE[1:]])],
            [helper.make_tensor_value_info(LOGITS, TensorProto.FLOAT, [BATCH, CLASSES])], inits)
        return make_model(graph, self.opset)


def C(name, nodes, torch_fn, **kwargs):
    options = {k: kwargs.pop(k) for k in ("opset", "domain", "prepare") if k in kwargs}
    return Case(name, nodes, torch_fn, {k: np.asarray(v) for k, v in kwargs.items()}, **options)


def unary(name, torch_fn, domain=SIGNED, **attrs):
    """A case of one node on x; ``name`` as in :class:`Case`."""
    return C(name, [N(name.split("/")[0], "x", **attrs)], lambda x, c: torch_fn(x), domain=domain)


# The channel mean [n, 1, 4, 4]: an active operand that broadcasts against x.
MEAN_C = N("ReduceMean", "x", "m", axes=[1])


def mean_c(x):
    return x.mean(1, keepdim=True)


CASES = [
    unary("Abs", torch.abs),
    unary("Relu", torch.relu),
    unary("LeakyRelu", lambda x: F.leaky_relu(x, 0.1), alpha=0.1),
    unary("Elu", lambda x: F.elu(x, 0.7), alpha=0.7),
    unary("Sigmoid", torch.sigmoid),
    unary("Tanh", torch.tanh),
    unary("Erf", torch.erf),
    C("Gelu", [N("Gelu", "x")], lambda x, c: F.gelu(x), opset=20),
    unary("Exp", torch.exp),
    unary("Log", torch.log, POSITIVE),
    unary("Sqrt", torch.sqrt, POSITIVE),
    unary("Reciprocal", torch.reciprocal, POSITIVE),
    unary("Neg", torch.neg),
    unary("Softplus", F.softplus),
    unary("HardSigmoid", lambda x: (0.3 * x + 0.4).clamp(0, 1), WIDE, alpha=0.3, beta=0.4),
    unary("HardSwish", F.hardswish, WIDE),
    unary("Cast", lambda x: x, to=TensorProto.FLOAT),
    unary("Flatten", lambda x: x.flatten(1), axis=1),
    unary("Transpose", lambda x: x.permute(0, 2, 3, 1), perm=[0, 2, 3, 1]),
    unary("Softmax", lambda x: x.softmax(1), axis=1),
    unary("LogSoftmax", lambda x: x.log_softmax(2), axis=2),
    unary("ReduceMean", lambda x: x.mean(2), axes=[2], keepdims=0),
    unary("ReduceMin", lambda x: x.amin((2, 3), keepdim=True), axes=[2, 3]),
    unary("GlobalAveragePool", lambda x: x.mean((2, 3), keepdim=True)),
    unary("GlobalMaxPool", lambda x: x.amax((2, 3), keepdim=True)),
    unary("MaxPool", lambda x: F.max_pool2d(x, 2), kernel_shape=[2, 2], strides=[2, 2]),
    unary("MaxPool/overlapping", lambda x: F.max_pool2d(x, 3, 2, 1),
          kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
    unary("AveragePool", lambda x: F.avg_pool2d(x, 2), kernel_shape=[2, 2], strides=[2, 2]),
    unary("AveragePool/padded", lambda x: F.avg_pool2d(x, 3, 2, 1, count_include_pad=False),
          kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], count_include_pad=0),
    # prepare_forward bypasses Identity nodes: this one is differentiated as built.
    C("Identity", [N("Identity", "x")], lambda x, c: x, prepare=False),
    # An explicit training_mode input keeps the Dropout node through prepare_forward.
    C("Dropout", [N("Dropout", "x ratio off")], lambda x, c: x,
      ratio=np.float32(0.5), off=np.array(False)),
    C("Add", [MEAN_C, N("Add", "x m", "a"), N("Add", "b a")],
      lambda x, c: x + mean_c(x) + c.b, b=W(4)),
    C("Sub", [MEAN_C, N("Sub", "m x")], lambda x, c: mean_c(x) - x),
    C("Mul", [MEAN_C, N("Mul", "x m", "a"), N("Mul", "a w")],
      lambda x, c: x * mean_c(x) * c.w, w=W(3, 1, 1)),
    C("Div", [MEAN_C, N("Div", "x m")], lambda x, c: x / mean_c(x), domain=POSITIVE),
    C("Sum", [MEAN_C, N("Sum", "x m b")], lambda x, c: x + mean_c(x) + c.b, b=W(4)),
    C("Mean", [MEAN_C, N("Mean", "x m x")], lambda x, c: (2 * x + mean_c(x)) / 3),
    C("Where", [MEAN_C, N("Greater", "x zero", "pos"), N("Where", "pos x m")],
      lambda x, c: torch.where(x > 0, x, mean_c(x)), zero=np.float32(0)),
    C("Pow", [N("Pow", "x p")], lambda x, c: x ** 1.5, p=np.float32(1.5), domain=POSITIVE),
    C("Pow/square", [N("Pow", "x p")], lambda x, c: x ** 2, p=np.float32(2)),
    C("Clip", [N("Clip", "x lo hi")], lambda x, c: x.clamp(-0.5, 0.5),
      lo=np.float32(-0.5), hi=np.float32(0.5)),
    C("Reshape", [N("Reshape", "x shape")], lambda x, c: x.reshape(len(x), 4, 12),
      shape=ints(0, 4, 12)),
    C("Squeeze", [N("ReduceMean", "x", "r", axes=[2]), N("Squeeze", "r axes")],
      lambda x, c: x.mean(2), axes=ints(2)),
    C("Unsqueeze", [N("Unsqueeze", "x axes")], lambda x, c: x[:, :, None, :, None], axes=ints(2, 4)),
    C("Expand", [MEAN_C, N("Expand", "m shape")], lambda x, c: mean_c(x).expand(-1, 3, -1, -1),
      shape=ints(1, 3, 1, 1)),
    C("Concat", [MEAN_C, N("Concat", "m x m", axis=1)],
      lambda x, c: torch.cat([mean_c(x), x, mean_c(x)], 1)),
    # The unused middle part takes the rule's zero-gradient branch.
    C("Split", [N("Split", "x split", "a b d", axis=2), N("Mul", "a d")],
      lambda x, c: x[:, :, :1] * x[:, :, 2:], split=ints(1, 1, 2)),
    C("Slice", [N("Slice", "x starts ends axes steps")], lambda x, c: x[:, :, 1:3].flip(3),
      starts=ints(1, -1), ends=ints(3, -5), axes=ints(2, 3), steps=ints(1, -1)),
    C("Pad", [N("Pad", "x pads")], lambda x, c: F.pad(x, (0, -1, 1, 0)),
      pads=ints(0, 0, 1, 0, 0, 0, 0, -1)),
    C("Gather", [N("Gather", "x idx", axis=2)], lambda x, c: x[:, :, 1:4], idx=ints(1, 2, 3)),
    C("Gather/scalar", [N("Gather", "x idx", axis=3)], lambda x, c: x[..., -2],
      idx=np.array(-2, np.int64)),
    C("MatMul", [N("MatMul", "x w")], lambda x, c: x @ c.w, w=W(4, 5)),
    C("MatMul/both-active", [N("Transpose", "x", "xt", perm=[0, 1, 3, 2]), N("MatMul", "x xt")],
      lambda x, c: x @ x.transpose(2, 3)),
    C("Gemm", [N("Flatten", "x", "f"), N("ReduceMean", "f", "r", axes=[1]),
               N("Gemm", "f w r", alpha=0.5, beta=2.0, transB=1)],
      lambda x, c: 0.5 * x.flatten(1) @ c.w.T + 2 * x.flatten(1).mean(1, keepdim=True), w=W(5, 48)),
    C("Gemm/transposed", [N("Flatten", "x", "f"), N("Gemm", "w f", "g", transA=1, transB=1),
                          N("Transpose", "g", perm=[1, 0])],
      lambda x, c: (c.w.T @ x.flatten(1).T).T, w=W(48, 5)),
    C("Conv", [N("Conv", "x w b", pads=[1, 1, 1, 1])],
      lambda x, c: F.conv2d(x, c.w, c.b, padding=1), w=W(4, 3, 3, 3), b=W(4)),
    C("Conv/strided", [N("Conv", "x w", strides=[2, 2], auto_pad="SAME_UPPER", group=3)],
      lambda x, c: F.conv2d(F.pad(x, (0, 1, 0, 1)), c.w, stride=2, groups=3), w=W(3, 1, 3, 3)),
    # Stride 3 leaves the last two rows and columns out of every window.
    C("Conv/dropped-pixels", [N("Conv", "x w", strides=[3, 3])],
      lambda x, c: F.conv2d(x, c.w, stride=3), w=W(4, 3, 2, 2)),
    C("BatchNormalization", [N("BatchNormalization", "x s b mu var", epsilon=1e-3)],
      lambda x, c: F.batch_norm(x, c.mu, c.var, c.s, c.b, False, 0.0, 1e-3),
      s=W(3), b=W(3), mu=W(3), var=np.float32([0.5, 1.0, 2.0])),
    C("LayerNormalization", [N("LayerNormalization", "x s b", axis=2, epsilon=1e-5)],
      lambda x, c: F.layer_norm(x, (4, 4), c.s, c.b, 1e-5), s=W(4, 4), b=W(4, 4)),
    C("LayerNormalization/unused-statistics", [N("LayerNormalization", "x s", "t mu rstd")],
      lambda x, c: F.layer_norm(x, (4,), c.s), s=W(4)),
    C("ReduceSum", [N("ReduceSum", "x axes", keepdims=0)], lambda x, c: x.sum((1, 3)),
      axes=ints(1, 3)),
    # Opset 18 moves Reduce* axes from an attribute to an input.
    C("ReduceMax", [N("ReduceMax", "x axes", keepdims=0)], lambda x, c: x.amax(1),
      axes=ints(1), opset=18),
]


def test_every_rule_has_a_case():
    assert {case.op for case in CASES} == set(_RULES)


def _run(case):
    """The gradient graph of ``case``, its ONNX Runtime outputs and torch's float64 references."""
    x = np.random.default_rng(1).uniform(*case.domain, SHAPE).astype(np.float32)
    xt = torch.from_numpy(x).double().requires_grad_(True)
    t = case.torch_t(xt).flatten(1)
    rng = np.random.default_rng(2)
    head = (rng.standard_normal((t.shape[1], CLASSES)) / np.sqrt(t.shape[1])).astype(np.float32)
    logits = t @ torch.from_numpy(head).double()
    loss = F.cross_entropy(logits, torch.from_numpy(LABELS), reduction="none")
    (grad,) = torch.autograd.grad(loss.sum(), xt)
    model = case.model(head)
    forward = prepare_forward(model) if case.prepare else model
    assert case.op in {n.op_type for n in forward.graph.node}, "the operator did not survive"
    grad_model = gradient_graph(forward)
    ours = session(grad_model).run(["grad", "loss", "logits"], {IMAGES: x, "labels": LABELS})
    return grad_model, ours, [v.detach().numpy() for v in (grad, loss, logits)]


def _close(got, ref):
    return np.allclose(got, ref, rtol=RTOL, atol=ATOL * np.abs(ref).max())


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_rule_matches_torch_autograd(case):
    grad_model, ours, refs = _run(case)
    report = check_model(grad_model, case.name)
    assert report.ok, report.lines()
    for name, got, ref in zip(("grad", "loss", "logits"), ours, refs):
        error, scale = np.abs(got - ref).max(), np.abs(ref).max()
        assert _close(got, ref), f"{name}: max |error| {error:.2e}, max |ref| {scale:.2e}"


def test_layernorm_statistics_get_no_gradient():
    """A used Mean/InvStdDev output of LayerNormalization is refused, not differentiated wrongly."""
    case = C("LayerNormalization", [N("LayerNormalization", "x s", "y mu rstd"), N("Mul", "y rstd")],
             None, s=W(4))
    with pytest.raises(UnsupportedOperatorError, match="only the Y output"):
        gradient_graph(prepare_forward(case.model(W(48, CLASSES))))


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_case_catches_a_perturbed_rule(case, monkeypatch):
    """Scaling what the rule receives by 1.001 must fail the comparison: the case reaches it."""
    rule = _RULES[case.op]

    def perturbed(ad, node, dys):
        scale = ad.b.const(np.float32(1.001))
        rule(ad, node, [None if dy is None else ad.b.op("Mul", [dy, scale]) for dy in dys])

    monkeypatch.setitem(_RULES, case.op, perturbed)
    _, (grad, _, _), (ref_grad, _, _) = _run(case)
    assert not _close(grad, ref_grad)
