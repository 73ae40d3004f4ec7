"""INT8 gradient graphs: explicit symmetric Q/DQ, as TensorRT 11's strongly typed networks take.

``onnxruntime.quantization.quantize_static`` in QDQ format: int8 activations with zero point 0
(per tensor, scales calibrated on real images), int8 weights with zero point 0 per output
channel, on the weight ops (Conv, ConvTranspose, Gemm, MatMul). Calibrated sign agreement with
the fp32 gradient (16 CIFAR-10 training images x 20 noisy copies, tests images scored) chose
what stays float (docs/precision.md):

* every weight op quantized: 73% of the gradient's signs agree with fp32;
* the backward op that produces the input gradient alone costs 12 points (88% when it is the
  only quantized op), the other ops 0.1 to 2 points each, growing towards the input;
* kept in float: the loss head's two Gemms (the logits and d loss / d logits) and the
  :data:`FLOAT_NEAR_INPUT` backward weight ops nearest the input gradient: 96.4% agree.

Weights shared by a forward and a backward op (Conv and its ConvTranspose transpose, Gemm
transB 1 and 0) are quantized along different channel axes, which one tensor cannot be: each
such op gets its own copy first (:func:`own_weights`).
"""
import onnx

from .fp16 import LOGITS, WEIGHT_OPS, loss_head

FLOAT_NEAR_INPUT = 5
METHODS = ("percentile", "minmax", "entropy")


def own_weights(model):
    """A copy of ``model`` in which no two weight ops share a weight initializer."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    inits = {t.name: t for t in model.graph.initializer}
    seen = set()
    for node in model.graph.node:
        if node.op_type not in WEIGHT_OPS or len(node.input) < 2 or node.input[1] not in inits:
            continue
        name = node.input[1]
        if name in seen:
            copy = onnx.TensorProto()
            copy.CopyFrom(inits[name])
            copy.name = f"{name}/{node.name}"
            model.graph.initializer.append(copy)
            node.input[1] = copy.name
        seen.add(name)
    return model


def _ancestors(model, output):
    producer = {o: n for n in model.graph.node for o in n.output}
    found, frontier = set(), [output]
    while frontier:
        node = producer.get(frontier.pop())
        if node is not None and node.name not in found:
            found.add(node.name)
            frontier.extend(node.input)
    return found


def float_nodes(model, near_input=FLOAT_NEAR_INPUT):
    """The weight ops kept in float: the loss head's and the backward ones nearest the input."""
    head = set(loss_head(model))
    head_outputs = {o for n in model.graph.node if n.name in head for o in n.output}
    forward = _ancestors(model, LOGITS)
    weight_ops = [n for n in model.graph.node if n.op_type in WEIGHT_OPS]
    keep = [n.name for n in weight_ops if LOGITS in n.output or head_outputs & set(n.input)]
    backward = [n.name for n in weight_ops if n.name not in forward and n.name not in keep]
    return keep + (backward[-near_input:] if near_input else [])


class _Feeds:
    """``onnxruntime.quantization.CalibrationDataReader`` over a list of feed dicts."""

    def __init__(self, feeds):
        self._feeds = iter(feeds)

    def get_next(self):
        return next(self._feeds, None)


def quantize_int8(model, feeds, method="percentile", near_input=FLOAT_NEAR_INPUT, workdir=None):
    """``(int8 Q/DQ model, names of the weight ops kept in float)`` of a float32 gradient graph.

    ``feeds``: calibration feed dicts (``images``, ``labels``); ``method``: the activation
    range calibration (:data:`METHODS`); ``workdir``: a folder for ORT's temporary files.
    """
    import tempfile
    from pathlib import Path

    from onnxruntime.quantization import (CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)

    if method not in METHODS:
        raise ValueError(f"calibration method must be one of {METHODS}, got {method!r}")
    model = own_weights(model)
    keep = float_nodes(model, near_input)
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        src, out = Path(tmp) / "float.onnx", Path(tmp) / "int8.onnx"
        onnx.save(model, str(src))
        quantize_static(str(src), str(out), _Feeds(feeds), quant_format=QuantFormat.QDQ,
                        op_types_to_quantize=list(WEIGHT_OPS), per_channel=True,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                        nodes_to_exclude=keep, calibrate_method=_METHOD[method](CalibrationMethod),
                        extra_options={"ActivationSymmetric": True, "WeightSymmetric": True,
                                       "CalibTensorRangeSymmetric": True,
                                       "QuantizeBias": False},
                        calibration_providers=["CPUExecutionProvider"])
        quantized = onnx.load(str(out))
    _check_symmetric(quantized)
    return quantized, keep


_METHOD = {"percentile": lambda c: c.Percentile, "minmax": lambda c: c.MinMax,
           "entropy": lambda c: c.Entropy}


def _check_symmetric(model):
    """TensorRT takes int8 Q/DQ with zero points 0 only: refuse anything else."""
    inits = {t.name: t for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type in ("QuantizeLinear", "DequantizeLinear") and len(node.input) > 2:
            zero = inits.get(node.input[2])
            if zero is None or onnx.numpy_helper.to_array(zero).any() or zero.data_type != onnx.TensorProto.INT8:
                raise ValueError(f"{node.name}: not a symmetric int8 Q/DQ (zero point must be int8 0)")
    if not any(n.op_type == "QuantizeLinear" for n in model.graph.node):
        raise ValueError("no node was quantized")
