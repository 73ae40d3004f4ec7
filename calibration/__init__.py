"""Reduced precision (FP16, INT8 via Q/DQ) and its measured effect (``mspd_edge.calibration``).

Lives in the top-level ``calibration/`` folder; installed as ``mspd_edge.calibration``.
"""
