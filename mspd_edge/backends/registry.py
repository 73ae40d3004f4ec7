"""The backend registry: name -> :class:`BackendSpec` (how to build it, what it needs, and
whether it can run here), :class:`BackendOptions` (what every backend is built from) and
:func:`build_backend`. Builders register with :func:`register_backend`."""
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

from .. import defaults
from ..protocol import AUTO_ROUTE, ROUTES, Backend
from ..zoo.info import ModelInfo
from .choice import choose_backend
from .precision import AUTO, CHOICES as PRECISION_CHOICES

DEVICES = ("cpu", "cuda")
PROVIDERS = ("cpu", "cuda", "tensorrt")   # ONNX Runtime execution providers (backend "ort")


class BackendError(ValueError):
    """A backend cannot be built with these options: the message is one line for the user.

    ``option``: the command-line option at fault (``--backend``, ``--device``, ...), or None.
    """

    def __init__(self, message, option=None):
        super().__init__(message)
        self.option = option


@dataclass(frozen=True)
class BackendOptions:
    """What every backend is built from (the shared options of the commands)."""

    backbone: str = defaults.BACKBONE
    classifier: str | None = None
    device: str = "cpu"
    model_dir: Path | None = None
    provider: str | None = None
    precision: str = "fp32"
    threads: int | None = None
    route: str = AUTO_ROUTE
    copies_per_call: int | None = None

    def but(self, **changes):
        """A copy with ``changes``."""
        return replace(self, **changes)


@dataclass
class Models:
    """A ready backend and the metadata of the models behind it."""

    backend: Backend
    backbone: ModelInfo
    classifier: ModelInfo | None


@dataclass(frozen=True)
class BackendSpec:
    """One registered backend.

    ``build(options, need_classifier) -> Models``; ``check(options) -> str | None`` says why it
    cannot run here (None: it can); ``requires``: the Python modules it imports; ``runtime``:
    it runs exported graphs (``--model-dir``) rather than PyTorch models.
    """

    name: str
    summary: str
    build: Callable
    check: Callable
    requires: tuple = ()
    runtime: bool = False
    options: tuple = field(default=())   # options that only this backend takes
    default_precision: Callable | None = None   # options -> what --precision auto means here


BACKENDS: dict[str, BackendSpec] = {}


def register_backend(name, *, summary, check, requires=(), runtime=False, options=(),
                     default_precision=None):
    """Decorator: register ``build(options, need_classifier) -> Models`` as backend ``name``."""
    def decorate(build):
        BACKENDS[name] = BackendSpec(name, summary, build, check, tuple(requires), runtime,
                                     tuple(options), default_precision)
        return build
    return decorate


def backend_names():
    """The registered backend names, sorted, then ``auto`` (the default: :func:`resolve_backend`)."""
    return [*sorted(BACKENDS), AUTO]


def resolve_backend(name, options=BackendOptions()):
    """``name``; for ``auto``, the backend this machine runs fastest with ``options``
    (:func:`~mspd_edge.backends.choice.choose_backend`)."""
    return choose_backend(options, unavailable_reason) if name == AUTO else name


def get_backend(name, options=BackendOptions()):
    """The :class:`BackendSpec` of ``name`` (``auto`` resolved for ``options``);
    :class:`BackendError` naming the choices otherwise."""
    name = resolve_backend(name, options)
    if name not in BACKENDS:
        raise BackendError(f"unknown backend {name!r}: use one of {', '.join(backend_names())}",
                           "--backend")
    return BACKENDS[name]


def resolve_precision(name, options=BackendOptions()):
    """``options`` with ``precision="auto"`` replaced by backend ``name``'s default here."""
    if options.precision != AUTO:
        return options
    spec = get_backend(name, options)
    return options.but(precision=spec.default_precision(options) if spec.default_precision else "fp32")


def unavailable_reason(name, options=BackendOptions()):
    """Why backend ``name`` cannot run here with ``options`` (one line), or None when it can."""
    if options.precision not in PRECISION_CHOICES:
        return f"unknown precision {options.precision!r}: use one of {', '.join(PRECISION_CHOICES)}"
    name = resolve_backend(name, options)
    spec = get_backend(name)
    options = resolve_precision(name, options)
    if options.device not in DEVICES:
        return f"unknown device {options.device!r}: use one of {', '.join(DEVICES)}"
    if options.route not in (AUTO_ROUTE, *ROUTES):
        return f"unknown route {options.route!r}: use one of {', '.join((AUTO_ROUTE, *ROUTES))}"
    for opt, value in (("--model-dir", options.model_dir), ("--provider", options.provider)):
        if value is not None and opt not in spec.options:
            takers = " or ".join(n for n, s in sorted(BACKENDS.items()) if opt in s.options)
            return f"{opt} goes with --backend {takers}"
    return spec.check(options)


def build_backend(name, options=BackendOptions(), *, need_classifier=True):
    """Build backend ``name`` (``auto``: :func:`resolve_backend`): a :class:`Models`;
    :class:`BackendError` when it cannot run here."""
    name = resolve_backend(name, options)
    why = unavailable_reason(name, options)
    if why is not None:
        raise BackendError(f"--backend {name}: {why}", "--backend")
    return get_backend(name).build(resolve_precision(name, options), need_classifier)
