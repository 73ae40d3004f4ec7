"""mspd-edge: preemptive image protection with the MCGS cascade (MSPD).

Importing ``mspd_edge`` does not import torch: the torch-based API below is loaded on first use,
so ``mspd_edge.runtime`` works on a device without torch.
"""
from .util import lazy_attributes

__version__ = "0.1.0"

_LAZY = {
    "mcgs": "mspd_edge.reference",
    "revert": "mspd_edge.reference",
    "smooth_step": "mspd_edge.reference",
    "load_model": "mspd_edge.zoo",
    "list_models": "mspd_edge.zoo",
}

__all__ = sorted(_LAZY)

__getattr__ = lazy_attributes(__name__, _LAZY)
