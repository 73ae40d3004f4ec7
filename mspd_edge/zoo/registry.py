"""Architecture registry: name -> constructor, so a manifest can rebuild any model."""
from .cifarnet import CifarNet
from .dm_resnet import DMPreActResNet, DMWideResNet
from .resnet import PreActResNet, ResNet
from .resnext import ResNeXt
from .vit import VisionTransformer, vit_convstem

ARCHITECTURES = {
    "dm_preact_resnet": DMPreActResNet,
    "dm_wide_resnet": DMWideResNet,
    "preact_resnet": PreActResNet,
    "resnet": ResNet,
    "resnext": ResNeXt,
    "vit_convstem": vit_convstem,
    "deit": VisionTransformer,
    "cifarnet": CifarNet,
}


def build(arch, **kwargs):
    """Instantiate architecture ``arch`` (a key of ``ARCHITECTURES``) with ``kwargs``."""
    try:
        cls = ARCHITECTURES[arch]
    except KeyError:
        raise ValueError(f"unknown architecture {arch!r}; known: {sorted(ARCHITECTURES)}") from None
    return cls(**kwargs)
