"""A small fast-training CIFAR classifier (airbench-style conv groups), the label classifier.

Three groups of conv -> max-pool -> BN -> GELU -> conv -> BN -> GELU, then global max-pool and
a linear head. ``flip_tta`` averages the logits of the image and its mirror (inside forward,
so every backend gets it for free).
"""
import torch
import torch.nn as nn

from .common import Normalize


def _bn(c):
    return nn.BatchNorm2d(c, momentum=0.1)


class _ConvGroup(nn.Module):
    def __init__(self, c_in, c_out):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
        self.pool = nn.MaxPool2d(2)
        self.norm1 = _bn(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.norm2 = _bn(c_out)
        self.act = nn.GELU()

    def forward(self, x):
        x = self.act(self.norm1(self.pool(self.conv1(x))))
        return self.act(self.norm2(self.conv2(x)))


class CifarNet(nn.Module):
    def __init__(self, num_classes=10, widths=(64, 256, 256), stem=32, flip_tta=True,
                 mean=None, std=None, num_input_channels=3):
        super().__init__()
        self.flip_tta = flip_tta
        self.normalize = Normalize(mean, std, num_input_channels)
        self.stem = nn.Sequential(nn.Conv2d(num_input_channels, stem, 3, padding=1, bias=False),
                                  _bn(stem), nn.GELU())
        groups, c_in = [], stem
        for c_out in widths:
            groups.append(_ConvGroup(c_in, c_out))
            c_in = c_out
        self.groups = nn.Sequential(*groups)
        self.head = nn.Linear(c_in, num_classes, bias=False)

    def _logits(self, x):
        x = self.groups(self.stem(self.normalize(x)))
        return self.head(torch.amax(x, dim=(2, 3)))

    def forward(self, x):
        if self.flip_tta and not self.training:
            return 0.5 * (self._logits(x) + self._logits(x.flip(3)))
        return self._logits(x)
