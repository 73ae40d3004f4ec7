"""ONNX graph plumbing shared by the export modules (onnx and numpy only, no torch).

:class:`Builder` emits nodes with fresh names and folded constants; :func:`prepare_forward`
turns a classifier graph from any exporter into the canonical form the gradient pass expects
(one input ``images`` [n, C, H, W] with a symbolic batch, one output ``logits`` [n, K], opset
``OPSET`` or newer, constants folded, no ``Constant``/``Identity`` nodes).
"""
from collections import Counter

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper, shape_inference

from mspd_edge.bundle import BATCH, IMAGES, LOGITS

OPSET = 17                 # the opset our graphs are written at (TensorRT 10 parses 9..20)
MAX_OPSET = 20
IR_VERSION = 8             # the IR version of opset 17; ONNX Runtime 1.31 reads IR <= 13
_FOLD_LIMIT = 1 << 24      # do not fold constants larger than this many elements
_SHAPE_ONLY_ELEMENTS = 1 << 10   # initializers enter shape inference by shape alone above this
_NOT_FOLDABLE = {"RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike",
                 "Multinomial", "Bernoulli", "If", "Loop", "Scan"}


class ExportError(ValueError):
    """A graph cannot be exported, with the reason (one line)."""


def opset_of(model):
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx"):
            return imp.version
    raise ExportError("the model imports no default-domain (ai.onnx) opset")


def make_model(graph, opset, producer="mspd-edge"):
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name=producer)
    model.ir_version = max(IR_VERSION, helper.find_min_ir_version_for(
        [helper.make_opsetid("", opset)]))
    return model


def topological_nodes(graph):
    """The nodes of ``graph`` in a topological order (the given order where it already is one)."""
    ready = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        left = [n for n in pending if not set(n.input) <= ready]
        done = [n for n in pending if set(n.input) <= ready]
        if not done:
            raise ExportError(f"the graph has a cycle or an undefined input at {left[0].name}")
        for node in done:
            ordered.append(node)
            ready.update(node.output)
        pending = left
    return ordered


def op_counts(model):
    return dict(Counter(n.op_type for n in model.graph.node).most_common())


def _shape_only(model):
    """``model`` with its large initializers as typed graph inputs without data: all that shape
    inference needs of weights is their shape, and serialising them dominated its time."""
    graph = model.graph
    listed = {i.name for i in graph.input}
    big = [i for i in graph.initializer if int(np.prod(list(i.dims), dtype=np.int64)) > _SHAPE_ONLY_ELEMENTS]
    if not big:
        return model
    names = {i.name for i in big}
    inputs = list(graph.input) + [helper.make_tensor_value_info(i.name, i.data_type, list(i.dims))
                                  for i in big if i.name not in listed]
    light = helper.make_graph(graph.node, graph.name, inputs, graph.output,
                              initializer=[i for i in graph.initializer if i.name not in names],
                              value_info=graph.value_info)
    out = helper.make_model(light, opset_imports=model.opset_import)
    out.ir_version = model.ir_version
    return out


def _inferred(model):
    inferred = shape_inference.infer_shapes(_shape_only(model), strict_mode=True, data_prop=True)
    types, dims = {}, {}
    for vi in list(inferred.graph.input) + list(inferred.graph.value_info) + list(inferred.graph.output):
        t = vi.type.tensor_type
        types[vi.name] = t.elem_type
        if t.HasField("shape"):
            dims[vi.name] = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
    return types, dims


class Shapes:
    """Element types and dims (int, or None when batch-dependent) of every value of a model.

    Symbolic shape inference loses extents that pass through shape arithmetic (e.g. a class
    token expanded to the batch), so the graph is also inferred with two static batch sizes:
    an extent equal in both does not depend on the batch and is taken as static.
    """

    def __init__(self, model, probe=True):
        self.types, self.dims = _inferred(model)
        inputs = [i for i in model.graph.input if probe and i.type.tensor_type.HasField("shape")
                  and len(i.type.tensor_type.shape.dim) > 0
                  and not i.type.tensor_type.shape.dim[0].HasField("dim_value")]
        if inputs:
            probes = []
            for batch in (2, 3):
                probe = onnx.ModelProto.FromString(_shape_only(model).SerializeToString())
                for inp in probe.graph.input:
                    if inp.name in {i.name for i in inputs}:
                        inp.type.tensor_type.shape.dim[0].Clear()
                        inp.type.tensor_type.shape.dim[0].dim_value = batch
                for out in probe.graph.output:
                    out.type.tensor_type.ClearField("shape")
                del probe.graph.value_info[:]
                try:
                    fold_constants(probe)
                    dims = _inferred(probe)[1]
                except Exception:  # noqa: BLE001 - keep the symbolic result
                    probes = []
                    break
                dims.update({i.name: list(i.dims) for i in probe.graph.initializer})
                probes.append(dims)
            if probes:
                for name, a in probes[0].items():
                    b = probes[1].get(name)
                    if b is None or len(a) != len(b):
                        continue
                    merged = [x if x == y and x else None for x, y in zip(a, b)]
                    old = self.dims.get(name)
                    if old is None or len(old) != len(merged):
                        self.dims[name] = merged
                    else:
                        self.dims[name] = [o if o is not None else m for o, m in zip(old, merged)]
        for init in model.graph.initializer:
            self.types[init.name] = init.data_type
            self.dims[init.name] = list(init.dims)

    def get(self, name):
        if name not in self.dims:
            raise ExportError(f"shape inference gives no shape for tensor {name!r}")
        return self.dims[name]

    def static(self, name, axes=None):
        dims = self.get(name)
        picked = dims if axes is None else [dims[a] for a in axes]
        if any(d is None for d in picked):
            raise ExportError(f"tensor {name!r} needs static extents on axes "
                              f"{list(range(len(dims))) if axes is None else list(axes)}, has {dims}")
        return picked


class Builder:
    """Emits nodes and initializers with names that clash with nothing already in a graph."""

    def __init__(self, opset, taken=(), prefix=""):
        self.opset = opset
        self.prefix = prefix
        self.nodes, self.initializers = [], []
        self._taken = set(taken)
        self._consts = {}

    def fresh(self, hint):
        base = f"{self.prefix}{hint}"
        name, i = base, 0
        while name in self._taken:
            i += 1
            name = f"{base}_{i}"
        self._taken.add(name)
        return name

    def const(self, value, hint="const", dtype=np.float32):
        array = np.asarray(value, dtype=dtype)
        key = (array.dtype.str, array.shape, array.tobytes()) if array.size <= 64 else None
        if key is not None and key in self._consts:
            return self._consts[key]
        name = self.fresh(hint)
        self.initializers.append(numpy_helper.from_array(array, name))
        if key is not None:
            self._consts[key] = name
        return name

    def ints(self, values, hint="ints"):
        return self.const(np.asarray(values, dtype=np.int64), hint, dtype=np.int64)

    def op(self, op_type, inputs, hint=None, outputs=1, **attrs):
        hint = hint or op_type.lower()
        names = [self.fresh(hint if outputs == 1 else f"{hint}_{i}") for i in range(outputs)]
        self.nodes.append(helper.make_node(op_type, list(inputs), names,
                                           name=self.fresh(f"{hint}_node"), **attrs))
        return names[0] if outputs == 1 else names

    # Ops whose signature changed between opsets (axes attribute -> input).
    def reduce(self, op_type, x, axes, keepdims=1, hint=None):
        axes_as_input = op_type == "ReduceSum" or self.opset >= 18
        if axes_as_input:
            return self.op(op_type, [x, self.ints(axes, "axes")], hint, keepdims=keepdims)
        return self.op(op_type, [x], hint, axes=list(axes), keepdims=keepdims)

    def unsqueeze(self, x, axes, hint=None):
        return self.op("Unsqueeze", [x, self.ints(axes, "axes")], hint or "unsqueeze")

    def squeeze(self, x, axes, hint=None):
        return self.op("Squeeze", [x, self.ints(axes, "axes")], hint or "squeeze")

    def slice(self, x, starts, ends, axes, steps=None, hint=None):
        inputs = [x, self.ints(starts), self.ints(ends), self.ints(axes)]
        if steps is not None:
            inputs.append(self.ints(steps))
        return self.op("Slice", inputs, hint or "slice")

    def pad(self, x, pads, hint=None, value=None):
        inputs = [x, self.ints(pads, "pads")]
        if value is not None:
            inputs.append(self.const(np.float32(value), "pad_value"))
        return self.op("Pad", inputs, hint or "pad", mode="constant")


# --------------------------------------------------------------------------------------------
# Cleaning a forward graph


def node_attr(node, name, default=None):
    """The value of ``node``'s attribute ``name`` (strings decoded), ``default`` when absent."""
    for a in node.attribute:
        if a.name == name:
            value = helper.get_attribute_value(a)
            return value.decode() if isinstance(value, bytes) else value
    return default


def _rename_everywhere(graph, old, new):
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name == old:
                node.input[i] = new
        for i, name in enumerate(node.output):
            if name == old:
                node.output[i] = new
    for vi in list(graph.input) + list(graph.output) + list(graph.value_info):
        if vi.name == old:
            vi.name = new
    for init in graph.initializer:
        if init.name == old:
            init.name = new


def _constant_value(node):
    a = node.attribute[0]
    if a.name == "value":
        return numpy_helper.to_array(a.t)
    if a.name == "value_float":
        return np.array(a.f, np.float32)
    if a.name == "value_floats":
        return np.array(list(a.floats), np.float32)
    if a.name == "value_int":
        return np.array(a.i, np.int64)
    if a.name == "value_ints":
        return np.array(list(a.ints), np.int64)
    raise ExportError(f"Constant node {node.name!r} has an unsupported attribute {a.name!r}")


def _slice(x, starts, ends, axes=None, steps=None):
    axes = range(len(starts)) if axes is None else axes
    steps = [1] * len(starts) if steps is None else steps
    index = [slice(None)] * x.ndim
    for s, e, a, st in zip(starts, ends, axes, steps):
        index[int(a)] = slice(int(s), int(e), int(st))
    return x[tuple(index)]


def _reshape(x, shape, allowzero=0):
    shape = [int(d) for d in shape]
    if not allowzero:
        shape = [x.shape[i] if d == 0 else d for i, d in enumerate(shape)]
    return x.reshape(shape)


def _axes(node, values, index=1):
    if len(node.input) > index and node.input[index]:
        return [int(a) for a in values[node.input[index]]]
    axes = node_attr(node, "axes")
    return None if axes is None else [int(a) for a in axes]


# Fast numpy versions of the shape-arithmetic operators exporters emit (ONNX semantics for the
# float and int64 cases they are used with); everything else goes to onnx.reference.
_NUMPY_OPS = {
    "Unsqueeze": lambda n, v, x, *r: np.expand_dims(x, tuple(sorted(
        a % (x.ndim + len(_axes(n, v))) for a in _axes(n, v)))),
    "Squeeze": lambda n, v, x, *r: np.squeeze(x, None if _axes(n, v) is None else tuple(
        a % x.ndim for a in _axes(n, v))),
    "Concat": lambda n, v, *xs: np.concatenate(xs, axis=node_attr(n, "axis")),
    "Gather": lambda n, v, x, i: np.take(x, i, axis=node_attr(n, "axis", 0)),
    "Cast": lambda n, v, x: x.astype(helper.tensor_dtype_to_np_dtype(node_attr(n, "to"))),
    "Add": lambda n, v, a, b: a + b, "Sub": lambda n, v, a, b: a - b,
    "Mul": lambda n, v, a, b: a * b, "Neg": lambda n, v, a: -a,
    "Div": lambda n, v, a, b: (a / b).astype(a.dtype) if a.dtype.kind == "f"
    else (np.abs(a) // np.abs(b)) * np.sign(a) * np.sign(b),
    "Sqrt": lambda n, v, a: np.sqrt(a),
    "Equal": lambda n, v, a, b: np.equal(a, b), "Not": lambda n, v, a: np.logical_not(a),
    "Where": lambda n, v, c, a, b: np.where(c, a, b),
    "Reshape": lambda n, v, x, s: _reshape(x, s, node_attr(n, "allowzero", 0)),
    "Slice": lambda n, v, x, *r: _slice(x, *r),
    "Transpose": lambda n, v, x: np.transpose(x, node_attr(n, "perm")),
    "Expand": lambda n, v, x, s: np.broadcast_to(x, np.broadcast_shapes(x.shape, tuple(int(d) for d in s))).copy(),
    "ConstantOfShape": lambda n, v, s: np.full(tuple(int(d) for d in s),
                                               numpy_helper.to_array(node_attr(n, "value")).reshape(-1)[0]
                                               if node_attr(n, "value") is not None else np.float32(0)),
    "Identity": lambda n, v, x: x.copy(),
    "Shape": lambda n, v, x: np.array(x.shape, np.int64)[node_attr(n, "start", 0):node_attr(n, "end", None)],
}


def _eval_node(node, values, opset):
    """Evaluate one node on constant numpy inputs (numpy, else the ONNX reference)."""
    fast = _NUMPY_OPS.get(node.op_type)
    if fast is not None and len(node.output) == 1:
        args = [values[n] if n else None for n in node.input]
        while args and args[-1] is None:
            args.pop()
        if all(a is not None for a in args) and not (node.op_type in ("Add", "Sub", "Mul", "Div")
                                     and any(a.dtype != args[0].dtype for a in args)):
            out = np.asarray(fast(node, values, *args))
            return [out]
    from onnx.reference import ReferenceEvaluator

    inputs = [helper.make_tensor_value_info(f"i{k}", TensorProto.UNDEFINED, None)
              for k, name in enumerate(node.input) if name]
    mapping, k = [], 0
    for name in node.input:
        if name:
            mapping.append(f"i{k}")
            k += 1
        else:
            mapping.append("")
    outs = [f"o{k}" for k in range(len(node.output))]
    copy = helper.make_node(node.op_type, mapping, outs, domain=node.domain)
    copy.attribute.extend(node.attribute)
    graph = helper.make_graph([copy], "fold", inputs,
                              [helper.make_tensor_value_info(o, TensorProto.UNDEFINED, None) for o in outs])
    model = make_model(graph, opset)
    feeds = {f"i{k}": values[name] for k, name in enumerate(n for n in node.input if n)}
    return ReferenceEvaluator(model).run(None, feeds)


def fold_constants(model, fold_shapes=True):
    """Fold every node whose inputs are all constant (and Shape/Size of static shapes)."""
    graph = model.graph
    opset = opset_of(model)
    values = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    for _ in range(20):
        shapes = None
        try:
            shapes = Shapes(model, probe=False) if fold_shapes else None
        except Exception:  # noqa: BLE001 - folding still works without static shapes
            pass
        kept, changed = [], False
        for node in graph.node:
            out = None
            if node.op_type == "Constant":
                out = [_constant_value(node)]
            elif node.op_type in ("Shape", "Size") and shapes is not None and node.input[0] in shapes.dims \
                    and all(d is not None for d in shapes.dims[node.input[0]]):
                dims = np.array(shapes.dims[node.input[0]], np.int64)
                if node.op_type == "Size":
                    out = [np.array(np.prod(dims), np.int64)]
                else:
                    start, end = node_attr(node, "start", 0), node_attr(node, "end", None)
                    out = [dims[start:end]]
            elif node.op_type not in _NOT_FOLDABLE and node.domain in ("", "ai.onnx") and node.input \
                    and all((not n) or n in values for n in node.input):
                try:
                    out = _eval_node(node, values, opset)
                except Exception:  # noqa: BLE001 - leave a node the reference cannot run
                    out = None
                if out is not None and any(np.asarray(o).size > _FOLD_LIMIT for o in out):
                    out = None
            if out is None:
                kept.append(node)
                continue
            changed = True
            for name, value in zip(node.output, out):
                if name:
                    value = np.asarray(value)
                    values[name] = value
                    graph.initializer.append(numpy_helper.from_array(value, name))
        if not changed:
            break
        del graph.node[:]
        graph.node.extend(kept)
    remove_dead(model)
    return model


def remove_identities(model):
    """Bypass Identity nodes (and inference Dropout) by renaming their consumers' inputs."""
    graph = model.graph
    outputs = {o.name for o in graph.output}
    kept = []
    for node in graph.node:
        if node.op_type in ("Identity", "Dropout") and node.output[0] not in outputs \
                and all(not o for o in node.output[1:]):
            if node.op_type == "Dropout" and len(node.input) > 2 and node.input[2]:
                kept.append(node)
                continue
            src, dst = node.input[0], node.output[0]
            for other in graph.node:
                for i, name in enumerate(other.input):
                    if name == dst:
                        other.input[i] = src
            continue
        kept.append(node)
    del graph.node[:]
    graph.node.extend(kept)
    return model


def remove_dead(model):
    """Drop nodes and initializers that no graph output depends on."""
    graph = model.graph
    needed = {o.name for o in graph.output}
    kept = []
    for node in reversed(graph.node):
        if any(o in needed for o in node.output if o):
            kept.append(node)
            needed.update(n for n in node.input if n)
    kept.reverse()
    del graph.node[:]
    graph.node.extend(kept)
    inits = [i for i in graph.initializer if i.name in needed]
    seen, unique = set(), []
    for init in inits:
        if init.name not in seen:
            seen.add(init.name)
            unique.append(init)
    del graph.initializer[:]
    graph.initializer.extend(unique)
    vis = [v for v in graph.value_info if v.name in needed]
    del graph.value_info[:]
    graph.value_info.extend(vis)
    return model


def dedupe_initializers(model):
    """Merge initializers with identical contents (legacy exporters duplicate shared weights)."""
    graph = model.graph
    by_content, rename = {}, {}
    kept = []
    for init in graph.initializer:
        key = (init.data_type, tuple(init.dims), numpy_helper.to_array(init).tobytes())
        if key in by_content:
            rename[init.name] = by_content[key]
        else:
            by_content[key] = init.name
            kept.append(init)
    if rename:
        for node in graph.node:
            for i, name in enumerate(node.input):
                if name in rename:
                    node.input[i] = rename[name]
        del graph.initializer[:]
        graph.initializer.extend(kept)
    return model


def _set_dims(value_info, dims):
    shape = value_info.type.tensor_type.shape
    del shape.dim[:]
    for d in dims:
        dim = shape.dim.add()
        if isinstance(d, str):
            dim.dim_param = d
        elif d is not None:
            dim.dim_value = int(d)


def _fix_static_batch_reshapes(model, static_batch):
    """Reshape targets baked with the batch size of a static export become -1 (batch-free)."""
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    try:
        shapes = Shapes(model)
    except Exception:  # noqa: BLE001
        return
    for node in graph.node:
        if node.op_type != "Reshape" or node.input[1] not in inits:
            continue
        target = numpy_helper.to_array(inits[node.input[1]]).astype(np.int64)
        src = shapes.dims.get(node.input[0])
        if target.ndim != 1 or not len(target) or target[0] != static_batch or not src or src[0] != static_batch:
            continue
        out = shapes.dims.get(node.output[0])
        if -1 in target[1:]:
            if out is None or any(d is None for d in out[1:]):
                continue
            new = np.array([-1] + list(out[1:]), np.int64)
        else:
            new = target.copy()
            new[0] = -1
        name = f"{node.input[1]}_batchfree_{node.name or node.output[0]}"
        graph.initializer.append(numpy_helper.from_array(new, name))
        node.input[1] = name


def prepare_forward(model, *, opset=OPSET):
    """A copy of classifier ``model`` in canonical form; raises :class:`ExportError` if unfit."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    for node in graph.node:
        if node.domain not in ("", "ai.onnx"):
            raise ExportError(f"node {node.name!r} uses op {node.domain}.{node.op_type} outside the "
                              f"default ONNX domain")
    if model.functions:
        raise ExportError("models with local functions are not supported; inline them first")
    source_opset = opset_of(model)
    if source_opset > MAX_OPSET:
        raise ExportError(f"opset {source_opset} is newer than {MAX_OPSET}, the newest TensorRT 10 parses")
    if source_opset < opset:
        from onnx import version_converter
        try:
            model = version_converter.convert_version(model, opset)
        except Exception as err:  # noqa: BLE001
            raise ExportError(f"cannot convert opset {source_opset} to {opset}: {err}") from None
        graph = model.graph
    init_names = {i.name for i in graph.initializer}
    real_inputs = [i for i in graph.input if i.name not in init_names]
    if len(real_inputs) != 1:
        raise ExportError(f"expected one image input, found {[i.name for i in real_inputs]}")
    if len(graph.output) < 1:
        raise ExportError("the model has no output")
    inp = real_inputs[0]
    del graph.input[:]
    graph.input.extend([inp])
    t = inp.type.tensor_type
    if t.elem_type != TensorProto.FLOAT:
        raise ExportError(f"input {inp.name!r} must be float32, is {TensorProto.DataType.Name(t.elem_type)}")
    dims = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
    if len(dims) != 4:
        raise ExportError(f"input {inp.name!r} must be NCHW (rank 4), has shape {dims}")
    if any(d is None for d in dims[1:]):
        raise ExportError(f"input {inp.name!r} needs static C, H, W; has {dims}")
    if len(graph.output) > 1:
        del graph.output[1:]
    out_name = graph.output[0].name
    _rename_everywhere(graph, inp.name, IMAGES)
    _rename_everywhere(graph, out_name, LOGITS)
    remove_identities(model)
    del graph.value_info[:]
    if dims[0] is not None:
        fold_constants(model, fold_shapes=False)
        # Exported with a fixed batch: free the Reshape targets that baked it in, before the
        # batch becomes symbolic (nothing batch-dependent is folded while it is static).
        _fix_static_batch_reshapes(model, dims[0])
    _set_dims(graph.input[0], [BATCH] + dims[1:])
    graph.output[0].type.tensor_type.ClearField("shape")
    fold_constants(model)
    dedupe_initializers(model)
    remove_dead(model)
    shapes = Shapes(model)
    out_dims = shapes.get(LOGITS)
    if len(out_dims) != 2 or out_dims[1] is None:
        raise ExportError(f"the output must be logits [n, classes], has shape {out_dims}")
    _set_dims(graph.output[0], [BATCH, out_dims[1]])
    graph.output[0].type.tensor_type.elem_type = TensorProto.FLOAT
    return model


def input_chw(model):
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    return tuple(dims[1:])


def num_classes(model):
    return model.graph.output[0].type.tensor_type.shape.dim[1].dim_value


def finalize(model, check=True):
    """Clean up, order, check (onnx.checker full + strict shape inference) and return ``model``."""
    remove_dead(model)
    del model.graph.value_info[:]
    size = model.ByteSize()
    if size >= 2 ** 31:
        raise ExportError(f"the {model.graph.name} graph needs {size / 2 ** 30:.1f} GiB, over the "
                          "2 GiB a single ONNX file can hold")
    if check:
        onnx.checker.check_model(model, full_check=True)
    return model
