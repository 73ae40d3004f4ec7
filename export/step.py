"""The ``mcgs_step`` graph: one whole SmoothStep of MCGS.md as a single ONNX graph.

Inputs ``center`` (float32 [B, C, H, W]), ``labels`` (int64 [B]), ``noise`` (float32
[N, B, C, H, W] in [-1, 1]), ``eps`` and ``direction`` (float32 scalars; direction -1 for the
forward epoch, +1 for the backward epoch); output ``stepped`` (float32 [B, C, H, W]).
It computes exactly what ``mspd_edge.reference.smooth_step`` does, in the same order::

    copies  = clip01(center + eps * noise)                        # [N, B, C, H, W]
    grad    = backbone_grad(copies as one batch of N*B, labels repeated N times)
    stepped = mean_N clip01(proj(copies + direction * eps * sign(grad), center))

``proj(z, c)`` clamps into [c - eps, c + eps]; ``sign(0) = 0`` in both PyTorch and ONNX.
"""
import numpy as np
from onnx import TensorProto, helper

from mspd_edge.bundle import (CENTER, DIRECTION, EPS, GRAD, IMAGES, LABELS, NOISE, STEP_BATCH,
                              STEP_SAMPLES, STEPPED)

from .onnxutil import Builder, finalize, make_model, opset_of, topological_nodes


def mcgs_step_graph(grad_model):
    """Compose the SmoothStep graph around a ``backbone_grad`` graph (see module docstring)."""
    g = grad_model.graph
    opset = opset_of(grad_model)
    c, h, w = [d.dim_value for d in g.input[0].type.tensor_type.shape.dim[1:]]
    taken = {i.name for i in g.initializer} | {CENTER, NOISE, EPS, DIRECTION, STEPPED}
    for node in g.node:
        taken.update(node.input)
        taken.update(node.output)
        taken.add(node.name)
    b = Builder(opset, taken, prefix="mcgs/")
    zero, one = b.const(np.float32(0), "zero"), b.const(np.float32(1), "one")

    copies = b.op("Clip", [b.op("Add", [b.unsqueeze(CENTER, [0], "center_1"),
                                        b.op("Mul", [EPS, NOISE], "eps_noise")], "shifted"),
                           zero, one], "copies")
    flat = b.op("Reshape", [copies, b.ints([-1, c, h, w], "flat_shape")], "copies_flat")
    lead = b.op("Shape", [NOISE], "samples_batch", start=0, end=2)
    labels_flat = b.op("Reshape", [b.op("Expand", [b.unsqueeze(LABELS, [0]), lead], "labels_nb"),
                                   b.ints([-1], "flat")], "labels_flat")

    # The gradient subgraph, fed with the flattened copies and repeated labels.
    rename = {IMAGES: flat, LABELS: labels_flat}
    inner = []
    for node in topological_nodes(g):
        copy = helper.make_node(node.op_type, [rename.get(n, n) for n in node.input],
                                list(node.output), name=node.name, domain=node.domain)
        copy.attribute.extend(node.attribute)
        inner.append(copy)

    grad = b.op("Reshape", [GRAD, b.op("Shape", [NOISE], "noise_shape")], "grad_nb")
    delta = b.op("Mul", [b.op("Mul", [DIRECTION, EPS], "signed_eps"), b.op("Sign", [grad], "grad_sign")],
                 "delta")
    moved = b.op("Add", [copies, delta], "moved")
    low = b.op("Sub", [CENTER, EPS], "low")
    high = b.op("Add", [CENTER, EPS], "high")
    projected = b.op("Min", [b.op("Max", [moved, low], "above_low"), high], "projected")
    clipped = b.op("Clip", [projected, zero, one], "stepped_copies")
    mean_inputs = [clipped] if opset < 18 else [clipped, b.ints([0], "axis0")]
    mean_attrs = {"axes": [0]} if opset < 18 else {}
    b.nodes.append(helper.make_node("ReduceMean", mean_inputs, [STEPPED], name=b.fresh("mean_node"),
                                    keepdims=0, **mean_attrs))

    f32, i64 = TensorProto.FLOAT, TensorProto.INT64
    graph = helper.make_graph(
        _ordered(b.nodes, inner, GRAD), "mcgs_step",
        [helper.make_tensor_value_info(CENTER, f32, [STEP_BATCH, c, h, w]),
         helper.make_tensor_value_info(LABELS, i64, [STEP_BATCH]),
         helper.make_tensor_value_info(NOISE, f32, [STEP_SAMPLES, STEP_BATCH, c, h, w]),
         helper.make_tensor_value_info(EPS, f32, []),
         helper.make_tensor_value_info(DIRECTION, f32, [])],
        [helper.make_tensor_value_info(STEPPED, f32, [STEP_BATCH, c, h, w])],
        list(g.initializer) + b.initializers)
    graph.doc_string = ("One SmoothStep of MCGS: mean over N of clip01(proj(copies + direction * eps "
                        "* sign(d CE / d copies), center)), copies = clip01(center + eps * noise)")
    return finalize(make_model(graph, opset))


def _ordered(step_nodes, inner, grad_name):
    """Topological order: step nodes feeding the gradient, the gradient, then the rest."""
    split = next(i for i, node in enumerate(step_nodes) if grad_name in node.input)
    return step_nodes[:split] + inner + step_nodes[split:]
