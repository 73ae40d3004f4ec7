"""Reverse-mode differentiation of a classifier graph: ``images`` -> ``d sum-CE / d images``.

:func:`gradient_graph` takes a classifier in the canonical form of
:func:`mspd_edge.export.onnxutil.prepare_forward` (any exporter, any opset 13..20 once prepared)
and returns a graph with inputs ``images`` (float32 [n, C, H, W]) and ``labels`` (int64 [n]) and
outputs ``grad`` (float32 [n, C, H, W]), ``loss`` (float32 [n], the per-image cross-entropy;
``grad`` is the derivative of its sum) and ``logits`` (float32 [n, K]).

The gradient is written by hand, one rule per ONNX operator (``_RULES``), not by a generic AD
package: the rules only emit operators TensorRT's ONNX parser accepts, keep every non-batch
extent static (so a dynamic batch never blocks a rule), fold what can be folded into
initializers (e.g. the flipped, transposed kernel of a stride-1 convolution's backward pass)
and follow PyTorch's conventions where they matter for exactness (ReLU's derivative at 0 is 0,
a max-pool window routes its gradient to the first maximum, ``amax``/``ReduceMax`` splits it
evenly between ties). The loss head is ``LogSoftmax`` and a one-hot built with ``Equal``;
``SoftmaxCrossEntropyLoss``/``NegativeLogLikelihoodLoss`` are avoided (TensorRT cannot parse
them). An operator without a rule on the path from ``images`` to ``logits`` raises
:class:`UnsupportedOperatorError` naming it.
"""
import math
from collections import defaultdict

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from mspd_edge.bundle import BATCH, GRAD, IMAGES, LABELS, LOGITS, LOSS

from .onnxutil import Builder, ExportError, Shapes, finalize, make_model, node_attr, opset_of

_INT64_MAX = np.iinfo(np.int64).max
_INT64_MIN_PLUS = -np.iinfo(np.int64).max   # what torch's exporter writes for "to the start"

# Operators whose outputs carry no derivative (PyTorch agrees: sign, rounding, comparisons).
_NO_DERIVATIVE = {
    "Shape", "Size", "Sign", "Floor", "Ceil", "Round", "Equal", "Greater", "Less",
    "GreaterOrEqual", "LessOrEqual", "Not", "And", "Or", "Xor", "ArgMax", "ArgMin", "NonZero",
    "ConstantOfShape", "EyeLike", "OneHot", "IsNaN", "IsInf", "Range", "Hardmax",
}
_FLOAT_TYPES = {TensorProto.FLOAT}
# Folded backward weights (flipped conv kernels, transposed MatMul weights) are added while the
# graph's initializers stay under this size; beyond it the backward ops share the forward
# weights (ConvTranspose, a Transpose node) so that the graph stays under protobuf's 2 GiB.
FOLD_BUDGET_BYTES = 3 << 29


class UnsupportedOperatorError(ExportError):
    """An operator on the differentiated path has no gradient rule (or an unsupported form)."""


def _describe(node):
    return f"node {node.name or node.output[0]!r} (op {node.op_type})"


class _Reverse:
    def __init__(self, forward):
        self.model = forward
        self.graph = forward.graph
        self.opset = opset_of(forward)
        self.shapes = Shapes(forward)
        self.consts = {i.name: numpy_helper.to_array(i) for i in self.graph.initializer}
        taken = {i.name for i in self.graph.initializer} | {LABELS, GRAD, LOSS}
        for node in self.graph.node:
            taken.update(node.input)
            taken.update(node.output)
            taken.add(node.name)
        self.b = Builder(self.opset, taken, prefix="grad/")
        self.grads = defaultdict(list)
        self.active = self._active_values()
        self.budget = FOLD_BUDGET_BYTES - sum(v.nbytes for v in self.consts.values())

    def fold(self, nbytes):
        """Whether a folded constant of ``nbytes`` still fits the budget (and reserve it)."""
        if nbytes > self.budget:
            return False
        self.budget -= nbytes
        return True

    # ---- bookkeeping ------------------------------------------------------------------------
    def _active_values(self):
        active = {IMAGES}
        for node in self.graph.node:
            if node.op_type in _NO_DERIVATIVE:
                continue
            if any(n in active for n in node.input if n):
                for out in node.output:
                    if out and self.shapes.types.get(out) in _FLOAT_TYPES:
                        active.add(out)
        return active

    def is_active(self, name):
        return bool(name) and name in self.active

    def const(self, node, index):
        name = node.input[index] if index < len(node.input) else ""
        if not name:
            return None
        if name not in self.consts:
            raise UnsupportedOperatorError(
                f"{_describe(node)}: input {index} ({name!r}) must be a constant")
        return self.consts[name]

    def dims(self, name):
        return self.shapes.get(name)

    def static(self, name, axes=None):
        try:
            return self.shapes.static(name, axes)
        except ExportError as err:
            raise UnsupportedOperatorError(str(err)) from None

    def total(self, name):
        parts = self.grads.get(name, [])
        if not parts:
            return None
        if len(parts) == 1:
            return parts[0]
        total = self.b.op("Sum", parts, "acc")
        self.grads[name] = [total]
        return total

    # ---- small emitters ---------------------------------------------------------------------
    def zero(self):
        return self.b.const(np.float32(0), "zero")

    def one(self):
        return self.b.const(np.float32(1), "one")

    def reshape_like(self, dy, like):
        dims = self.dims(like)
        unknown = [i for i, d in enumerate(dims) if d is None]
        if len(unknown) <= 1:
            target = [-1 if d is None else d for d in dims]
            return self.b.op("Reshape", [dy, self.b.ints(target, "shape")], "reshape")
        return self.b.op("Reshape", [dy, self.b.op("Shape", [like], "shape")], "reshape")

    def unbroadcast(self, dy, out, operand):
        """Sum ``dy`` (shaped like tensor ``out``, or dims ``out``) back to ``operand``'s shape."""
        od = self.dims(out) if isinstance(out, str) else list(out)
        xd = self.dims(operand)
        lead = len(od) - len(xd)
        axes = list(range(lead))
        for i, d in enumerate(xd):
            o = od[lead + i]
            if d == 1 and o != 1:
                axes.append(lead + i)
            elif d is not None and o is not None and d != o:
                raise UnsupportedOperatorError(f"cannot broadcast {operand!r} {xd} to {out!r} {od}")
        if not axes:
            return dy
        r = self.b.reduce("ReduceSum", dy, axes, keepdims=1, hint="unbroadcast")
        if lead:
            r = self.b.squeeze(r, list(range(lead)))
        return r

    def emit(self, node, index, value):
        name = node.input[index]
        if self.is_active(name) and value is not None:
            self.grads[name].append(value)

    def spatial_attrs(self, node, x, y, kernel):
        """Explicit pads, strides, dilations of a 2-D conv/pool node (auto_pad resolved)."""
        nsp = len(kernel)
        strides = list(node_attr(node, "strides", [1] * nsp))
        dilations = list(node_attr(node, "dilations", [1] * nsp))
        pads = list(node_attr(node, "pads", [0] * (2 * nsp)))
        auto = node_attr(node, "auto_pad", "NOTSET")
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            in_sp = self.static(x, range(2, 2 + nsp))
            out_sp = self.static(y, range(2, 2 + nsp))
            pads = [0] * (2 * nsp)
            for i in range(nsp):
                total = max(0, (out_sp[i] - 1) * strides[i] + dilations[i] * (kernel[i] - 1) + 1 - in_sp[i])
                small, big = total // 2, total - total // 2
                pads[i], pads[i + nsp] = (small, big) if auto == "SAME_UPPER" else (big, small)
        elif auto == "VALID":
            pads = [0] * (2 * nsp)
        return pads, strides, dilations

    def scatter_windows(self, dy, x, y, kernel, pads, strides, dilations, channels, weight):
        """ConvTranspose of ``dy`` with a depthwise ``weight``: adds each window back onto x."""
        in_sp = self.static(x, [2, 3])
        out_sp = self.static(y, [2, 3])
        pads_t, extra = self._transpose_pads(in_sp, out_sp, kernel, pads, strides, dilations)
        dx = self.b.op("ConvTranspose", [dy, self.b.const(weight, "pool_w")], "pool_bwd",
                       group=channels, kernel_shape=list(kernel), strides=list(strides),
                       dilations=list(dilations), pads=pads_t)
        return self._pad_end(dx, extra)

    @staticmethod
    def _transpose_pads(in_sp, out_sp, kernel, pads, strides, dilations):
        nsp = len(kernel)
        pads_t, extra = list(pads[:nsp]) + [0] * nsp, [0] * nsp
        for i in range(nsp):
            full = (out_sp[i] - 1) * strides[i] + dilations[i] * (kernel[i] - 1) + 1
            end = full - pads[i] - in_sp[i]     # what to crop at the end
            if end >= 0:
                pads_t[nsp + i] = end
            else:
                extra[i] = -end
        return pads_t, extra

    def _pad_end(self, x, extra):
        if not any(extra):
            return x
        return self.b.pad(x, [0, 0, 0, 0, 0, 0] + list(extra), "pad_end")

    # ---- the pass ---------------------------------------------------------------------------
    def run(self):
        b = self.b
        k = self.dims(LOGITS)[1]
        logp = b.op("LogSoftmax", [LOGITS], "log_probs", axis=1)
        probs = b.op("Exp", [logp], "probs")
        classes = b.const(np.arange(k, dtype=np.int64).reshape(1, k), "classes", dtype=np.int64)
        hit = b.op("Equal", [b.unsqueeze(LABELS, [1], "labels_col"), classes], "label_hit")
        onehot = b.op("Cast", [hit], "onehot", to=TensorProto.FLOAT)
        picked = b.reduce("ReduceSum", b.op("Mul", [logp, onehot], "picked"), [1], keepdims=0)
        b.nodes.append(helper.make_node("Neg", [picked], [LOSS], name=b.fresh("loss_node")))
        self.grads[LOGITS].append(b.op("Sub", [probs, onehot], "dlogits"))

        for node in reversed(list(self.graph.node)):
            if not any(self.is_active(o) for o in node.output):
                continue
            dys = [self.total(o) if self.is_active(o) else None for o in node.output]
            if all(d is None for d in dys):
                continue
            rule = _RULES.get(node.op_type)
            if rule is None:
                raise UnsupportedOperatorError(
                    f"cannot differentiate {_describe(node)}: no gradient rule for {node.op_type} "
                    f"(the supported operators are listed in docs/export.md)")
            rule(self, node, dys)
        grad = self.total(IMAGES)
        if grad is None:
            raise ExportError("the logits do not depend on the images")
        b.nodes.append(helper.make_node("Identity", [grad], [GRAD], name=b.fresh("grad_node")))
        return self.build()

    def build(self):
        g = self.graph
        c, h, w = self.static(IMAGES, [1, 2, 3])
        k = self.dims(LOGITS)[1]
        f32, i64 = TensorProto.FLOAT, TensorProto.INT64
        graph = helper.make_graph(
            list(g.node) + self.b.nodes, "backbone_grad",
            [helper.make_tensor_value_info(IMAGES, f32, [BATCH, c, h, w]),
             helper.make_tensor_value_info(LABELS, i64, [BATCH])],
            [helper.make_tensor_value_info(GRAD, f32, [BATCH, c, h, w]),
             helper.make_tensor_value_info(LOSS, f32, [BATCH]),
             helper.make_tensor_value_info(LOGITS, f32, [BATCH, k])],
            list(g.initializer) + self.b.initializers)
        graph.doc_string = "d sum-CE(logits, labels) / d images; loss is the per-image CE"
        return finalize(make_model(graph, self.opset))


# ---- rules ----------------------------------------------------------------------------------
# A rule gets the reverse pass, the forward node and the incoming gradients of its outputs
# (None where an output gets none) and adds contributions with ``ad.emit(node, i, value)``.


def _elementwise(fn):
    def rule(ad, node, dys):
        ad.emit(node, 0, fn(ad, node, dys[0], node.input[0], node.output[0]))
    return rule


def _add(ad, node, dys):
    dy, y = dys[0], node.output[0]
    for i in range(2):
        if ad.is_active(node.input[i]):
            ad.emit(node, i, ad.unbroadcast(dy, y, node.input[i]))


def _sub(ad, node, dys):
    dy, y = dys[0], node.output[0]
    a, b_ = node.input
    if ad.is_active(a):
        ad.emit(node, 0, ad.unbroadcast(dy, y, a))
    if ad.is_active(b_):
        ad.emit(node, 1, ad.unbroadcast(ad.b.op("Neg", [dy]), y, b_))


def _mul(ad, node, dys):
    dy, y = dys[0], node.output[0]
    a, b_ = node.input
    if ad.is_active(a):
        ad.emit(node, 0, ad.unbroadcast(ad.b.op("Mul", [dy, b_]), y, a))
    if ad.is_active(b_):
        ad.emit(node, 1, ad.unbroadcast(ad.b.op("Mul", [dy, a]), y, b_))


def _div(ad, node, dys):
    dy, y = dys[0], node.output[0]
    a, b_ = node.input
    if ad.is_active(a):
        ad.emit(node, 0, ad.unbroadcast(ad.b.op("Div", [dy, b_]), y, a))
    if ad.is_active(b_):
        t = ad.b.op("Div", [ad.b.op("Mul", [dy, y]), b_])
        ad.emit(node, 1, ad.unbroadcast(ad.b.op("Neg", [t]), y, b_))


def _sum(ad, node, dys):
    for i, name in enumerate(node.input):
        if ad.is_active(name):
            ad.emit(node, i, ad.unbroadcast(dys[0], node.output[0], name))


def _mean(ad, node, dys):
    scaled = ad.b.op("Div", [dys[0], ad.b.const(np.float32(len(node.input)))])
    for i, name in enumerate(node.input):
        if ad.is_active(name):
            ad.emit(node, i, ad.unbroadcast(scaled, node.output[0], name))


def _where(ad, node, dys):
    cond, a, b_ = node.input
    dy, y, zero = dys[0], node.output[0], ad.zero()
    if ad.is_active(a):
        ad.emit(node, 1, ad.unbroadcast(ad.b.op("Where", [cond, dy, zero]), y, a))
    if ad.is_active(b_):
        ad.emit(node, 2, ad.unbroadcast(ad.b.op("Where", [cond, zero, dy]), y, b_))


def _relu(ad, node, dy, x, y):
    # PyTorch: threshold_backward(grad, result, 0): the derivative at 0 is 0.
    return ad.b.op("Where", [ad.b.op("Greater", [y, ad.zero()]), dy, ad.zero()], "relu_bwd")


def _leaky_relu(ad, node, dy, x, y):
    alpha = ad.b.const(np.float32(node_attr(node, "alpha", 0.01)))
    return ad.b.op("Where", [ad.b.op("Greater", [x, ad.zero()]), dy, ad.b.op("Mul", [dy, alpha])])


def _elu(ad, node, dy, x, y):
    alpha = ad.b.const(np.float32(node_attr(node, "alpha", 1.0)))
    neg = ad.b.op("Mul", [dy, ad.b.op("Add", [y, alpha])])
    return ad.b.op("Where", [ad.b.op("Greater", [x, ad.zero()]), dy, neg])


def _sigmoid(ad, node, dy, x, y):
    # PyTorch sigmoid_backward: grad * (1 - y) * y
    t = ad.b.op("Mul", [dy, ad.b.op("Sub", [ad.one(), y])])
    return ad.b.op("Mul", [t, y], "sigmoid_bwd")


def _tanh(ad, node, dy, x, y):
    return ad.b.op("Mul", [dy, ad.b.op("Sub", [ad.one(), ad.b.op("Mul", [y, y])])], "tanh_bwd")


def _erf(ad, node, dy, x, y):
    c = ad.b.const(np.float32(2 / math.sqrt(math.pi)))
    e = ad.b.op("Exp", [ad.b.op("Neg", [ad.b.op("Mul", [x, x])])])
    return ad.b.op("Mul", [dy, ad.b.op("Mul", [c, e])], "erf_bwd")


def _gelu(ad, node, dy, x, y):
    if node_attr(node, "approximate", "none") != "none":
        raise UnsupportedOperatorError(f"{_describe(node)}: only approximate='none' is differentiated")
    b = ad.b
    cdf = b.op("Mul", [b.const(np.float32(0.5)), b.op("Add", [ad.one(), b.op(
        "Erf", [b.op("Mul", [x, b.const(np.float32(1 / math.sqrt(2)))])])])])
    pdf = b.op("Mul", [b.const(np.float32(1 / math.sqrt(2 * math.pi))), b.op(
        "Exp", [b.op("Mul", [b.op("Mul", [x, x]), b.const(np.float32(-0.5))])])])
    return b.op("Mul", [dy, b.op("Add", [cdf, b.op("Mul", [x, pdf])])], "gelu_bwd")


def _exp(ad, node, dy, x, y):
    return ad.b.op("Mul", [dy, y])


def _log(ad, node, dy, x, y):
    return ad.b.op("Div", [dy, x])


def _sqrt(ad, node, dy, x, y):
    return ad.b.op("Div", [dy, ad.b.op("Mul", [y, ad.b.const(np.float32(2))])])


def _reciprocal(ad, node, dy, x, y):
    return ad.b.op("Neg", [ad.b.op("Mul", [dy, ad.b.op("Mul", [y, y])])])


def _neg(ad, node, dy, x, y):
    return ad.b.op("Neg", [dy])


def _abs(ad, node, dy, x, y):
    return ad.b.op("Mul", [dy, ad.b.op("Sign", [x])])


def _softplus(ad, node, dy, x, y):
    return ad.b.op("Mul", [dy, ad.b.op("Sigmoid", [x])])


def _hard_sigmoid(ad, node, dy, x, y):
    b = ad.b
    alpha = np.float32(node_attr(node, "alpha", 0.2))
    beta = np.float32(node_attr(node, "beta", 0.5))
    t = b.op("Add", [b.op("Mul", [x, b.const(alpha)]), b.const(beta)])
    inside = b.op("And", [b.op("Greater", [t, ad.zero()]), b.op("Less", [t, ad.one()])])
    return b.op("Where", [inside, b.op("Mul", [dy, b.const(alpha)]), ad.zero()])


def _hard_swish(ad, node, dy, x, y):
    # PyTorch hardswish_backward: 0 below -3, grad * (x / 3 + 0.5) up to 3, grad above.
    b = ad.b
    mid = b.op("Mul", [dy, b.op("Add", [b.op("Div", [x, b.const(np.float32(3))]), b.const(np.float32(0.5))])])
    upper = b.op("Where", [b.op("LessOrEqual", [x, b.const(np.float32(3))]), mid, dy])
    return b.op("Where", [b.op("Less", [x, b.const(np.float32(-3))]), ad.zero(), upper])


def _pow(ad, node, dys):
    if ad.is_active(node.input[1]):
        raise UnsupportedOperatorError(f"{_describe(node)}: only a constant exponent is differentiated")
    p = ad.const(node, 1)
    if p.size != 1:
        raise UnsupportedOperatorError(f"{_describe(node)}: only a scalar exponent is differentiated")
    p = float(p.reshape(()))
    b, x, dy = ad.b, node.input[0], dys[0]
    if p == 2.0:
        d = b.op("Mul", [x, b.const(np.float32(2))])
    elif p == 1.0:
        d = None
    else:
        d = b.op("Mul", [b.const(np.float32(p)), b.op("Pow", [x, b.const(np.float32(p - 1))])])
    ad.emit(node, 0, dy if d is None else ad.unbroadcast(b.op("Mul", [dy, d]), node.output[0], x))


def _clip(ad, node, dys):
    b, x = ad.b, node.input[0]
    if ad.opset < 11:
        lo, hi = node_attr(node, "min"), node_attr(node, "max")
        lo = None if lo is None else b.const(np.float32(lo))
        hi = None if hi is None else b.const(np.float32(hi))
    else:
        for i in (1, 2):
            if i < len(node.input) and node.input[i] and ad.is_active(node.input[i]):
                raise UnsupportedOperatorError(f"{_describe(node)}: min/max must not depend on the images")
        lo = node.input[1] if len(node.input) > 1 and node.input[1] else None
        hi = node.input[2] if len(node.input) > 2 and node.input[2] else None
    mask = None
    for bound, op in ((lo, "GreaterOrEqual"), (hi, "LessOrEqual")):
        if bound is not None:
            m = b.op(op, [x, bound])
            mask = m if mask is None else b.op("And", [mask, m])
    ad.emit(node, 0, dys[0] if mask is None else b.op("Where", [mask, dys[0], ad.zero()]))


def _passthrough(ad, node, dys):
    ad.emit(node, 0, dys[0])


def _cast(ad, node, dys):
    if node_attr(node, "to") != TensorProto.FLOAT or ad.shapes.types.get(node.input[0]) != TensorProto.FLOAT:
        raise UnsupportedOperatorError(f"{_describe(node)}: only float32 -> float32 casts are differentiated")
    ad.emit(node, 0, dys[0])


def _reshape(ad, node, dys):
    ad.emit(node, 0, ad.reshape_like(dys[0], node.input[0]))


def _transpose(ad, node, dys):
    rank = len(ad.dims(node.input[0]))
    perm = list(node_attr(node, "perm", list(range(rank))[::-1]))
    ad.emit(node, 0, ad.b.op("Transpose", [dys[0]], "transpose_bwd", perm=[int(i) for i in np.argsort(perm)]))


def _expand(ad, node, dys):
    ad.emit(node, 0, ad.unbroadcast(dys[0], node.output[0], node.input[0]))


def _concat(ad, node, dys):
    axis = node_attr(node, "axis")
    rank = len(ad.dims(node.output[0]))
    axis = axis % rank
    offset = 0
    for i, name in enumerate(node.input):
        extent = ad.dims(name)[axis]
        if extent is None:
            raise UnsupportedOperatorError(
                f"{_describe(node)}: the extent of input {name!r} along axis {axis} must be static")
        if ad.is_active(name):
            ad.emit(node, i, ad.b.slice(dys[0], [offset], [offset + extent], [axis], hint="concat_bwd"))
        offset += extent


def _split(ad, node, dys):
    b = ad.b
    axis = node_attr(node, "axis", 0) % len(ad.dims(node.input[0]))
    parts = []
    for out, dy in zip(node.output, dys):
        if dy is None:
            dy = b.op("ConstantOfShape", [b.op("Shape", [out])], "zeros",
                      value=numpy_helper.from_array(np.zeros(1, np.float32)))
        parts.append(dy)
    ad.emit(node, 0, parts[0] if len(parts) == 1 else b.op("Concat", parts, "split_bwd", axis=axis))


def _slice(ad, node, dys):
    x = node.input[0]
    if ad.opset < 10:
        raise UnsupportedOperatorError(f"{_describe(node)}: Slice before opset 10 is not differentiated")
    starts, ends = ad.const(node, 1), ad.const(node, 2)
    rank = len(ad.dims(x))
    axes = ad.const(node, 3)
    axes = list(range(len(starts))) if axes is None else [int(a) % rank for a in axes]
    steps = ad.const(node, 4)
    steps = [1] * len(starts) if steps is None else [int(s) for s in steps]
    pads = [0] * (2 * rank)
    flip_axes = []
    for axis, start, end, step in zip(axes, starts, ends, steps):
        dim = ad.static(x, [axis])[0]
        start, end = int(start), int(end)
        if step == 1:
            start = min(max(start + dim if start < 0 else start, 0), dim)
            end = min(max(end + dim if end < 0 else end, 0), dim)
            count = max(0, end - start)
            pads[axis], pads[rank + axis] = start, dim - start - count
        elif step == -1:
            start = min(max(start + dim if start < 0 else start, 0), dim - 1)
            end = min(max(end + dim if end < 0 else end, -1), dim - 1)
            count = max(0, start - end)
            flip_axes.append(axis)
            pads[axis], pads[rank + axis] = start - count + 1, dim - start - 1
        else:
            raise UnsupportedOperatorError(f"{_describe(node)}: slice step {step} is not differentiated "
                                           f"(only 1 and -1)")
    dy = dys[0]
    if flip_axes:
        n = len(flip_axes)
        dy = ad.b.slice(dy, [-1] * n, [_INT64_MIN_PLUS] * n, flip_axes, [-1] * n, "flip")
    ad.emit(node, 0, ad.b.pad(dy, pads, "slice_bwd") if any(pads) else dy)


def _pad(ad, node, dys):
    mode = node_attr(node, "mode", "constant")
    if mode != "constant":
        raise UnsupportedOperatorError(f"{_describe(node)}: Pad mode {mode!r} is not differentiated")
    x = node.input[0]
    rank = len(ad.dims(x))
    pads = ad.const(node, 1) if ad.opset >= 11 else np.array(node_attr(node, "pads"), np.int64)
    pads = [int(p) for p in pads]
    axes = ad.const(node, 3) if len(node.input) > 3 else None
    axes = list(range(rank)) if axes is None else [int(a) % rank for a in axes]
    n = len(axes)
    starts, ends, sl_axes = [], [], []
    back = [0] * (2 * rank)
    for i, axis in enumerate(axes):
        begin, end = pads[i], pads[n + i]
        if begin > 0 or end > 0:
            starts.append(max(begin, 0))
            ends.append(-end if end > 0 else _INT64_MAX)
            sl_axes.append(axis)
        back[axis], back[rank + axis] = max(-begin, 0), max(-end, 0)
    dy = dys[0]
    if sl_axes:
        dy = ad.b.slice(dy, starts, ends, sl_axes, hint="pad_bwd")
    if any(back):
        dy = ad.b.pad(dy, back, "crop_bwd")
    ad.emit(node, 0, dy)


def _gather(ad, node, dys):
    data, idx = node.input
    if ad.is_active(idx):
        raise UnsupportedOperatorError(f"{_describe(node)}: indices must not depend on the images")
    indices = ad.const(node, 1)
    rank = len(ad.dims(data))
    axis = node_attr(node, "axis", 0) % rank
    dim = ad.static(data, [axis])[0]
    flat = [int(i) % dim for i in np.asarray(indices).reshape(-1)]
    dy = dys[0]
    if np.ndim(indices) == 0:
        dy = ad.b.unsqueeze(dy, [axis])
    elif not (np.ndim(indices) == 1 and flat == list(range(flat[0], flat[0] + len(flat)))):
        raise UnsupportedOperatorError(
            f"{_describe(node)}: only a scalar or a contiguous run of indices is differentiated")
    pads = [0] * (2 * rank)
    pads[axis], pads[rank + axis] = flat[0], dim - flat[0] - len(flat)
    ad.emit(node, 0, ad.b.pad(dy, pads, "gather_bwd") if any(pads) else dy)


def _matmul(ad, node, dys):
    b = ad.b
    a_name, b_name = node.input
    dy, y = dys[0], node.output[0]
    a_dims, b_dims, y_dims = ad.dims(a_name), ad.dims(b_name), ad.dims(y)
    if len(a_dims) < 2 or len(b_dims) < 2:
        raise UnsupportedOperatorError(f"{_describe(node)}: 1-D MatMul operands are not differentiated")

    def swap_last(name, rank):
        if name in ad.consts and ad.fold(ad.consts[name].nbytes):
            value = np.ascontiguousarray(np.swapaxes(ad.consts[name], -1, -2))
            return b.const(value, "matmul_wt", dtype=value.dtype)
        perm = list(range(rank))
        perm[-1], perm[-2] = perm[-2], perm[-1]
        return b.op("Transpose", [name], "matmul_t", perm=perm)

    if ad.is_active(a_name):
        da = b.op("MatMul", [dy, swap_last(b_name, len(b_dims))], "matmul_da")
        ad.emit(node, 0, ad.unbroadcast(da, y_dims[:-2] + a_dims[-2:], a_name))
    if ad.is_active(b_name):
        db = b.op("MatMul", [swap_last(a_name, len(a_dims)), dy], "matmul_db")
        ad.emit(node, 1, ad.unbroadcast(db, y_dims[:-2] + b_dims[-2:], b_name))


def _gemm(ad, node, dys):
    b = ad.b
    a_name, b_name = node.input[0], node.input[1]
    c_name = node.input[2] if len(node.input) > 2 else ""
    alpha, beta = float(node_attr(node, "alpha", 1.0)), float(node_attr(node, "beta", 1.0))
    ta, tb = int(node_attr(node, "transA", 0)), int(node_attr(node, "transB", 0))
    dy = dys[0]
    if ad.is_active(a_name):
        # A' = op(A); dA' = alpha * dY @ op(B)^T; dA = dA'^T when transA.
        if ta:
            ad.emit(node, 0, b.op("Gemm", [b_name, dy], "gemm_da", alpha=alpha, transA=tb, transB=1))
        else:
            ad.emit(node, 0, b.op("Gemm", [dy, b_name], "gemm_da", alpha=alpha, transB=1 - tb))
    if ad.is_active(b_name):
        if tb:
            ad.emit(node, 1, b.op("Gemm", [dy, a_name], "gemm_db", alpha=alpha, transA=1, transB=ta))
        else:
            ad.emit(node, 1, b.op("Gemm", [a_name, dy], "gemm_db", alpha=alpha, transA=1 - ta))
    if c_name and ad.is_active(c_name):
        scaled = dy if beta == 1.0 else b.op("Mul", [dy, b.const(np.float32(beta))])
        ad.emit(node, 2, ad.unbroadcast(scaled, node.output[0], c_name))


def _conv(ad, node, dys):
    x, w_name, y = node.input[0], node.input[1], node.output[0]
    if ad.is_active(w_name) or (len(node.input) > 2 and ad.is_active(node.input[2])):
        raise UnsupportedOperatorError(f"{_describe(node)}: weights and bias must be constant")
    weight = ad.const(node, 1)
    if weight.ndim != 4:
        raise UnsupportedOperatorError(f"{_describe(node)}: only 2-D convolutions are differentiated")
    kernel = list(weight.shape[2:])
    pads, strides, dilations = ad.spatial_attrs(node, x, y, kernel)
    group = int(node_attr(node, "group", 1))
    in_sp, out_sp = ad.static(x, [2, 3]), ad.static(y, [2, 3])
    b, dy = ad.b, dys[0]
    flip_pads = [dilations[i] * (kernel[i] - 1) - pads[i] for i in range(2)] + \
                [dilations[i] * (kernel[i] - 1) - pads[2 + i] for i in range(2)]
    if strides == [1, 1] and min(flip_pads) >= 0 and ad.fold(weight.nbytes):
        # Stride 1: the input gradient is a plain correlation with the flipped, transposed
        # kernel (folded into an initializer); faster than ConvTranspose in ONNX Runtime.
        co, cig, kh, kw = weight.shape
        wt = weight.reshape(group, co // group, cig, kh, kw).transpose(0, 2, 1, 3, 4)
        wt = np.ascontiguousarray(wt.reshape(group * cig, co // group, kh, kw)[:, :, ::-1, ::-1])
        dx = b.op("Conv", [dy, b.const(wt, "conv_wt")], "conv_bwd", group=group,
                  kernel_shape=kernel, pads=flip_pads, dilations=dilations, strides=[1, 1])
    else:
        pads_t, extra = ad._transpose_pads(in_sp, out_sp, kernel, pads, strides, dilations)
        dx = b.op("ConvTranspose", [dy, w_name], "conv_bwd", group=group, kernel_shape=kernel,
                  strides=strides, dilations=dilations, pads=pads_t)
        dx = ad._pad_end(dx, extra)
    ad.emit(node, 0, dx)


def _batchnorm(ad, node, dys):
    if int(node_attr(node, "training_mode", 0)) or any(o for o in node.output[1:]):
        raise UnsupportedOperatorError(f"{_describe(node)}: training-mode BatchNormalization")
    for i in range(1, 5):
        if ad.is_active(node.input[i]):
            raise UnsupportedOperatorError(f"{_describe(node)}: parameters must be constant")
    scale, var = ad.const(node, 1), ad.const(node, 4)
    eps = float(node_attr(node, "epsilon", 1e-5))
    a = (scale.astype(np.float64) / np.sqrt(var.astype(np.float64) + eps)).astype(np.float32)
    rank = len(ad.dims(node.input[0]))
    a = a.reshape([1, -1] + [1] * (rank - 2))
    ad.emit(node, 0, ad.b.op("Mul", [dys[0], ad.b.const(a, "bn_scale")], "bn_bwd"))


def _layernorm(ad, node, dys):
    if any(dy is not None for dy in dys[1:]):   # Mean/InvStdDev may be named, if unused
        raise UnsupportedOperatorError(f"{_describe(node)}: only the Y output is differentiated")
    for i in (1, 2):
        if len(node.input) > i and ad.is_active(node.input[i]):
            raise UnsupportedOperatorError(f"{_describe(node)}: scale and bias must be constant")
    b, x, dy = ad.b, node.input[0], dys[0]
    rank = len(ad.dims(x))
    axes = list(range(node_attr(node, "axis", -1) % rank, rank))
    eps = b.const(np.float32(node_attr(node, "epsilon", 1e-5)))
    mu = b.reduce("ReduceMean", x, axes, hint="ln_mean")
    xc = b.op("Sub", [x, mu], "ln_centered")
    var = b.reduce("ReduceMean", b.op("Mul", [xc, xc]), axes, hint="ln_var")
    rstd = b.op("Div", [ad.one(), b.op("Sqrt", [b.op("Add", [var, eps])])], "ln_rstd")
    xhat = b.op("Mul", [xc, rstd], "ln_xhat")
    g = b.op("Mul", [dy, node.input[1]], "ln_g")
    m1 = b.reduce("ReduceMean", g, axes, hint="ln_m1")
    m2 = b.reduce("ReduceMean", b.op("Mul", [g, xhat]), axes, hint="ln_m2")
    inner = b.op("Sub", [b.op("Sub", [g, m1]), b.op("Mul", [xhat, m2])])
    ad.emit(node, 0, b.op("Mul", [rstd, inner], "ln_bwd"))


def _softmax_axis(ad, node):
    rank = len(ad.dims(node.input[0]))
    axis = node_attr(node, "axis", -1 if ad.opset >= 13 else 1) % rank
    if ad.opset < 13 and axis != rank - 1:
        raise UnsupportedOperatorError(f"{_describe(node)}: opset<13 {node.op_type} over a non-last axis")
    return axis


def _softmax(ad, node, dys):
    b, y, dy = ad.b, node.output[0], dys[0]
    axis = _softmax_axis(ad, node)
    s = b.reduce("ReduceSum", b.op("Mul", [dy, y]), [axis], keepdims=1)
    ad.emit(node, 0, b.op("Mul", [b.op("Sub", [dy, s]), y], "softmax_bwd"))


def _log_softmax(ad, node, dys):
    b, y, dy = ad.b, node.output[0], dys[0]
    axis = _softmax_axis(ad, node)
    s = b.reduce("ReduceSum", dy, [axis], keepdims=1)
    ad.emit(node, 0, b.op("Sub", [dy, b.op("Mul", [b.op("Exp", [y]), s])], "log_softmax_bwd"))


def _reduce_axes(ad, node):
    rank = len(ad.dims(node.input[0]))
    if len(node.input) > 1 and node.input[1]:
        axes = ad.const(node, 1)
    else:
        axes = node_attr(node, "axes")
    if axes is None or len(axes) == 0:
        if int(node_attr(node, "noop_with_empty_axes", 0)):
            return None
        return list(range(rank))
    return sorted(int(a) % rank for a in axes)


def _keep(ad, node, dy, axes):
    return dy if int(node_attr(node, "keepdims", 1)) else ad.b.unsqueeze(dy, axes)


def _reduce_sum_mean(ad, node, dys):
    b, x = ad.b, node.input[0]
    axes = _reduce_axes(ad, node)
    if axes is None:
        ad.emit(node, 0, dys[0])
        return
    dy = _keep(ad, node, dys[0], axes)
    if node.op_type == "ReduceMean":
        count = int(np.prod(ad.static(x, axes)))
        dy = b.op("Div", [dy, b.const(np.float32(count))], "mean_bwd")
    ad.emit(node, 0, b.op("Expand", [dy, b.op("Shape", [x])], "reduce_bwd"))


def _reduce_extreme(ad, node, dys, axes=None):
    b, x = ad.b, node.input[0]
    if axes is None:
        axes = _reduce_axes(ad, node)
        if axes is None:
            ad.emit(node, 0, dys[0])
            return
        y = _keep(ad, node, node.output[0], axes)
        dy = _keep(ad, node, dys[0], axes)
    else:
        y, dy = node.output[0], dys[0]
    # PyTorch amax/amin: the gradient is split evenly between tied extremes.
    mask = b.op("Cast", [b.op("Equal", [x, y])], "extreme_mask", to=TensorProto.FLOAT)
    count = b.reduce("ReduceSum", mask, axes, keepdims=1, hint="extreme_count")
    ad.emit(node, 0, b.op("Mul", [b.op("Div", [dy, count]), mask], "extreme_bwd"))


def _global_max_pool(ad, node, dys):
    rank = len(ad.dims(node.input[0]))
    _reduce_extreme(ad, node, dys, axes=list(range(2, rank)))


def _global_average_pool(ad, node, dys):
    b, x = ad.b, node.input[0]
    rank = len(ad.dims(x))
    count = int(np.prod(ad.static(x, range(2, rank))))
    dy = b.op("Div", [dys[0], b.const(np.float32(count))], "gap_bwd")
    ad.emit(node, 0, b.op("Expand", [dy, b.op("Shape", [x])], "gap_expand"))


def _pool_common(ad, node):
    x, y = node.input[0], node.output[0]
    if len(ad.dims(x)) != 4:
        raise UnsupportedOperatorError(f"{_describe(node)}: only 2-D pooling is differentiated")
    kernel = list(node_attr(node, "kernel_shape"))
    pads, strides, dilations = ad.spatial_attrs(node, x, y, kernel)
    channels = ad.static(x, [1])[0]
    return x, y, kernel, pads, strides, dilations, channels


def _max_pool(ad, node, dys):
    if len(node.output) > 1 and node.output[1] and ad.is_active(node.output[1]):
        raise UnsupportedOperatorError(f"{_describe(node)}: the Indices output is not supported")
    b = ad.b
    x, y, kernel, pads, strides, dilations, channels = _pool_common(ad, node)
    in_sp, out_sp = ad.static(x, [2, 3]), ad.static(y, [2, 3])
    # Candidates: for each kernel offset, the strided view of the (-inf padded) input that the
    # offset reads in every window. PyTorch routes a window's gradient to its first maximum
    # (row-major), so each offset takes the windows where it is a maximum and no earlier one was.
    ends = [max(0, (out_sp[i] - 1) * strides[i] + dilations[i] * (kernel[i] - 1) + 1 - in_sp[i] - pads[i])
            for i in range(2)]
    xp = x
    if any(pads[:2]) or any(ends):
        xp = b.pad(x, [0, 0, pads[0], pads[1], 0, 0, ends[0], ends[1]], "maxpool_padded", value=-np.inf)
    zero, taken, parts = ad.zero(), None, []
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            s = [i * dilations[0], j * dilations[1]]
            e = [s[0] + (out_sp[0] - 1) * strides[0] + 1, s[1] + (out_sp[1] - 1) * strides[1] + 1]
            cand = b.slice(xp, s, e, [2, 3], strides, "maxpool_cand")
            hit = b.op("Equal", [cand, y], "maxpool_hit")
            if taken is None:
                first, taken = hit, hit
            else:
                first = b.op("And", [hit, b.op("Not", [taken])], "maxpool_first")
                taken = b.op("Or", [taken, hit], "maxpool_taken")
            parts.append(b.op("Where", [first, dys[0], zero], "maxpool_part"))
    kk = kernel[0] * kernel[1]
    if kernel[0] == kernel[1] == strides[0] == strides[1] and dilations == [1, 1] and not any(pads) \
            and in_sp == [out_sp[0] * kernel[0], out_sp[1] * kernel[1]]:
        # Non-overlapping windows tiling the input: interleave the parts (DCR channel order).
        dx = b.op("DepthToSpace", [b.op("Concat", parts, "maxpool_parts", axis=1)], "maxpool_bwd",
                  blocksize=kernel[0], mode="DCR")
    else:
        stacked = b.op("Concat", [b.unsqueeze(p, [2]) for p in parts], "maxpool_parts", axis=2)
        stacked = b.op("Reshape", [stacked, b.ints([-1, channels * kk, out_sp[0], out_sp[1]])])
        weight = np.zeros((channels * kk, 1, kernel[0], kernel[1]), np.float32)
        for c in range(channels):
            for k in range(kk):
                weight[c * kk + k, 0, k // kernel[1], k % kernel[1]] = 1
        dx = ad.scatter_windows(stacked, x, y, kernel, pads, strides, dilations, channels, weight)
    ad.emit(node, 0, dx)


def _average_pool(ad, node, dys):
    b = ad.b
    x, y, kernel, pads, strides, dilations, channels = _pool_common(ad, node)
    if dilations != [1, 1]:
        raise UnsupportedOperatorError(f"{_describe(node)}: dilated AveragePool is not differentiated")
    in_sp, out_sp = ad.static(x, [2, 3]), ad.static(y, [2, 3])
    include_pad = int(node_attr(node, "count_include_pad", 0))
    # The divisor of every window, as PyTorch's avg_pool2d computes it.
    div = np.ones(out_sp, np.float32)
    for oh in range(out_sp[0]):
        for ow in range(out_sp[1]):
            sizes = []
            for axis, o in ((0, oh), (1, ow)):
                start = o * strides[axis] - pads[axis]
                end = min(start + kernel[axis], in_sp[axis] + pads[2 + axis])
                full = end - start
                start, end = max(start, 0), min(end, in_sp[axis])
                sizes.append(full if include_pad else end - start)
            div[oh, ow] = sizes[0] * sizes[1]
    if np.all(div == div.flat[0]):
        dy = b.op("Div", [dys[0], b.const(np.float32(div.flat[0]))], "avgpool_scaled")
    else:
        dy = b.op("Div", [dys[0], b.const(div.reshape(1, 1, *out_sp), "avgpool_div")], "avgpool_scaled")
    weight = np.ones((channels, 1, kernel[0], kernel[1]), np.float32)
    ad.emit(node, 0, ad.scatter_windows(dy, x, y, kernel, pads, strides, dilations, channels, weight))


_RULES = {
    "Add": _add, "Sub": _sub, "Mul": _mul, "Div": _div, "Sum": _sum, "Mean": _mean,
    "Where": _where, "Pow": _pow, "Clip": _clip,
    "Relu": _elementwise(_relu), "LeakyRelu": _elementwise(_leaky_relu),
    "Elu": _elementwise(_elu), "Sigmoid": _elementwise(_sigmoid),
    "Tanh": _elementwise(_tanh), "Erf": _elementwise(_erf), "Gelu": _elementwise(_gelu),
    "Exp": _elementwise(_exp), "Log": _elementwise(_log), "Sqrt": _elementwise(_sqrt),
    "Reciprocal": _elementwise(_reciprocal), "Neg": _elementwise(_neg),
    "Abs": _elementwise(_abs), "Softplus": _elementwise(_softplus),
    "HardSigmoid": _elementwise(_hard_sigmoid), "HardSwish": _elementwise(_hard_swish),
    "Identity": _passthrough, "Dropout": _passthrough, "Cast": _cast,
    "Reshape": _reshape, "Flatten": _reshape, "Squeeze": _reshape, "Unsqueeze": _reshape,
    "Transpose": _transpose, "Expand": _expand, "Concat": _concat, "Split": _split,
    "Slice": _slice, "Pad": _pad, "Gather": _gather,
    "MatMul": _matmul, "Gemm": _gemm, "Conv": _conv,
    "BatchNormalization": _batchnorm, "LayerNormalization": _layernorm,
    "Softmax": _softmax, "LogSoftmax": _log_softmax,
    "ReduceSum": _reduce_sum_mean, "ReduceMean": _reduce_sum_mean,
    "ReduceMax": _reduce_extreme, "ReduceMin": _reduce_extreme,
    "GlobalAveragePool": _global_average_pool, "GlobalMaxPool": _global_max_pool,
    "MaxPool": _max_pool, "AveragePool": _average_pool,
}

SUPPORTED_OPS = tuple(sorted(_RULES))


def gradient_graph(forward):
    """The ``backbone_grad`` graph of canonical classifier graph ``forward`` (see module doc)."""
    return _Reverse(forward).run()
