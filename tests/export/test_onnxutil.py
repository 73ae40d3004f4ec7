"""Shape inference on weight-free copies: the same shapes as on the full graph."""
from onnx import shape_inference

from mspd_edge.export.graphs import torch_forward_graph
from mspd_edge.export.onnxutil import Shapes, _inferred, _shape_only

from export_helpers import INPUT, make_model


def _dims(model):
    inferred = shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    return {vi.name: [d.dim_value if d.HasField("dim_value") else None for d in vi.type.tensor_type.shape.dim]
            for vi in list(inferred.graph.value_info) + list(inferred.graph.output)}


def test_weights_enter_shape_inference_by_shape_only():
    forward = torch_forward_graph(make_model("vit_convstem"), INPUT)   # Concat, Reshape, Expand, ...
    light = _shape_only(forward)
    assert len(light.graph.initializer) < len(forward.graph.initializer)
    assert light.ByteSize() < forward.ByteSize() / 2
    full, got = _dims(forward), _inferred(forward)[1]
    assert full and all(got[name] == dims for name, dims in full.items())
    assert Shapes(forward).get("logits") == [None, 10]
