"""Standard and fast adversarial training on CIFAR-style npz data (`mspd-edge train`)."""
from .config import TrainConfig

__all__ = ["TrainConfig", "train"]


def train(cfg, resume=True, log=print):
    """Train as ``cfg`` says (see ``mspd_edge.train.loop.train``); imports torch on first use."""
    from .loop import train as run

    return run(cfg, resume=resume, log=log)
