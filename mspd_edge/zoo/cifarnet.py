"""A small fast-training CIFAR classifier (airbench-style conv groups), the label classifier.

A stem, then three groups of conv -> max-pool -> BN -> GELU -> conv -> BN -> GELU, then global
max-pool and a linear head. The stem is a 3x3 conv -> BN -> GELU, or with ``whiten=k`` airbench's
whitening layer: a k x k conv (no padding, with bias; its weights are set from the data's patch
statistics by the airbench recipe and kept frozen) -> GELU. ``logit_scale`` multiplies the logits
(airbench: 1/9). Test-time augmentation inside forward, so every backend gets it for free:
``flip_tta`` averages the logits of the image and its mirror; ``translate_tta`` adds the mirrored
pairs of the image shifted one pixel up-left and down-right (reflect padding), weighted 1/2,
1/4, 1/4 (airbench's TTA level 2).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from .common import Normalize


class _ConvGroup(nn.Module):
    def __init__(self, c_in, c_out, bn_eps):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
        self.pool = nn.MaxPool2d(2)
        self.norm1 = nn.BatchNorm2d(c_out, eps=bn_eps)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.norm2 = nn.BatchNorm2d(c_out, eps=bn_eps)
        self.act = nn.GELU()

    def forward(self, x):
        x = self.act(self.norm1(self.pool(self.conv1(x))))
        return self.act(self.norm2(self.conv2(x)))


def _stem(c_in, width, whiten, bn_eps):
    if whiten:
        return nn.Sequential(nn.Conv2d(c_in, width, whiten, padding=0, bias=True), nn.GELU())
    return nn.Sequential(nn.Conv2d(c_in, width, 3, padding=1, bias=False),
                         nn.BatchNorm2d(width, eps=bn_eps), nn.GELU())


class CifarNet(nn.Module):
    def __init__(self, num_classes=10, widths=(64, 256, 256), stem=32, flip_tta=True,
                 mean=None, std=None, num_input_channels=3, whiten=0, bn_eps=1e-5, logit_scale=1.0,
                 translate_tta=False):
        super().__init__()
        self.flip_tta, self.translate_tta, self.logit_scale = flip_tta, translate_tta, logit_scale
        self.normalize = Normalize(mean, std, num_input_channels)
        self.stem = _stem(num_input_channels, stem, whiten, bn_eps)
        groups, c_in = [], stem
        for c_out in widths:
            groups.append(_ConvGroup(c_in, c_out, bn_eps))
            c_in = c_out
        self.groups = nn.Sequential(*groups)
        self.head = nn.Linear(c_in, num_classes, bias=False)

    def _logits(self, x):
        x = self.groups(self.stem(self.normalize(x)))
        logits = self.head(torch.amax(x, dim=(2, 3)))
        return logits if self.logit_scale == 1.0 else logits * self.logit_scale

    def _mirrored(self, x):
        if self.flip_tta:
            return 0.5 * (self._logits(x) + self._logits(x.flip(3)))
        return self._logits(x)

    def forward(self, x):
        if self.training:
            return self._logits(x)
        if not self.translate_tta:
            return self._mirrored(x)
        h, w = x.shape[2:]
        padded = F.pad(x, (1, 1, 1, 1), mode="reflect")
        shifted = self._mirrored(padded[:, :, :h, :w]) + self._mirrored(padded[:, :, 2:, 2:])
        return 0.5 * self._mirrored(x) + 0.25 * shifted
