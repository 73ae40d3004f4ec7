"""What a loaded model is: :class:`ModelInfo` and the per-dataset metadata it is built from."""
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from ..defaults import EPS_BY_INPUT_SIZE

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")
# The Keras ImageNet class index (https://github.com/pytorch/hub imagenet_classes.txt), one per line.
IMAGENET_CLASSES_FILE = Path(__file__).with_name("imagenet_classes.txt")

# Normalisation constants (inside the models, as in RobustBench):
# RobustBench `dm_wide_resnet.py` / `cifar10.py` (also used by Wong2020Fast).
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2471, 0.2435, 0.2616)
# RobustBench `Hendrycks2020AugMixResNeXtNet` (mu = sigma = 0.5).
AUGMIX_MEAN = (0.5, 0.5, 0.5)
AUGMIX_STD = (0.5, 0.5, 0.5)
# RobustBench `convstem_models.py` IMAGENET_MEAN/STD and timm's IMAGENET_DEFAULT_MEAN/STD (DeiT).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Input size (C, H, W) and default L-inf budget of each dataset: 8/255 at 32x32, 4/255 at 224x224.
DATASETS = {
    "cifar10": {"input_size": (3, 32, 32), "eps": EPS_BY_INPUT_SIZE[32]},
    "imagenet": {"input_size": (3, 224, 224), "eps": EPS_BY_INPUT_SIZE[224]},
}


@lru_cache(maxsize=None)
def dataset_classes(dataset):
    """Class names of ``dataset`` ("cifar10" or "imagenet"), in label order."""
    if dataset == "cifar10":
        return CIFAR10_CLASSES
    if dataset == "imagenet":
        return tuple(IMAGENET_CLASSES_FILE.read_text().split())
    raise ValueError(f"unknown dataset {dataset!r}; known: {sorted(DATASETS)}")


@dataclass(frozen=True)
class ModelInfo:
    """What is known of a model: ``model.info`` of every model ``load_model`` returns, and the
    models of an export bundle (:meth:`mspd_edge.bundle.Bundle.meta`: no architecture there)."""

    name: str
    input_size: tuple  # (C, H, W)
    classes: tuple = field(repr=False)
    eps: float
    dataset: str | None = None   # the training set, when known
    arch: str | None = None
    arch_kwargs: dict = field(default_factory=dict, repr=False)
    source: str | None = None  # where the weights came from
    pair: str | None = None  # the default label classifier of a backbone
    smoothing_sigma: float | None = None  # a randomized-smoothing base classifier's noise level

    @classmethod
    def for_dataset(cls, name, arch, arch_kwargs, dataset, source, **overrides):
        """Fill ``input_size``, ``classes`` and ``eps`` from ``dataset`` unless overridden."""
        meta = {**DATASETS[dataset], "classes": dataset_classes(dataset), **overrides}
        return cls(name=name, arch=arch, arch_kwargs=dict(arch_kwargs), dataset=dataset,
                   input_size=tuple(meta["input_size"]), classes=tuple(meta["classes"]),
                   eps=float(meta["eps"]), source=source, pair=meta.get("pair"),
                   smoothing_sigma=meta.get("smoothing_sigma"))
