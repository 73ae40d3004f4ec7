"""DeepMind-style pre-activation ResNet and WideResNet (RobustBench ``dm_wide_resnet``).

Checked against RobustBench ``robustbench/model_zoo/architectures/dm_wide_resnet.py`` (itself from
deepmind-research ``adversarial_robustness/pytorch/model_zoo.py``). State-dict keys equal those
of RobustBench models such as ``Gowal2021Improving_R18_ddpm_100m`` (``DMPreActResNet(depth=18,
activation_fn=Swish)``) and ``Bartoldson2024Adversarial_WRN-94-16`` (``DMWideResNet(depth=94,
width=16, activation_fn=nn.SiLU)``), except the ``mean``/``std`` buffers, which RobustBench keeps
in the state dict and we keep in a non-persistent :class:`Normalize` (the loader reads them from a
checkpoint when present). TF-'SAME' padding: strided 3x3 convolutions pad ``(0, 1, 0, 1)`` by hand;
stride-1 ones are given ``padding=1`` (the same symmetric padding, done inside the convolution:
bit-identical gradients here, 8-10% faster than a separate pad and its backward); the
PreActResNet shortcut is a 3x3 convolution, the WideResNet one a 1x1 convolution.
Differences that do not change the function of a trained model: BatchNorm momentum 0.01 (the
DeepMind decay 0.99; RobustBench leaves PyTorch's 0.1), ``nn.SiLU`` for RobustBench's custom
``Swish`` (same function), global average pooling for ``avg_pool2d(8)`` / ``avg_pool2d(4)``
(the same at 32x32).
"""
import torch.nn as nn
import torch.nn.functional as F

from .common import Normalize

_ACTIVATIONS = {"relu": nn.ReLU, "swish": nn.SiLU}


def _same_conv(in_planes, out_planes, stride):
    """A 3x3 convolution with TF-'SAME' padding, as the DeepMind checkpoints were trained with:
    its own ``padding=1`` at stride 1, none at stride 2 (:func:`_same_pad` pads the input)."""
    if stride not in (1, 2):
        raise ValueError(f"unsupported stride {stride}")
    return nn.Conv2d(in_planes, out_planes, 3, stride=stride, padding=2 - stride, bias=False)


def _same_pad(x, stride):
    """The input padding of a :func:`_same_conv`: ``(0, 1, 0, 1)`` at stride 2, none at 1."""
    return F.pad(x, (0, 1, 0, 1)) if stride == 2 else x


class _PreActBlock(nn.Module):
    def __init__(self, in_planes, out_planes, stride, activation):
        super().__init__()
        self._stride = stride
        self.batchnorm_0 = nn.BatchNorm2d(in_planes, momentum=0.01)
        self.relu_0 = activation()
        self.conv_2d_1 = _same_conv(in_planes, out_planes, stride)
        self.batchnorm_1 = nn.BatchNorm2d(out_planes, momentum=0.01)
        self.relu_1 = activation()
        self.conv_2d_2 = nn.Conv2d(out_planes, out_planes, 3, stride=1, padding=1, bias=False)
        self.has_shortcut = stride != 1 or in_planes != out_planes
        if self.has_shortcut:
            self.shortcut = _same_conv(in_planes, out_planes, stride)

    def forward(self, x):
        out = self.relu_0(self.batchnorm_0(x))
        shortcut = self.shortcut(_same_pad(x, self._stride)) if self.has_shortcut else x
        out = self.conv_2d_1(_same_pad(out, self._stride))
        out = self.conv_2d_2(self.relu_1(self.batchnorm_1(out)))
        return out + shortcut


class DMPreActResNet(nn.Module):
    """Pre-activation ResNet-18/34; ``base_width`` 64 is the published size."""

    def __init__(self, num_classes=10, depth=18, activation="swish", base_width=64,
                 mean=None, std=None, num_input_channels=3):
        super().__init__()
        act = _ACTIVATIONS[activation]
        blocks = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}[depth]
        widths = [base_width * m for m in (1, 2, 4, 8)]
        self.normalize = Normalize(mean, std, num_input_channels)
        self.conv_2d = nn.Conv2d(num_input_channels, widths[0], 3, stride=1, padding=1, bias=False)
        in_planes = widths[0]
        for i, (n, planes) in enumerate(zip(blocks, widths)):
            stride = 1 if i == 0 else 2
            layers = [_PreActBlock(in_planes if j == 0 else planes, planes, stride if j == 0 else 1, act)
                      for j in range(n)]
            setattr(self, f"layer_{i}", nn.Sequential(*layers))
            in_planes = planes
        self.batchnorm = nn.BatchNorm2d(widths[3], momentum=0.01)
        self.relu = act()
        self.logits = nn.Linear(widths[3], num_classes)

    def forward(self, x):
        out = self.conv_2d(self.normalize(x))
        out = self.layer_3(self.layer_2(self.layer_1(self.layer_0(out))))
        out = self.relu(self.batchnorm(out))
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.logits(out)


class _WideBlock(nn.Module):
    def __init__(self, in_planes, out_planes, stride, activation):
        super().__init__()
        self._stride = stride
        self.batchnorm_0 = nn.BatchNorm2d(in_planes, momentum=0.01)
        self.relu_0 = activation()
        self.conv_0 = _same_conv(in_planes, out_planes, stride)
        self.batchnorm_1 = nn.BatchNorm2d(out_planes, momentum=0.01)
        self.relu_1 = activation()
        self.conv_1 = nn.Conv2d(out_planes, out_planes, 3, stride=1, padding=1, bias=False)
        self.has_shortcut = in_planes != out_planes
        if self.has_shortcut:
            self.shortcut = nn.Conv2d(in_planes, out_planes, 1, stride=stride, padding=0, bias=False)

    def forward(self, x):
        act = self.relu_0(self.batchnorm_0(x))
        # As in DeepMind's code: the projection shortcut sees the activated input, identity the raw one.
        shortcut = self.shortcut(act) if self.has_shortcut else x
        out = self.conv_0(_same_pad(act, self._stride))
        out = self.conv_1(self.relu_1(self.batchnorm_1(out)))
        return out + shortcut


class _WideGroup(nn.Module):
    def __init__(self, num_blocks, in_planes, out_planes, stride, activation):
        super().__init__()
        self.block = nn.Sequential(*[
            _WideBlock(in_planes if i == 0 else out_planes, out_planes, stride if i == 0 else 1,
                       activation)
            for i in range(num_blocks)])

    def forward(self, x):
        return self.block(x)


class DMWideResNet(nn.Module):
    """WideResNet-``depth``-``width`` (``depth = 6n + 4``); e.g. 94/16 for Bartoldson2024, 10/1 tiny."""

    def __init__(self, num_classes=10, depth=28, width=10, activation="relu",
                 mean=None, std=None, num_input_channels=3):
        super().__init__()
        if (depth - 4) % 6:
            raise ValueError(f"depth must be 6n + 4, got {depth}")
        act = _ACTIVATIONS[activation]
        num_blocks = (depth - 4) // 6
        channels = [16, 16 * width, 32 * width, 64 * width]
        self.normalize = Normalize(mean, std, num_input_channels)
        self.init_conv = nn.Conv2d(num_input_channels, channels[0], 3, stride=1, padding=1, bias=False)
        self.layer = nn.Sequential(*[
            _WideGroup(num_blocks, channels[i], channels[i + 1], 1 if i == 0 else 2, act)
            for i in range(3)])
        self.batchnorm = nn.BatchNorm2d(channels[3], momentum=0.01)
        self.relu = act()
        self.logits = nn.Linear(channels[3], num_classes)

    def forward(self, x):
        out = self.layer(self.init_conv(self.normalize(x)))
        out = self.relu(self.batchnorm(out))
        return self.logits(F.adaptive_avg_pool2d(out, 1).flatten(1))
