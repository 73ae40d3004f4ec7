"""The backend layer: every way to run the cascade, by name, for the CLI and the Python API.

One registry (:mod:`~mspd_edge.backends.registry`), :data:`BACKENDS`: name ->
:class:`BackendSpec` (how to build it, what it needs, whether it can run here). Every command
that runs the cascade (``protect``, ``revert``, ``camera``, ``evaluate``, ``bench``,
``parity``) and the Python API build backends through :func:`build_backend`; a backend that
cannot run here raises :class:`BackendError` with a one-line reason::

    from mspd_edge.backends import BackendOptions, build_backend
    models = build_backend("ort", BackendOptions(backbone="cifar10-backbone"))
    for i, protected, label in mspd_edge.pipeline.protect_images(images, models.backend, settings):
        ...

Importing this package imports neither torch nor onnxruntime: each builder
(:mod:`~mspd_edge.backends.builders`) imports its engine when called.
"""
from . import builders  # noqa: F401  (registers torch, ort and trt)
from .registry import (BACKENDS, DEVICES, PROVIDERS, ROUTES, BackendError, BackendOptions,
                       BackendSpec, Models, backend_names, build_backend, get_backend,
                       register_backend, resolve_backend, unavailable_reason)

__all__ = ["BACKENDS", "DEVICES", "PROVIDERS", "ROUTES", "BackendError", "BackendOptions",
           "BackendSpec", "Models", "backend_names", "build_backend", "get_backend",
           "register_backend", "resolve_backend", "unavailable_reason"]
