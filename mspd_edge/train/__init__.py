"""Standard and fast adversarial training on CIFAR-style npz data (`mspd-edge train`)."""
from .loop import TrainConfig, train

__all__ = ["TrainConfig", "train"]
