"""The cascade backend protocol in code: :class:`Backend`, the base of every backend.

What :mod:`mspd_edge.pipeline`, the jobs, the camera, ``evaluate`` and the measurements
(:mod:`mspd_edge.measure`) ask of a backend, after Polygraphy's ``BaseRunner``: abstract calls
(:meth:`~Backend.predict`, :meth:`~Backend.input_grad`, :meth:`~Backend.run`), attributes every
backend has (descriptions with defaults here), and :meth:`~Backend.close` with context-manager
use. The torch reference (:class:`mspd_edge.torch_backend.TorchBackend`) and the runtime
backends (:class:`mspd_edge.runtime.cascade.CascadeBackend`) derive from it; the registry
(:mod:`mspd_edge.backends`) builds them. Standard library only: the runtime imports it.
"""
from abc import ABC, abstractmethod

# How a runtime backend takes one SmoothStep: the whole step in the ``mcgs_step`` graph, or numpy
# around the ``backbone_grad`` graph (docs/runtime.md); "auto" picks the one measured faster.
ROUTES = ("step", "grad")
AUTO_ROUTE = "auto"


class Backend(ABC):
    """A cascade backend: labels, input gradients and protected batches of float32 images."""

    name = "backend"          # how reports name the backend ("torch", "ort", "ort-cuda", "trt")
    precision = "fp32"        # of the network in the gradient passes
    route = None              # the runtime's SmoothStep route (one of ROUTES); None: not a runtime
    copies_per_call = None    # noisy copies per engine call at most; None: no cap
    provider = None           # the ONNX Runtime execution provider; None: not ONNX Runtime
    bundle = None             # the export bundle the backend runs (mspd_edge.bundle.Bundle), if any
    input_size: tuple         # (C, H, W) of the models
    default_eps: float        # the backbone's L-inf budget

    @abstractmethod
    def predict(self, x, model):
        """Argmax labels (int64 [B]) of ``model`` ("classifier" or "backbone") for float32 [B,C,H,W]."""

    @abstractmethod
    def input_grad(self, images, labels):
        """``d sum-CE(backbone(images), labels) / d images`` (float32 numpy in and out)."""

    @abstractmethod
    def run(self, x, labels, noise, settings):
        """The protected float32 batch for images ``x``, ``labels`` and per-epoch ``noise``."""

    def close(self):
        """Free sessions, engines and device memory (nothing to free by default)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
