"""Reduced precision (``mspd_edge.calibration``): fp16 and int8 (Q/DQ) bundles made from an fp32
export, with onnx and onnxruntime (no torch); their measured effect is the precision report,
:mod:`mspd_edge.measure.precision`.

Lives in the top-level ``calibration/`` folder; installed as ``mspd_edge.calibration``.
"""
