"""Bring any 8-bit image to a model's input and the protection back to the image (numpy, cv2,
Pillow).

Resize rule (until full-resolution protection lands): the whole image is resized to the
model's input size for the gradient computation, aspect ratio not kept and nothing cropped, so
that every pixel gets protection; the perturbation ``protected - model input`` is resized back
bilinearly (OpenCV's pixel-centre convention) to the full size, added to the original, and the
8-bit budget rule is enforced at full size. The filter depends on the model input
(``defaults.RESIZE_BY_INPUT_SIZE``): 224x224 (ImageNet) Pillow's antialiased bicubic filter, the
interpolation of RobustBench's preprocessing of the paper's ImageNet backbone
(``BicubicRes256Crop224``: torchvision's bicubic ``Resize`` of a PIL image, then a center crop
that we leave out); 32x32 (CIFAR-10) the exact area average of the pixels when the image is at
least the model's size both ways (a photo), else OpenCV (area when it has more pixels, bilinear
when fewer). Gray images are replicated to the model's channels and get the channel-mean
perturbation (gray stays gray); an alpha channel is carried through untouched.

Memory: nothing full-size is held in floating point. The area average sums the 8-bit pixels
directly, Pillow's bicubic filter works on the 8-bit image, and the full-size work runs in bands
of rows (:data:`BAND_VALUES` values each), so a photo costs its 8-bit input and output plus a
few bands, whatever its size.
"""
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from .defaults import RESIZE_BY_INPUT_SIZE

BAND_VALUES = 1 << 21   # float values per band of rows in the full-size work (8 MiB of float32)


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


def _area_axis(values, cells, axis):
    """The exact area average of ``values`` along ``axis`` in ``cells`` equal cells (float64).

    Cell k covers ``[k L / cells, (k + 1) L / cells)`` of the ``L >= cells`` entries: the whole
    entries inside it are summed (exactly, for 8-bit values; no full-size copy), the two it cuts
    are weighted.
    """
    length = values.shape[axis]
    first, part = np.divmod(np.arange(cells + 1) * length, cells)   # cell edges: first + part / cells
    entries = np.moveaxis(values, axis, 0)
    sums = np.stack([entries[a:b].sum(axis=0, dtype=np.float64) for a, b in zip(first[:-1], first[1:])])
    shape = (cells,) + (1,) * (values.ndim - 1)

    def cut(index, weight):
        return entries[np.minimum(index, length - 1)] * (weight / cells).reshape(shape)

    sums += cut(first[1:], part[1:]) - cut(first[:-1], part[:-1])
    return np.moveaxis(sums * (cells / length), 0, axis)


def area_average(color, size_hw):
    """The area average (float64 ``[h, w, C]``) of a uint8 ``[H, W, C]`` image at least ``size_hw``."""
    return _area_axis(_area_axis(color, size_hw[0], 0), size_hw[1], 1)


def _to_model_size(color, input_size):
    """float32 ``[h, w, C]`` in [0, 1]: uint8 ``color`` resized to the model's (h, w) with its
    filter (module docstring); bicubic resizes the 8-bit image, as torchvision does."""
    h, w = input_size[1:]
    height, width = color.shape[:2]
    if RESIZE_BY_INPUT_SIZE.get(h, "area") == "bicubic":
        pil = Image.fromarray(np.ascontiguousarray(color[:, :, 0] if color.shape[2] == 1 else color))
        return np.asarray(pil.resize((w, h), Image.Resampling.BICUBIC), np.float32).reshape(h, w, -1) / 255
    if height >= h and width >= w:
        return (area_average(color, (h, w)) / 255).astype(np.float32)
    x = color.astype(np.float32) / 255
    return _resize(x, (h, w), shrink=height * width > h * w)


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


def model_inputs(images, input_size):
    """float32 ``[n, C, H, W]`` model inputs of uint8 images (:func:`to_model_input` of each)."""
    return np.stack([to_model_input(image, input_size)[0] for image in images])


def budget_levels(eps):
    """The budget in 8-bit levels: ``round(255 * eps)``."""
    return int(round(255 * eps))


def check_budget(eps):
    """The budget in 8-bit levels of ``eps``; raises ValueError when it rounds to 0 levels."""
    levels = budget_levels(eps)
    if levels < 1:
        raise ValueError(f"eps {255 * eps:g}/255 rounds to 0 levels of the 8-bit outputs "
                         "(nothing could change); the smallest budget is 1/255")
    return levels


def budget_warning(eps, trained_eps, backbone):
    """One line when ``eps`` allows more 8-bit levels than ``trained_eps``, the budget the
    backbone named ``backbone`` was trained for (its default eps: the manifest's, else 8/255 at
    32x32 and 4/255 at 224x224); None otherwise."""
    levels, trained = budget_levels(eps), budget_levels(trained_eps)
    if levels <= trained:
        return None
    return (f"--eps {255 * eps:g} is above the {trained}/255 the backbone {backbone} was trained "
            f"for: each value may change by up to {levels}/255, which shows (large budgets "
            "destroy the image), for no robustness the backbone was trained to give")


def to_uint8_within_budget(protected, original, eps):
    """Round ``protected`` (float in [0,1]) to 8 bits, within ``round(255 eps)`` levels of ``original``.

    int16 arithmetic (any ``protected`` within [-128, 128] is exact; the cascade's is in [0, 1]).
    """
    levels = budget_levels(eps)
    rounded = np.rint(np.asarray(protected, np.float32) * np.float32(255)).astype(np.int16)
    base = original.astype(np.int16)
    np.minimum(rounded, base + levels, out=rounded)
    np.maximum(rounded, base - levels, out=rounded)
    return rounded.clip(0, 255).astype(np.uint8)


def _linear_taps(source, target):
    """OpenCV's INTER_LINEAR taps from ``source`` to ``target`` samples: lower, upper, weight."""
    position = (np.arange(target) + 0.5) * (source / target) - 0.5
    lower = np.floor(position).astype(np.int64)
    weight = (position - lower).astype(np.float32)
    weight[lower < 0] = 0
    weight[lower >= source - 1] = 0
    lower = lower.clip(0, source - 1)
    return lower, np.minimum(lower + 1, source - 1), weight


def _linear(values, taps, axis):
    lower, upper, weight = taps
    shape = [1] * values.ndim
    shape[axis] = len(weight)
    weight = weight.reshape(shape)
    return np.take(values, lower, axis) * (1 - weight) + np.take(values, upper, axis) * weight


def _bands(height, row_values):
    rows = max(1, BAND_VALUES // max(1, row_values))
    return [(top, min(top + rows, height)) for top in range(0, height, rows)]


def _delta_bands(delta, size_hw):
    """``(top, bottom, delta rows)``: the model-size float32 ``delta`` resized bilinearly to
    ``size_hw``, a band of rows at a time (the horizontal pass once, the vertical per band)."""
    height, width = size_hw
    if delta.shape[:2] == (height, width):
        for top, bottom in _bands(height, delta[0].size):
            yield top, bottom, delta[top:bottom]
        return
    wide = _linear(delta, _linear_taps(delta.shape[1], width), axis=1)
    lower, upper, weight = _linear_taps(delta.shape[0], height)
    for top, bottom in _bands(height, wide[0].size):
        rows = slice(top, bottom)
        yield top, bottom, _linear(wide, (lower[rows], upper[rows], weight[rows]), axis=0)


def from_model_output(protected_chw, layout, eps):
    """The protected 8-bit image, same size/channels as the original, from the model-size result."""
    protected = np.asarray(protected_chw, np.float32).transpose(1, 2, 0)
    color = layout.color
    height, width, channels = color.shape
    out = np.empty((height, width, channels + (layout.alpha is not None)), np.uint8)
    if layout.alpha is not None:
        out[:, :, channels] = layout.alpha
    if layout.resized is None and not layout.gray:
        out[:, :, :channels] = to_uint8_within_budget(protected, color, eps)
        return out.reshape(layout.shape)
    model_input = color.astype(np.float32) / 255 if layout.resized is None \
        else layout.resized.transpose(1, 2, 0)
    for top, bottom, delta in _delta_bands(protected - model_input, (height, width)):
        if layout.gray:
            delta = delta.mean(axis=2, keepdims=True)
        base = color[top:bottom]
        out[top:bottom, :, :channels] = to_uint8_within_budget(base.astype(np.float32) / 255 + delta, base, eps)
    return out.reshape(layout.shape)
