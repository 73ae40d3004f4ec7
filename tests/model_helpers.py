"""Helpers shared by the zoo, export and runtime tests: reduced architectures, BatchNorm stats."""
import torch

from mspd_edge.zoo.info import CIFAR10_MEAN, CIFAR10_STD

# Reduced-size variants of every registry architecture (same code, small widths/depths, 32x32).
REDUCED = {
    "dm_preact_resnet": dict(base_width=4, mean=CIFAR10_MEAN, std=CIFAR10_STD),
    "dm_wide_resnet": dict(depth=10, width=1, activation="swish"),
    "preact_resnet": dict(base_width=4, mean=CIFAR10_MEAN, std=CIFAR10_STD),
    "resnet": dict(base_width=4),
    "resnext": dict(depth=11, cardinality=2, base_width=16, stem_width=8),
    "vit_convstem": dict(img_size=32, embed_dim=32, depth=2, num_heads=2, conv_stem_width=4),
    "deit": dict(img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2),
    "cifarnet": dict(widths=(8, 16, 16), stem=8),
}


def randomize_batchnorm(model, seed=0):
    """Non-trivial BatchNorm statistics, so their gradient rules are really exercised."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            c = m.num_features
            m.running_mean.copy_(torch.rand(c, generator=g) * 0.6 - 0.3)
            m.running_var.copy_(torch.rand(c, generator=g) * 1.5 + 0.5)
            m.weight.data.copy_(torch.rand(c, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(c, generator=g) * 0.4 - 0.2)
    return model
