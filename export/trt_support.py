"""Will TensorRT's ONNX parser take this graph? A node-by-node check (onnx only, no torch).

The table below restates onnx-tensorrt's ``docs/operators.md`` for TensorRT 10 (operators,
supported tensor types and the attribute/initializer restrictions it lists). The baseline is
TensorRT 10.0, which parses opsets 9 to 20: operators added in later opsets (``Attention``,
``RotaryEmbedding``, ``RMSNormalization``, ``TensorScatter``) count as unsupported. A node
fails when its operator is unknown or marked unsupported, when the tensor type the parser
dispatches on is not in the operator's list, or when a listed restriction is violated (e.g.
``Reduce*`` axes that are not an initializer, a used ``MaxPool`` ``Indices`` output). This is a
static check of the documented rules; only building an engine with TensorRT proves a graph.
"""
from collections import Counter
from dataclasses import dataclass, field

import onnx
from onnx import TensorProto, numpy_helper

from .onnxutil import node_attr

MIN_OPSET, MAX_OPSET = 9, 20
TENSORRT_VERSION = "10.0"

_F = "FP32 FP16 BF16"
_FI = "FP32 FP16 BF16 INT32 INT64"
_FIB = "FP32 FP16 BF16 INT32 INT64 BOOL"
# operator -> supported types (as the table names them)
SUPPORTED = {
    "Abs": _FI, "Acos": _F, "Acosh": _F, "Add": _FI, "And": "BOOL", "ArgMax": _FI, "ArgMin": _FI,
    "Asin": _F, "Asinh": _F, "Atan": _F, "Atanh": _F, "AveragePool": _F,
    "BatchNormalization": _F, "BlackmanWindow": "FP32 FP16", "Cast": _FIB + " UINT8",
    "CastLike": _FIB + " UINT8", "Ceil": _F, "Celu": _F, "Clip": _F, "Concat": _FIB,
    "Constant": _FIB + " FP8 FP4 INT4", "ConstantOfShape": _FIB + " FP8 FP4 INT4", "Conv": _F,
    "ConvTranspose": _F, "Cos": _F, "Cosh": _F, "CumSum": _F, "DeformConv": "FP32 FP16",
    "DepthToSpace": _FI, "DequantizeLinear": "INT8 FP8 FP4 INT4", "Div": _FI, "Dropout": _F,
    "Einsum": _F, "Elu": _F, "Equal": _FI, "Erf": _F, "Exp": _F, "Expand": _FIB, "EyeLike": _FIB,
    "Flatten": _FIB, "Floor": _F, "Gather": _FIB, "GatherElements": _FIB, "GatherND": _FIB,
    "Gelu": _FI + " INT8", "Gemm": _F, "GlobalAveragePool": _F, "GlobalLpPool": _F,
    "GlobalMaxPool": _F, "Greater": _FI, "GreaterOrEqual": _FI, "GridSample": "FP32 FP16",
    "GroupNormalization": _F, "GRU": _F, "HammingWindow": "FP32 FP16", "HannWindow": "FP32 FP16",
    "HardSigmoid": _F, "HardSwish": _F, "Hardmax": _F, "Identity": _FIB, "If": _FIB,
    "ImageScaler": _F, "InstanceNormalization": _F, "IsInf": _F, "IsNaN": _FI,
    "LayerNormalization": _F, "LeakyRelu": _F, "Less": _FI, "LessOrEqual": _FI, "Log": _F,
    "LogSoftmax": _F, "Loop": _FIB, "LRN": _F, "LSTM": _F, "LpNormalization": _F, "LpPool": _F,
    "MatMul": _F, "Max": _FI, "MaxPool": _F, "Mean": _FI + " FP8", "MeanVarianceNormalization": _F,
    "Min": _FI, "Mish": "FP32 FP16", "Mod": _FI, "Mul": _FI, "Neg": _FI,
    "NonMaxSuppression": "FP32 FP16", "NonZero": "FP32 FP16", "Not": "BOOL", "OneHot": _FIB,
    "Or": "BOOL", "Pad": _FI, "ParametricSoftplus": _F, "Pow": _FI, "PRelu": _F,
    "QuantizeLinear": _F, "RandomNormal": _F, "RandomNormalLike": _F, "RandomUniform": _F,
    "RandomUniformLike": _F, "Range": _FI, "Reciprocal": _F, "ReduceL1": _FI, "ReduceL2": _FI,
    "ReduceLogSum": _FI, "ReduceLogSumExp": _FI, "ReduceMax": _FI, "ReduceMean": _FI,
    "ReduceMin": _FI, "ReduceProd": _FI, "ReduceSum": _FI, "ReduceSumSquare": _FI, "Relu": _FI,
    "Reshape": _FIB, "Resize": _F, "ReverseSequence": _FIB, "RNN": _F, "RoiAlign": "FP32 FP16",
    "Round": _F, "STFT": "FP32", "ScaledTanh": _F, "Scan": _F, "Scatter": _FI,
    "ScatterElements": _FI, "ScatterND": _FI, "Selu": _F, "Shape": _FIB, "Shrink": _FI,
    "Sigmoid": _F, "Sign": _FI, "Sin": _F, "Sinh": _F, "Size": _FIB, "Slice": _FIB, "Softmax": _F,
    "Softplus": _F, "Softsign": _F, "SpaceToDepth": _FI, "Split": _FIB, "Sqrt": _F,
    "Squeeze": _FIB, "Sub": _FI, "Sum": _FI, "Tan": _F, "Tanh": _F, "ThresholdedRelu": _F,
    "Tile": _FIB, "TopK": _FI, "Transpose": _FIB, "Trilu": _FIB, "Unsqueeze": _FIB,
    "Upsample": _F, "Where": _FIB, "Xor": "BOOL",
}
UNSUPPORTED = {
    "AffineGrid", "Attention", "Bernoulli", "BitShift", "BitwiseAnd", "BitwiseNot", "BitwiseOr",
    "BitwiseXor", "CenterCropPad", "Col2Im", "Compress", "ConcatFromSequence", "ConvInteger", "DFT",
    "Det", "DynamicQuantizeLinear", "ImageDecoder", "MatMulInteger", "MaxRoiPool", "MaxUnpool",
    "MelWeightMatrix", "Multinomial", "NegativeLogLikelihoodLoss", "Optional", "OptionalGetElement",
    "OptionalHasElement", "QLinearConv", "QLinearMatMul", "RegexFullMatch", "RMSNormalization",
    "RotaryEmbedding", "SequenceAt", "SequenceConstruct", "SequenceEmpty", "SequenceErase",
    "SequenceInsert", "SequenceLength", "SequenceMap", "SoftmaxCrossEntropyLoss", "SplitToSequence",
    "StringConcat", "StringNormalizer", "StringSplit", "TensorScatter", "TfIdfVectorizer", "Unique",
}
_TYPE_NAMES = {
    TensorProto.FLOAT: "FP32", TensorProto.FLOAT16: "FP16", TensorProto.BFLOAT16: "BF16",
    TensorProto.DOUBLE: "FP32",  # TensorRT casts DOUBLE down to FLOAT
    TensorProto.INT32: "INT32", TensorProto.INT64: "INT64", TensorProto.INT8: "INT8",
    TensorProto.UINT8: "UINT8", TensorProto.BOOL: "BOOL", TensorProto.INT4: "INT4",
    TensorProto.FLOAT8E4M3FN: "FP8",
}
# Operators whose listed types refer to the first input rather than the first output.
_TYPE_FROM_INPUT = {"Equal", "Greater", "GreaterOrEqual", "Less", "LessOrEqual", "Shape", "Size",
                    "ArgMax", "ArgMin", "IsNaN", "IsInf", "Cast", "CastLike", "NonZero",
                    "QuantizeLinear", "DequantizeLinear"}
_TYPE_FROM = {"Where": 1}
_REDUCE = {"ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceMax", "ReduceMean",
           "ReduceMin", "ReduceProd", "ReduceSum", "ReduceSumSquare"}
_RESIZE_COORDS = {"half_pixel", "pytorch_half_pixel", "tf_half_pixel_for_nn", "asymmetric",
                  "align_corners"}
_RESIZE_NEAREST = {"floor", "ceil", "round_prefer_floor", "round_prefer_ceil"}


@dataclass
class GraphReport:
    """The check of one graph: ``ok``, node count, op histogram and ``(node, op, reason)``s."""

    name: str
    ok: bool = True
    nodes: int = 0
    opset: int = 0
    ops: dict = field(default_factory=dict)
    problems: list = field(default_factory=list)

    def add(self, node, reason):
        self.ok = False
        self.problems.append({"node": node.name or (node.output[0] if node.output else "?"),
                              "op": node.op_type, "reason": reason})

    def as_dict(self):
        return {"ok": self.ok, "nodes": self.nodes, "opset": self.opset, "ops": self.ops,
                "problems": self.problems}

    def lines(self):
        head = f"{self.name}: {'OK' if self.ok else 'FAIL'} ({self.nodes} nodes, opset {self.opset})"
        out = [head]
        for p in self.problems:
            out.append(f"  {p['node']} ({p['op']}): {p['reason']}")
        return out


def _input(node, i):
    return node.input[i] if len(node.input) > i and node.input[i] else None


def _restriction(node, ctx):
    """The first violated restriction of ``node`` (a reason string), or None."""
    op, init, rank, used = node.op_type, ctx["init"], ctx["rank"], ctx["used"]
    if op in ("AveragePool", "MaxPool", "LpPool"):
        r = rank(node.input[0])
        if op != "LpPool" and r is not None and r not in (4, 5):
            return f"2D or 3D pooling only (input rank {r})"
        if any(d != 1 for d in node_attr(node, "dilations", []) or []):
            return "dilations must be empty or all ones"
        if op == "MaxPool" and len(node.output) > 1 and node.output[1] in used:
            return "the Indices output is unsupported"
    if op in _REDUCE and _input(node, 1) and _input(node, 1) not in init:
        return "axes must be an initializer"
    if op in ("Squeeze", "Unsqueeze") and _input(node, 1) and _input(node, 1) not in init:
        return "axes must be resolvable to a constant"
    if op == "CumSum" and _input(node, 1) not in init:
        return "axis must be a build-time constant"
    if op == "Dropout" and _input(node, 2):
        if _input(node, 2) not in init or bool(numpy_helper.to_array(init[_input(node, 2)])):
            return "is_training must be an initializer and evaluate to False"
    if op == "LayerNormalization" and any(o in used for o in node.output[1:]):
        return "only the first output Y is supported"
    if op == "OneHot" and _input(node, 1) not in init:
        return "depth must be a build-time constant"
    if op == "ScatterND" and node_attr(node, "reduction", "none") != "none":
        return "reduction other than none is not supported"
    if op == "TopK":
        if node_attr(node, "sorted", 1) != 1:
            return "sorted must be 1"
        k = _input(node, 1)
        if k in init and int(numpy_helper.to_array(init[k]).reshape(-1)[0]) >= 3840:
            return "K must be less than 3840"
    if op == "QuantizeLinear" and _input(node, 2) in init and numpy_helper.to_array(init[_input(node, 2)]).any():
        return "y_zero_point must be 0"
    if op == "DequantizeLinear" and _input(node, 2) in init and numpy_helper.to_array(init[_input(node, 2)]).any():
        return "x_zero_point must be zero"
    if op == "LSTM" and (node_attr(node, "input_forget", 0) or node_attr(node, "layout", 0)):
        return "input_forget and layout attributes must be 0"
    if op == "GridSample" and rank(node.input[0]) not in (None, 4):
        return "input must be 4D"
    if op == "Resize":
        mode = node_attr(node, "mode", "nearest")
        if mode not in ("nearest", "linear"):
            return f"resize mode {mode!r} unsupported (nearest, linear)"
        coords = node_attr(node, "coordinate_transformation_mode", "half_pixel")
        if coords not in _RESIZE_COORDS:
            return f"coordinate transformation mode {coords!r} unsupported"
        if mode == "nearest" and node_attr(node, "nearest_mode", "round_prefer_floor") not in _RESIZE_NEAREST:
            return f"nearest mode {node_attr(node, 'nearest_mode')!r} unsupported"
        if node_attr(node, "antialias", 0):
            return "antialiasing is not supported"
        if node_attr(node, "keep_aspect_ratio_policy", "stretch") != "stretch":
            return "only the 'stretch' aspect ratio policy is supported"
    if op == "Constant" and any(a.name in ("sparse_value", "value_string", "value_strings")
                                for a in node.attribute):
        return "sparse_value, value_string and value_strings attributes are unsupported"
    if op == "Hardmax" and rank(node.input[0]) is None:
        return "the axis dimension must be a build-time constant"
    if op == "EyeLike" and rank(node.input[0]) is None:
        return "input must have static dimensions"
    return None


def check_model(model, name="graph"):
    """Check every node of ``model`` (a ModelProto or path) against the table; a GraphReport."""
    if not isinstance(model, onnx.ModelProto):
        model = onnx.load(str(model))
    report = GraphReport(name)
    graph = model.graph
    report.nodes = len(graph.node)
    report.ops = dict(Counter(n.op_type for n in graph.node).most_common())
    opset = next((i.version for i in model.opset_import if i.domain in ("", "ai.onnx")), 0)
    report.opset = opset
    if not MIN_OPSET <= opset <= MAX_OPSET:
        report.ok = False
        report.problems.append({"node": "(model)", "op": "-", "reason":
                                f"opset {opset} is outside TensorRT {TENSORRT_VERSION}'s {MIN_OPSET}..{MAX_OPSET}"})
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # noqa: BLE001 - the type checks then use what is declared
        inferred = model
    types, ranks = {}, {}
    for vi in list(inferred.graph.input) + list(inferred.graph.value_info) + list(inferred.graph.output):
        t = vi.type.tensor_type
        types[vi.name] = t.elem_type
        if t.HasField("shape"):
            ranks[vi.name] = len(t.shape.dim)
    init = {i.name: i for i in graph.initializer}
    for i in graph.initializer:
        types[i.name], ranks[i.name] = i.data_type, len(i.dims)
    used = {n for node in graph.node for n in node.input} | {o.name for o in graph.output}
    ctx = {"init": init, "used": used, "rank": ranks.get}
    for node in graph.node:
        op = node.op_type
        if node.domain not in ("", "ai.onnx"):
            report.add(node, f"custom domain {node.domain!r} needs a TensorRT plugin")
            continue
        if op in UNSUPPORTED or op not in SUPPORTED:
            report.add(node, f"{op} is not supported by TensorRT {TENSORRT_VERSION}'s ONNX parser")
            continue
        index = _TYPE_FROM.get(op, 0)
        if op in _TYPE_FROM_INPUT or op in _TYPE_FROM:
            tensor = node.input[index] if len(node.input) > index else None
        else:
            tensor = node.output[0]
        dtype = types.get(tensor) if tensor else None
        if dtype:
            tname = _TYPE_NAMES.get(dtype, TensorProto.DataType.Name(dtype))
            if tname not in SUPPORTED[op].split():
                report.add(node, f"type {tname} of {tensor!r} not supported (supported: {SUPPORTED[op]})")
                continue
        reason = _restriction(node, ctx)
        if reason:
            report.add(node, reason)
    return report
