"""The lean runtime (``mspd_edge.runtime``): runs the cascade without torch.

Lives in the top-level ``runtime/`` folder; installed as the ``mspd_edge.runtime`` subpackage.
It may import only numpy, onnxruntime, cv2 (and Polygraphy/TensorRT lazily); never torch at
import time (the TensorRT path uses torch CUDA tensors when torch is installed, see ``trt.py``).

* :class:`OrtBackend` / :class:`TrtBackend` (``cascade.py``): pipeline backends on an export
  bundle, for ``mspd_edge.pipeline.protect_images`` and the CLI;
* :class:`OnnxRuntimeRunner` (``runners.py``) and :class:`TrtGraph` (``trt.py``, Polygraphy's
  ``TrtRunner`` on a cached engine): runners of one graph; :class:`EngineCache` (``engine_cache.py``);
* export bundles are read through :class:`mspd_edge.bundle.Bundle` (the bundle contract).

Importing this package imports nothing heavy: each name is loaded on first use.
"""
from mspd_edge.util import lazy_attributes

_LAZY = {
    "OrtBackend": ".cascade", "TrtBackend": ".cascade",
    "Runner": ".runners", "OnnxRuntimeRunner": ".runners", "ProviderUnavailable": ".runners",
    "available_providers": ".runners", "TrtGraph": ".trt", "trt_available": ".trt",
    "EngineCache": ".engine_cache", "EngineKey": ".engine_cache", "StaleEngineError": ".engine_cache",
}

__all__ = sorted(_LAZY)

__getattr__ = lazy_attributes(__name__, _LAZY)
