"""Pieces shared by the zoo architectures, and the normalisation constants they use."""
import torch
import torch.nn as nn

# RobustBench `dm_wide_resnet.py` / `cifar10.py` (also used by Wong2020Fast).
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2471, 0.2435, 0.2616)
# RobustBench `Hendrycks2020AugMixResNeXtNet` (mu = sigma = 0.5).
AUGMIX_MEAN = (0.5, 0.5, 0.5)
AUGMIX_STD = (0.5, 0.5, 0.5)
# RobustBench `convstem_models.py` IMAGENET_MEAN/STD and timm's IMAGENET_DEFAULT_MEAN/STD (DeiT).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Normalize(nn.Module):
    """``(x - mean) / std`` inside the model; not part of the state dict (as in RobustBench)."""

    def __init__(self, mean, std, channels=3):
        super().__init__()
        mean = torch.zeros(channels) if mean is None else torch.tensor(mean, dtype=torch.float32)
        std = torch.ones(channels) if std is None else torch.tensor(std, dtype=torch.float32)
        self.register_buffer("mean", mean.view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", std.view(1, -1, 1, 1), persistent=False)

    def forward(self, x):
        return (x - self.mean) / self.std
