"""Backend specs of ``parity`` and ``bench``: ``NAME[:ROUTE]``, NAME a backend or ``ort-PROVIDER``.

``ort-cuda:grad`` is the ort backend with provider cuda and route grad; ``torch`` takes no route.
"""
import importlib.util

from .registry import PROVIDERS, BackendError, unavailable_reason

SPEC_NAMES = ("torch", "ort", *(f"ort-{p}" for p in PROVIDERS), "trt")
SPEC_ROUTES = ("step", "grad")


def parse_specs(value):
    """``"torch,ort:grad"`` -> ``["torch", "ort:grad"]``; :class:`BackendError` when malformed."""
    specs = [item.strip() for item in value.split(",") if item.strip()]
    for spec in specs:
        name, _, route = spec.partition(":")
        if name not in SPEC_NAMES or (route and (name == "torch" or route not in SPEC_ROUTES)):
            raise BackendError(f"{spec!r}: use {', '.join(SPEC_NAMES)}, optionally with :step or "
                               ":grad for the runtime ones (e.g. ort:grad)", "--backends")
    if len(set(specs)) != len(specs) or not specs:
        raise BackendError("a non-empty list without repeats", "--backends")
    return specs


def spec_backend(spec, options):
    """``(backend name, options)`` for one spec: provider and route taken from the spec."""
    name, _, route = spec.partition(":")
    if name == "torch":
        return "torch", options.but(model_dir=None, provider=None)
    changes = {"route": route or "auto"}
    if name.startswith("ort-"):
        changes["provider"] = name[len("ort-"):]
    elif name == "trt":
        changes["provider"] = None
    return ("ort" if name.startswith("ort") else name), options.but(**changes)


def available_specs(options):
    """The specs this machine can run: torch if installed, ORT per provider, TensorRT."""
    specs = ["torch"] if importlib.util.find_spec("torch") is not None else []
    for spec in ("ort", "ort-cuda", "ort-tensorrt", "trt"):
        name, opts = spec_backend(spec, options.but(model_dir=None))
        if unavailable_reason(name, opts) is None:
            specs.append(spec)
    return specs
