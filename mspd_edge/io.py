"""Image files: find the inputs, decode them safely to 8-bit arrays, write PNGs atomically.

Decoding uses Pillow: EXIF orientation is applied, palette and bilevel images become RGB(A) or
gray, and anything that is not 8 bits per channel is refused with an :class:`ImageError`.
"""
import glob
import io
import os
import re
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from . import defaults

FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "TIFF")
SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")   # looked for in folders
OUTPUT_SUFFIX = ".png"
_KEEP = ("L", "LA", "RGB", "RGBA")
_CONVERT = {"1": "L", "La": "LA", "PA": "RGBA", "RGBa": "RGBA", "RGBX": "RGB", "CMYK": "RGB",
            "YCbCr": "RGB"}
_RECOLOURED = ("CMYK", "YCbCr")   # converted to RGB: their ICC profile no longer applies
_GLOB_CHARS = re.compile(r"[*?\[]")
_WIDE_RAWMODE = re.compile(r"^(RGBA?|RGBX|LA?|I);16[BLN]?$")   # 16 bits per channel on disk


class ImageError(Exception):
    """A file that cannot be used as an input image; the message says why (one line)."""


@dataclass(frozen=True)
class Source:
    """An input file and its output path relative to the output folder."""

    path: Path
    relative: Path


@dataclass(frozen=True)
class Decoded:
    """A decoded input: uint8 pixels ``[H, W]`` or ``[H, W, C]`` (C in 2, 3, 4) and its ICC profile."""

    pixels: np.ndarray
    icc_profile: bytes | None


def discover(inputs, recursive=False, exclude=None):
    """Expand files, folders and glob patterns into :class:`Source` items, plus the unmatched inputs.

    Files keep argument order, folder contents are sorted; a file reached twice is listed once.
    Folders yield files with a known image suffix (not hidden ones), subfolders only when
    ``recursive``; their outputs keep the sub-path below the folder. Folders and patterns
    never reach into ``exclude`` (the output folder).
    """
    sources, missing, seen = [], [], set()
    skip = None if exclude is None else Path(exclude).resolve()
    for item in map(str, inputs):
        found = list(_expand(item, recursive, skip))
        if not found:
            missing.append(item)
        for source in found:
            key = source.path.resolve()
            if key not in seen:
                seen.add(key)
                sources.append(source)
    return sources, missing


def is_pattern(item):
    """Whether ``item`` contains glob characters (``*``, ``?``, ``[``)."""
    return _GLOB_CHARS.search(str(item)) is not None


def _expand(item, recursive, skip):
    path = Path(item)
    if not path.exists() and is_pattern(item):
        for match in sorted(glob.glob(item, recursive=True)):
            if not _inside(match, skip):
                yield from _expand(match, recursive, skip)
    elif path.is_dir():
        yield from _walk(path, recursive, skip)
    elif path.exists():
        yield Source(path, Path(path.stem + OUTPUT_SUFFIX))


def _inside(path, folder):
    resolved = Path(path).resolve()
    return folder is not None and (resolved == folder or folder in resolved.parents)


def _walk(root, recursive, skip):
    for folder, dirs, files in os.walk(root):
        dirs[:] = [] if not recursive else sorted(
            d for d in dirs if not d.startswith(".") and not _inside(Path(folder, d), skip))
        for name in sorted(files):
            path = Path(folder, name)
            if not name.startswith(".") and path.suffix.lower() in SUFFIXES:
                yield Source(path, path.relative_to(root).with_suffix(OUTPUT_SUFFIX))


def read_image(path, max_pixels=defaults.MAX_PIXELS):
    """Decode ``path`` completely into a :class:`Decoded`; raises :class:`ImageError`."""
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise ImageError("empty file")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)   # max_pixels rules
            with Image.open(path, formats=FORMATS) as img:
                _check_header(img, max_pixels)
                img.load()
                return _to_array(ImageOps.exif_transpose(img))
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(f"not an image, or not one of {', '.join(FORMATS)}") from None
    except Image.DecompressionBombError:
        raise ImageError("too large to decode safely (Pillow's decompression-bomb limit)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(_failure(exc)) from None


def _failure(exc):
    if isinstance(exc, OSError) and exc.errno is not None:   # the file system, not the decoder
        return f"cannot read: {exc.strerror.lower()}"
    text = str(exc) or type(exc).__name__
    return "truncated image" if "truncated" in text.lower() else f"cannot decode: {text}"


def _check_header(img, max_pixels):
    width, height = img.size
    if width * height > max_pixels:
        raise ImageError(f"too large: {width}x{height} pixels, more than the limit of {max_pixels}")
    if getattr(img, "n_frames", 1) > 1 and img.format != "MPO":   # MPO: the first is the photo
        raise ImageError("animations and multi-page images are not supported")
    if any(_WIDE_RAWMODE.match(_rawmode(tile)) for tile in img.tile):
        raise ImageError("unsupported depth: 16 bits per channel (only 8-bit images)")


def _rawmode(tile):
    args = tile.args if isinstance(tile.args, tuple) else (tile.args,)
    return args[0] if args and isinstance(args[0], str) else ""


def _to_array(img):
    icc_profile = None if img.mode in _RECOLOURED else img.info.get("icc_profile")
    if img.mode == "P":
        img = img.convert("RGBA" if img.has_transparency_data else "RGB")
    elif img.mode in _CONVERT:
        img = img.convert(_CONVERT[img.mode])
    if img.mode not in _KEEP:
        raise ImageError(f"unsupported pixel format {img.mode} (only 8-bit gray or RGB, with or without alpha)")
    return Decoded(np.asarray(img, dtype=np.uint8).copy(), icc_profile)


def write_png(path, pixels, icc_profile=None):
    """Write uint8 ``pixels`` as a PNG file at ``path``, atomically."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", icc_profile=icc_profile)
    write_atomic(path, buffer.getvalue())


def write_atomic(path, data):
    """Write ``data`` (bytes) to ``path`` via a temporary file in the same folder and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
