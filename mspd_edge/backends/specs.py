"""Backend specs of ``parity`` and ``bench``: ``NAME[@PRECISION][:ROUTE]``, NAME a backend or
``ort-PROVIDER``.

``ort-cuda:grad`` is the ort backend with provider cuda and route grad; ``torch@bf16`` the torch
backend in bf16, ``ort@int8:step`` ONNX Runtime on the int8 bundle; a spec without a precision
takes ``--precision``. ``torch`` takes no route.
"""
import importlib.util

from ..protocol import AUTO_ROUTE, ROUTES
from .precision import CHOICES as PRECISIONS
from .registry import PROVIDERS, BackendError, resolve_precision, unavailable_reason

SPEC_NAMES = ("torch", "ort", *(f"ort-{p}" for p in PROVIDERS), "trt")


def split_spec(spec):
    """``"ort@int8:grad"`` -> ``("ort", "int8", "grad")`` (None for what the spec leaves out)."""
    head, _, route = spec.partition(":")
    name, _, precision = head.partition("@")
    return name, precision or None, route or None


def parse_specs(value):
    """``"torch,ort:grad"`` -> ``["torch", "ort:grad"]``; :class:`BackendError` when malformed."""
    specs = [item.strip() for item in value.split(",") if item.strip()]
    for spec in specs:
        name, precision, route = split_spec(spec)
        if (name not in SPEC_NAMES or (route and (name == "torch" or route not in ROUTES))
                or (precision is not None and precision not in PRECISIONS) or spec.endswith(("@", ":"))):
            raise BackendError(f"{spec!r}: use {', '.join(SPEC_NAMES)}, optionally with @PRECISION "
                               f"({', '.join(PRECISIONS)}) and, for the runtime ones, :step or :grad "
                               "(e.g. torch@bf16, ort@int8:grad)", "--backends")
    if len(set(specs)) != len(specs) or not specs:
        raise BackendError("a non-empty list without repeats", "--backends")
    return specs


def spec_backend(spec, options):
    """``(backend name, options)`` for one spec: provider, precision and route from the spec,
    ``precision="auto"`` resolved for the backend."""
    name, precision, route = split_spec(spec)
    if precision:
        options = options.but(precision=precision)
    if name == "torch":
        return "torch", resolve_precision("torch", options.but(model_dir=None, provider=None))
    changes = {"route": route or AUTO_ROUTE}
    if name.startswith("ort-"):
        changes["provider"] = name[len("ort-"):]
    elif name == "trt":
        changes["provider"] = None
    backend = "ort" if name.startswith("ort") else name
    return backend, resolve_precision(backend, options.but(**changes))


def available_specs(options):
    """The specs this machine can run: torch if installed, ORT per provider, TensorRT."""
    specs = ["torch"] if importlib.util.find_spec("torch") is not None else []
    for spec in ("ort", "ort-cuda", "ort-tensorrt", "trt"):
        name, opts = spec_backend(spec, options.but(model_dir=None))
        if unavailable_reason(name, opts) is None:
            specs.append(spec)
    return specs
