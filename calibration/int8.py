"""INT8 gradient graphs: explicit symmetric Q/DQ, as TensorRT 11's strongly typed networks take.

``onnxruntime.quantization.quantize_static`` in QDQ format: int8 activations with zero point 0
(per tensor, scales calibrated on real images), int8 weights with zero point 0 per output
channel, float biases, on the weight ops (Conv, ConvTranspose, Gemm, MatMul). What stays
float was chosen by the gradient's sign agreement with fp32 (``benchmarks/int8_float_nodes.py``:
calibrated on 16 CIFAR-10 training images x 20 noisy copies, scored on 16 test images):

* every weight op quantized: 60.7% of the gradient's signs agree with fp32;
* quantized alone, each forward op keeps 99.6-99.9%, each backward op 93-99.5%, less the
  nearer it is to the input, and the one that produces the input gradient only 56.6%;
* kept in float: the loss head's two Gemms (the logits and d loss / d logits) and the
  :data:`FLOAT_NEAR_INPUT` backward weight ops nearest the input gradient: 91.8% agree (the
  cascade averages 20 copies' signs: the protection effect stays within half a point of fp32's,
  README "Precision").

Weights shared by a forward and a backward op (Conv and its ConvTranspose transpose, Gemm
transB 1 and 0) are quantized along different channel axes, which one tensor cannot be: each
such op gets its own copy first (:func:`own_weights`).
"""
import contextlib
import io
import logging

import onnx

from mspd_edge.bundle import LOGITS

from .fp16 import WEIGHT_OPS, loss_head

FLOAT_NEAR_INPUT = 5
METHODS = {"percentile": "Percentile", "minmax": "MinMax", "entropy": "Entropy"}   # ORT's names


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


def quantize_int8(model, feeds, method="percentile", near_input=FLOAT_NEAR_INPUT, keep=None):
    """``(int8 Q/DQ model, names of the weight ops kept in float)`` of a float32 gradient graph.

    ``feeds``: calibration feed dicts (``images``, ``labels``); ``method``: the activation
    range calibration (:data:`METHODS`); ``keep``: the weight ops to keep in float (default
    :func:`float_nodes` with ``near_input``).
    """
    import tempfile
    from pathlib import Path

    from onnxruntime.quantization import (CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)

    if method not in METHODS:
        raise ValueError(f"calibration method must be one of {', '.join(METHODS)}, got {method!r}")
    model = own_weights(model)
    keep = float_nodes(model, near_input) if keep is None else list(keep)
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "float.onnx", Path(tmp) / "int8.onnx"
        onnx.save(model, str(src))
        with _quiet():
            quantize_static(str(src), str(out), _Feeds(feeds), quant_format=QuantFormat.QDQ,
                            op_types_to_quantize=list(WEIGHT_OPS), per_channel=True,
                            activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                            nodes_to_exclude=keep, calibrate_method=getattr(CalibrationMethod, METHODS[method]),
                            extra_options={"ActivationSymmetric": True, "WeightSymmetric": True,
                                           "CalibTensorRangeSymmetric": True,
                                           "QuantizeBias": False},
                            calibration_providers=["CPUExecutionProvider"])
        quantized = onnx.load(str(out))
    _check_symmetric(quantized)
    return quantized, keep


@contextlib.contextmanager
def _quiet():
    """ONNX Runtime's quantizer prints its histogram steps and warns on root; keep them out."""
    logging.disable(logging.WARNING)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        logging.disable(logging.NOTSET)


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
