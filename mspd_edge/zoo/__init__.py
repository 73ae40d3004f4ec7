"""Model zoo: RobustBench-compatible architectures and the embedded default models."""
from .info import ModelInfo
from .loader import list_models, load_model

__all__ = ["ModelInfo", "list_models", "load_model"]
