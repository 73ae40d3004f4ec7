"""Bring any 8-bit image to a model's input and the protection back to the image (numpy, cv2,
Pillow).

Resize rule (until full-resolution protection lands): the whole image is resized to the
model's input size for the gradient computation, aspect ratio not kept and nothing cropped, so
that every pixel gets protection; the perturbation ``protected - resized`` is resized back
bilinearly to the full size, added to the original, and the 8-bit budget rule is enforced at
full size. The filter depends on the model input (``defaults.RESIZE_BY_INPUT_SIZE``): 32x32
(CIFAR-10) area interpolation when shrinking, bilinear when enlarging; 224x224 (ImageNet)
Pillow's antialiased bicubic filter, the interpolation of RobustBench's preprocessing of the
paper's ImageNet backbone (``BicubicRes256Crop224``: torchvision's bicubic ``Resize`` of a PIL
image, then a center crop that we leave out). Gray images are replicated to the model's
channels and get the channel-mean perturbation (gray stays gray); an alpha channel is carried
through untouched.
"""
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from .defaults import RESIZE_BY_INPUT_SIZE


@dataclass
class Layout:
    """How an image was adapted to the model: its original pixels and what to undo."""

    color: np.ndarray            # uint8 [H, W, C] without alpha (C = 1 for gray)
    alpha: np.ndarray | None     # uint8 [H, W] or None
    gray: bool
    shape: tuple                 # the original array shape, restored on output
    resized: np.ndarray | None   # float32 [C, h, w] model input when a resize happened, else None


def split(image):
    """``(color [H,W,C], alpha or None, gray)`` of a uint8 image of 2 or 3 dimensions."""
    if image.dtype != np.uint8:
        raise ValueError(f"expected 8-bit pixels, got {image.dtype}")
    if image.ndim == 2:
        image = image[:, :, None]
    channels = image.shape[2]
    if channels not in (1, 2, 3, 4):
        raise ValueError(f"unsupported channel count {channels}")
    has_alpha = channels in (2, 4)
    color = image[:, :, :channels - 1] if has_alpha else image
    return color, image[:, :, -1] if has_alpha else None, color.shape[2] == 1


def _resize(array_hwc, size_hw, shrink):
    h, w = size_hw
    interp = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    out = cv2.resize(array_hwc, (w, h), interpolation=interp)
    return out if out.ndim == 3 else out[:, :, None]


def _to_model_size(color, input_size):
    """float32 ``[h, w, C]`` in [0, 1]: uint8 ``color`` resized to the model's (h, w) with its
    filter (module docstring); bicubic resizes the 8-bit image, as torchvision does."""
    h, w = input_size[1:]
    if RESIZE_BY_INPUT_SIZE.get(h, "area") == "bicubic":
        pil = Image.fromarray(np.ascontiguousarray(color[:, :, 0] if color.shape[2] == 1 else color))
        return np.asarray(pil.resize((w, h), Image.Resampling.BICUBIC), np.float32).reshape(h, w, -1) / 255
    x = color.astype(np.float32) / 255
    return _resize(x, (h, w), shrink=x.shape[0] * x.shape[1] > h * w)


def to_model_input(image, input_size):
    """float32 ``[C, h, w]`` in [0, 1] for a model of ``input_size`` (C, h, w), plus its Layout."""
    color, alpha, gray = split(image)
    channels, h, w = input_size
    if color.shape[2] != channels and not gray:
        raise ValueError(f"{color.shape[2]}-channel image for a {channels}-channel model")
    resized = color.shape[:2] != (h, w)
    x = _to_model_size(color, input_size) if resized else color.astype(np.float32) / 255
    if x.shape[2] != channels:
        x = np.repeat(x, channels, axis=2)
    chw = np.ascontiguousarray(x.transpose(2, 0, 1))
    return chw, Layout(color, alpha, gray, image.shape, chw if resized else None)


def budget_levels(eps):
    """The budget in 8-bit levels: ``round(255 * eps)``."""
    return int(round(255 * eps))


def to_uint8_within_budget(protected, original, eps):
    """Round ``protected`` (float in [0,1]) to 8 bits, within ``round(255 eps)`` levels of ``original``."""
    levels = budget_levels(eps)
    rounded = np.rint(np.asarray(protected, np.float32) * np.float32(255)).astype(np.int32)
    base = original.astype(np.int32)
    return np.clip(rounded, base - levels, base + levels).clip(0, 255).astype(np.uint8)


def _full_size(protected_hwc, layout):
    """The protected float image at the original size (the resize rule in the module docstring)."""
    if layout.resized is None and not layout.gray:
        return protected_hwc
    base = layout.color.astype(np.float32) / 255
    model_input = base if layout.resized is None else layout.resized.transpose(1, 2, 0)
    delta = protected_hwc - model_input
    if layout.resized is not None:
        delta = _resize(delta, base.shape[:2], shrink=False)
    if layout.gray:
        delta = delta.mean(axis=2, keepdims=True)
    return base + delta


def from_model_output(protected_chw, layout, eps):
    """The protected 8-bit image, same size/channels as the original, from the model-size result."""
    protected = np.asarray(protected_chw, np.float32).transpose(1, 2, 0)
    out = to_uint8_within_budget(_full_size(protected, layout), layout.color, eps)
    if layout.alpha is not None:
        out = np.concatenate([out, layout.alpha[:, :, None]], axis=2)
    return out.reshape(layout.shape)
