"""mspd-edge: preemptive image protection with the MCGS cascade (MSPD).

Importing ``mspd_edge`` does not import torch: the torch-based API below is loaded on first use,
so ``mspd_edge.runtime`` works on a device without torch.
"""
import os
import sys

from .util import lazy_attributes

__version__ = "0.1.0"

# Torch's OpenMP threads (libgomp) spin between parallel regions by default: beside other work
# that measured 3-60x slower (README "Under load"; a short spin, GOMP_SPINCOUNT=10000, was 2x
# faster idle but 2.2x slower beside one busy process). libgomp reads the policy once, when torch
# loads, so it is set here, before anything of mspd-edge imports torch (the CLI, the camera, Ray
# actors, the Python API); a policy set by the user is kept. TORCH_SPIN_WAITS: torch was imported
# first with no policy set, so it spins (the torch backend then warns once).
TORCH_SPIN_WAITS = "torch" in sys.modules and "OMP_WAIT_POLICY" not in os.environ
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

_LAZY = {
    "mcgs": "mspd_edge.reference",
    "revert": "mspd_edge.reference",
    "smooth_step": "mspd_edge.reference",
    "load_model": "mspd_edge.zoo",
    "list_models": "mspd_edge.zoo",
}

__all__ = sorted(_LAZY)

__getattr__ = lazy_attributes(__name__, _LAZY)
