"""ONNX export of robust backbones with their input-gradient graphs (``mspd_edge.export``).

Lives in the top-level ``export/`` folder; installed as the ``mspd_edge.export`` subpackage.
A backbone becomes four graphs (see docs/export.md): ``backbone`` (images -> logits),
``backbone_grad`` (images, labels -> d sum-CE / d images), ``mcgs_step`` (one whole SmoothStep)
and ``classifier``, plus ``manifest.json``.

* :func:`export_bundle` writes a bundle (``bundle.py``);
* :func:`check_bundle` checks one without torch (the bundle contract, which the runtime and
  calibration read too, is :mod:`mspd_edge.bundle`);
* :func:`gradient_graph` (``gradient.py``), :func:`mcgs_step_graph` (``step.py``) and
  :func:`check_model` (``trt_support.py``) are the pieces.

Importing this package imports nothing heavy: each name is loaded on first use.
"""
from mspd_edge.util import lazy_attributes

_LAZY = {
    "export_bundle": ".bundle", "check_bundle": ".bundle",
    "check_file": ".bundle", "gradient_graph": ".gradient", "UnsupportedOperatorError": ".gradient",
    "mcgs_step_graph": ".step", "check_model": ".trt_support", "ExportError": ".onnxutil",
    "torch_forward_graph": ".graphs", "onnx_forward_graph": ".graphs",
}

__all__ = sorted(_LAZY)

__getattr__ = lazy_attributes(__name__, _LAZY)
