"""Platform-like steps, applied without a platform: what a site's pipeline does to an upload.

A *scenario* is one or more steps joined by ``+`` (``resize0.75+jpeg75``: downscale, then
re-encode); ``--simulate`` takes scenarios separated by commas. Steps (Pillow, 8-bit in and out):

* ``jpegQ``: JPEG re-encoding at quality Q (1-100, 4:2:0 chroma as Pillow's default); alpha dropped;
* ``webpQ``: lossy WebP at quality Q (0-100);
* ``resizeF``: resize by the factor F (0 < F <= 4) with Lanczos, as image sites commonly do;
* ``cropF``: keep the centre F (0 < F < 1) of each side (verify reports it as not comparable);
* ``blurS``: Gaussian blur of radius S pixels (0 < S <= 50; a heavy filter).
"""
import io
import re

import numpy as np
from PIL import Image, ImageFilter

_STEP = re.compile(r"^(jpeg|webp|resize|crop|blur)(\d+(?:\.\d+)?)$")
_RANGES = {"jpeg": (1, 100), "webp": (0, 100), "resize": (0, 4), "crop": (0, 1), "blur": (0, 50)}
_OPEN_LOW = ("resize", "crop", "blur")      # the lower bound itself is refused
_OPEN_HIGH = ("crop",)                      # the upper bound itself is refused


def parse_step(text):
    """``(kind, value)`` of one step such as ``jpeg75``; raises ValueError saying why not."""
    match = _STEP.match(text.strip().lower())
    if not match:
        raise ValueError(f"unknown step {text!r}: expected jpegQ, webpQ, resizeF, cropF or blurS "
                         "(e.g. jpeg75, webp80, resize0.5)")
    kind, value = match.group(1), float(match.group(2))
    low, high = _RANGES[kind]
    if value < low or value > high or (kind in _OPEN_LOW and value == low) or \
            (kind in _OPEN_HIGH and value == high) or (kind in ("jpeg", "webp") and value != int(value)):
        raise ValueError(f"step {text!r}: {kind} takes a value in {'(' if kind in _OPEN_LOW else '['}"
                         f"{low:g}, {high:g}{')' if kind in _OPEN_HIGH else ']'}"
                         + (" (a whole number)" if kind in ("jpeg", "webp") else ""))
    return kind, value


def parse_scenarios(text):
    """The scenario names of a ``--simulate`` value (``jpeg75,resize0.5+webp80``), validated."""
    names = [name.strip().lower() for name in text.split(",") if name.strip()]
    if not names:
        raise ValueError("no step given (e.g. jpeg75,resize0.5,webp80)")
    for name in names:
        for step in name.split("+"):
            parse_step(step)
    return tuple(dict.fromkeys(names))


def apply_scenario(pixels, name):
    """uint8 ``pixels`` (``[H, W]`` or ``[H, W, C]``) after the steps of scenario ``name``."""
    image = Image.fromarray(np.ascontiguousarray(pixels))
    for step in name.split("+"):
        image = _apply(image, *parse_step(step))
    return np.asarray(image)


def _apply(image, kind, value):
    if kind in ("jpeg", "webp"):
        if kind == "jpeg" and image.mode not in ("L", "RGB"):
            image = image.convert("L" if image.mode == "LA" else "RGB")
        buffer = io.BytesIO()
        image.save(buffer, format=kind.upper(), quality=int(value))
        return Image.open(io.BytesIO(buffer.getvalue())).convert(image.mode)
    width, height = image.size
    if kind == "resize":
        size = (max(1, round(width * value)), max(1, round(height * value)))
        return image.resize(size, Image.Resampling.LANCZOS)
    if kind == "crop":
        w, h = max(1, round(width * value)), max(1, round(height * value))
        left, top = (width - w) // 2, (height - h) // 2
        return image.crop((left, top, left + w, top + h))
    return image.filter(ImageFilter.GaussianBlur(value))
