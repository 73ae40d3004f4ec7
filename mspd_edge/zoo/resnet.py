"""CIFAR ResNet and pre-activation ResNet (RobustBench ``architectures/resnet.py``).

Checked against RobustBench ``robustbench/model_zoo/architectures/resnet.py`` and
``model_zoo/cifar10.py``: ``Addepalli2022Efficient_RN18`` is ``ResNet18()`` =
``ResNet(BasicBlock, [2, 2, 2, 2])`` with no input normalisation; ``Wong2020Fast`` is
``PreActResNet(PreActBlock, [2, 2, 2, 2])`` (no BatchNorm before the classifier) with CIFAR-10
mean/std buffers ``mu``/``sigma`` that its checkpoint does not contain. State-dict keys equal
RobustBench's (normalisation lives in a non-persistent :class:`Normalize`). ``base_width`` scales
the four stages (``base_width * (1, 2, 4, 8)``); 64 is the published size. Global average
pooling replaces ``avg_pool2d(4)`` (the same at 32x32).
"""
import torch.nn as nn
import torch.nn.functional as F

from .common import Normalize

_STAGE_BLOCKS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}


class _BasicBlock(nn.Module):
    def __init__(self, in_planes, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class _PreActBlock(nn.Module):
    def __init__(self, in_planes, planes, stride):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False))

    def forward(self, x):
        out = F.relu(self.bn1(x))
        # As in RobustBench's PreActBlock: the shortcut sees the raw input, not the activated one.
        shortcut = self.shortcut(x) if hasattr(self, "shortcut") else x
        out = self.conv2(F.relu(self.bn2(self.conv1(out))))
        return out + shortcut


def _stages(block, blocks, widths):
    stages, in_planes = [], widths[0]
    for i, (n, planes) in enumerate(zip(blocks, widths)):
        strides = [1 if i == 0 else 2] + [1] * (n - 1)
        stages.append(nn.Sequential(*[block(in_planes if j == 0 else planes, planes, s)
                                      for j, s in enumerate(strides)]))
        in_planes = planes
    return stages


class ResNet(nn.Module):
    """ResNet-18/34 with basic blocks; ``base_width`` 64 is the published (Addepalli2022) size."""

    def __init__(self, num_classes=10, depth=18, base_width=64, mean=None, std=None,
                 num_input_channels=3):
        super().__init__()
        widths = [base_width * m for m in (1, 2, 4, 8)]
        self.normalize = Normalize(mean, std, num_input_channels)
        self.conv1 = nn.Conv2d(num_input_channels, widths[0], 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.layer1, self.layer2, self.layer3, self.layer4 = _stages(
            _BasicBlock, _STAGE_BLOCKS[depth], widths)
        self.linear = nn.Linear(widths[3], num_classes)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(self.normalize(x))))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        return self.linear(F.adaptive_avg_pool2d(out, 1).flatten(1))


class PreActResNet(nn.Module):
    """Pre-activation ResNet-18/34 (Wong2020Fast); ``base_width`` 64 is the published size."""

    def __init__(self, num_classes=10, depth=18, base_width=64, mean=None, std=None,
                 num_input_channels=3):
        super().__init__()
        widths = [base_width * m for m in (1, 2, 4, 8)]
        self.normalize = Normalize(mean, std, num_input_channels)
        self.conv1 = nn.Conv2d(num_input_channels, widths[0], 3, stride=1, padding=1, bias=False)
        self.layer1, self.layer2, self.layer3, self.layer4 = _stages(
            _PreActBlock, _STAGE_BLOCKS[depth], widths)
        self.linear = nn.Linear(widths[3], num_classes)

    def forward(self, x):
        out = self.conv1(self.normalize(x))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        return self.linear(F.adaptive_avg_pool2d(out, 1).flatten(1))
