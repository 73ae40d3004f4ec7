"""CIFAR ResNeXt (RobustBench ``architectures/resnext.py``, from D-X-Y/ResNeXt-DenseNet).

Checked against RobustBench ``robustbench/model_zoo/architectures/resnext.py`` and
``model_zoo/cifar10.py``: ``Hendrycks2020AugMix_ResNeXt`` is ``CifarResNeXt(ResNeXtBottleneck,
depth=29, cardinality=4, base_width=32)`` with ``mu = sigma = 0.5`` buffers that its checkpoint
does not contain (RobustBench calls it ResNeXt29_32x4d). State-dict keys equal RobustBench's
(normalisation lives in a non-persistent :class:`Normalize`). ``stem_width`` (64 published)
scales the stage widths ``stem_width * (1, 2, 4)``; a block's grouped width is
``floor(planes * base_width / 64) * cardinality``. RobustBench's custom weight init is not copied
(it does not matter for loading checkpoints). Global average pooling replaces ``AvgPool2d(8)``
(the same at 32x32).
"""
import torch.nn as nn
import torch.nn.functional as F

from .common import Normalize

_EXPANSION = 4


class _Bottleneck(nn.Module):
    def __init__(self, in_planes, planes, cardinality, base_width, stride):
        super().__init__()
        dim = (planes * base_width // 64) * cardinality
        self.conv_reduce = nn.Conv2d(in_planes, dim, 1, bias=False)
        self.bn_reduce = nn.BatchNorm2d(dim)
        self.conv_conv = nn.Conv2d(dim, dim, 3, stride=stride, padding=1, groups=cardinality,
                                   bias=False)
        self.bn = nn.BatchNorm2d(dim)
        self.conv_expand = nn.Conv2d(dim, planes * _EXPANSION, 1, bias=False)
        self.bn_expand = nn.BatchNorm2d(planes * _EXPANSION)
        self.downsample = None
        if stride != 1 or in_planes != planes * _EXPANSION:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_planes, planes * _EXPANSION, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * _EXPANSION))

    def forward(self, x):
        out = F.relu(self.bn_reduce(self.conv_reduce(x)))
        out = F.relu(self.bn(self.conv_conv(out)))
        out = self.bn_expand(self.conv_expand(out))
        residual = x if self.downsample is None else self.downsample(x)
        return F.relu(residual + out)


class ResNeXt(nn.Module):
    """CIFAR ResNeXt-``depth`` (``depth = 9n + 2``), ``cardinality`` groups of ``base_width``."""

    def __init__(self, num_classes=10, depth=29, cardinality=4, base_width=32, stem_width=64,
                 mean=None, std=None, num_input_channels=3):
        super().__init__()
        if (depth - 2) % 9:
            raise ValueError(f"depth must be 9n + 2, got {depth}")
        blocks = (depth - 2) // 9
        self.normalize = Normalize(mean, std, num_input_channels)
        self.conv_1_3x3 = nn.Conv2d(num_input_channels, stem_width, 3, 1, 1, bias=False)
        self.bn_1 = nn.BatchNorm2d(stem_width)
        in_planes = stem_width
        for i, planes in enumerate(stem_width * m for m in (1, 2, 4)):
            layers = []
            for j in range(blocks):
                stride = 2 if i > 0 and j == 0 else 1
                layers.append(_Bottleneck(in_planes, planes, cardinality, base_width, stride))
                in_planes = planes * _EXPANSION
            setattr(self, f"stage_{i + 1}", nn.Sequential(*layers))
        self.classifier = nn.Linear(in_planes, num_classes)

    def forward(self, x):
        out = F.relu(self.bn_1(self.conv_1_3x3(self.normalize(x))))
        out = self.stage_3(self.stage_2(self.stage_1(out)))
        return self.classifier(F.adaptive_avg_pool2d(out, 1).flatten(1))
