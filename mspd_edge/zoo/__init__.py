"""Model zoo: RobustBench-compatible architectures and the embedded default models.

Importing the package does not import torch: ``load_model``, ``list_models`` and ``save_weights``
load the loader on first use, so the torch-free parts (the id tables, :mod:`.locate`, :mod:`.pull`) serve a
device without torch.
"""
from ..util import lazy_attributes
from .info import ModelInfo

__all__ = ["ModelInfo", "list_models", "load_model", "save_weights"]

__getattr__ = lazy_attributes(__name__, {"list_models": ".loader", "load_model": ".loader",
                                             "save_weights": ".loader"})
