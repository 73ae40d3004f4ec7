"""FP16 gradient graphs with float32 inputs and outputs, the loss head kept in float32.

The conversion is ONNX Runtime's (``onnxruntime.transformers.float16``, the converter of
onnxconverter-common shipped inside onnxruntime): every float tensor and initializer becomes
fp16, with Casts at the graph inputs and outputs, except the nodes of the loss head
(:func:`loss_head`), which stay float32. Converting the loss head too makes a graph ONNX
Runtime refuses (a type mismatch at LogSoftmax, PROBES.md), and the softmax of fp16 logits
and the one-hot difference are where fp16's 11-bit mantissa would cost the most.
"""
import onnx

from mspd_edge.bundle import LABELS, LOGITS
from mspd_edge.export.onnxutil import topological_nodes

WEIGHT_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")


def loss_head(model):
    """Names of the nodes between the logits (and the labels) and the first weight op of the
    backward pass: log-softmax, the one-hot of the labels, the loss and d loss / d logits."""
    consumers = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    head, frontier = [], [LOGITS, LABELS]
    while frontier:
        for node in consumers.get(frontier.pop(), []):
            if node.op_type in WEIGHT_OPS or node.name in head:
                continue
            head.append(node.name)
            frontier.extend(node.output)
    return head


def to_fp16(model):
    """``(fp16 model, names of the nodes kept in float32)`` of a float32 gradient graph."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    keep = loss_head(model)
    converted = convert_float_to_float16(model, keep_io_types=True, node_block_list=keep)
    return without_round_trips(converted), keep


def _cast_to(node):
    return next((a.i for a in node.attribute if a.name == "to"), None) if node.op_type == "Cast" else None


def without_round_trips(model):
    """``model`` without Cast pairs float32 -> fp16 -> float32 (the converter puts one between
    every two float32 nodes, which would round the loss head's values to fp16 after all; the
    pair before a graph output stays), its nodes in topological order."""
    nodes = list(model.graph.node)
    consumers = {}
    for node in nodes:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    outputs = {o.name for o in model.graph.output}
    rename, dropped = {}, set()
    for down in nodes:
        if _cast_to(down) != onnx.TensorProto.FLOAT16:
            continue
        ups = consumers.get(down.output[0], [])
        if ups and all(_cast_to(up) == onnx.TensorProto.FLOAT and up.output[0] not in outputs
                       for up in ups):
            dropped.add(id(down))
            for up in ups:
                dropped.add(id(up))
                rename[up.output[0]] = down.input[0]
    kept = [n for n in nodes if id(n) not in dropped]
    for node in kept:
        node.input[:] = [rename.get(name, name) for name in node.input]
    del model.graph.node[:]
    model.graph.node.extend(kept)
    ordered = topological_nodes(model.graph)   # the converter appends its input Casts last
    del model.graph.node[:]
    model.graph.node.extend(ordered)
    return model
