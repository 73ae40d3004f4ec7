"""Model zoo: RobustBench-compatible architectures and the embedded default models.

Importing the package does not import torch: ``load_model`` and ``list_models`` load the loader
on first use, so the torch-free parts (the id tables, :mod:`.locate`, :mod:`.pull`) serve a
device without torch.
"""
from importlib import import_module

from .info import ModelInfo

__all__ = ["ModelInfo", "list_models", "load_model"]


def __getattr__(name):
    if name in ("list_models", "load_model"):
        return getattr(import_module(".loader", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
