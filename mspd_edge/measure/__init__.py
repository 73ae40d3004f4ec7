"""Measurement beside the backends (``mspd_edge.measure``): what ``bench``, ``parity`` and
``calibrate --report`` measure, kept out of the lean runtime a device runs.

* :mod:`.bench`: throughput, latency and peak memory of a backend on real images;
* :mod:`.compare`: graph and backend parity (gradients, labels, protected images) against a
  reference, with the per-precision tolerances;
* :mod:`.precision`: the precision report, every precision that runs here against fp32.
"""
