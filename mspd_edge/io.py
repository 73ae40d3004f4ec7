"""Image files: find the inputs, decode them safely to 8-bit arrays, write the outputs atomically.

Decoding uses Pillow: EXIF orientation is applied, palette and bilevel images become RGB(A) or
gray, and anything that is not 8 bits per channel is refused with an :class:`ImageError`;
``max_pixels`` is the one size limit (Pillow's own is raised to it: :class:`_PillowLimit`;
OpenCV, with a limit of its own, decodes no input file).
The metadata an output keeps: the ICC profile, EXIF (without the orientation, which is applied,
and without the thumbnail of the unprotected image) and XMP. Outputs are lossless PNG or WebP
(encoder settings chosen by ``benchmarks/large_photo.py``: README "Large photos"), written
through a temporary file and ``os.replace``, with the permissions the umask gives a new file.
"""
import glob
import os
import re
import tempfile
import threading
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image, ImageOps, PngImagePlugin, UnidentifiedImageError

from . import defaults
from .util import write_atomic

FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "TIFF")
SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")   # looked for in folders
SUBFOLDER_SKIPPED = "a subfolder (use -r)"   # why a folder input's subfolder is skipped without -r
OUTPUT_FORMATS = ("png", "webp")
# Encoder settings, by measurement (benchmarks/large_photo.py, README "Large photos"): zlib
# level 1 is ~5x faster than Pillow's default 6 for ~13% more bytes; lossless WebP at the
# lowest effort is as fast and smaller than that PNG; ``exact`` keeps colour under alpha 0.
ENCODER_OPTIONS = {"png": {"compress_level": 1},
                   "webp": {"lossless": True, "quality": 0, "method": 0, "exact": True}}
WEBP_MAX_SIDE = 16383   # the WebP format's limit
_KEEP = ("L", "LA", "RGB", "RGBA")
_CONVERT = {"1": "L", "La": "LA", "PA": "RGBA", "RGBa": "RGBA", "RGBX": "RGB", "CMYK": "RGB",
            "YCbCr": "RGB"}
_CHANNELS = {"1": 1, "L": 1, "LA": 2, "La": 2, "P": 4, "PA": 4}   # decoded channels (P: at most 4)
_RECOLOURED = ("CMYK", "YCbCr")   # converted to RGB: their ICC profile no longer applies
_TIFF_EXIF_TAGS = {getattr(ExifTags.Base, name) for name in (   # TIFF: IFD0 also holds the layout
    "ImageDescription", "Make", "Model", "Software", "DateTime", "Artist", "HostComputer",
    "Copyright", "XResolution", "YResolution", "ResolutionUnit", "ExifOffset", "GPSInfo")}
_GLOB_CHARS = re.compile(r"[*?\[]")
_WIDE_RAWMODE = re.compile(r"^(RGBA?|RGBX|LA?|I);16[BLN]?$")   # 16 bits per channel on disk
_BAND_BYTES = 1 << 23   # decoded rows copied out of Pillow at a time


class ImageError(Exception):
    """A file that cannot be used as an input image; the message says why (one line)."""


@dataclass(frozen=True)
class Source:
    """An input file and its path relative to the folder it was found in (its name otherwise)."""

    path: Path
    relative: Path


@dataclass(frozen=True)
class Header:
    """What an input's header says: its size as stored (before any EXIF turn) and channels."""

    width: int
    height: int
    channels: int

    @property
    def nbytes(self):
        return self.width * self.height * self.channels


@dataclass(frozen=True)
class Decoded:
    """A decoded input: uint8 pixels ``[H, W]`` or ``[H, W, C]`` (C in 2, 3, 4) and its metadata."""

    pixels: np.ndarray
    icc_profile: bytes | None = None
    exif: bytes | None = None
    xmp: bytes | None = None


def discover(inputs, recursive=False, exclude=None, on_skip=None):
    """Expand files, folders and glob patterns into :class:`Source` items, plus the unmatched inputs.

    Files keep argument order, folder contents are sorted; a file reached twice is listed once.
    Folders yield files with a known image suffix (not hidden ones), subfolders only when
    ``recursive``; ``on_skip(path, why)`` hears of their other files (and subfolders). Folders and patterns
    never reach into ``exclude`` (the output folder).
    """
    sources, missing, seen = [], [], set()
    skip = None if exclude is None else Path(exclude).resolve()
    for item in map(str, inputs):
        found = list(_expand(item, recursive, skip, on_skip or (lambda path, why: None)))
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


def _expand(item, recursive, skip, on_skip):
    path = Path(item)
    if not path.exists() and is_pattern(item):
        for match in sorted(glob.glob(item, recursive=True)):
            if not _inside(match, skip):
                yield from _expand(match, recursive, skip, on_skip)
    elif path.is_dir():
        yield from _walk(path, recursive, skip, on_skip)
    elif path.exists():
        yield Source(path, Path(path.name))


def _inside(path, folder):
    resolved = Path(path).resolve()
    return folder is not None and (resolved == folder or folder in resolved.parents)


def _walk(root, recursive, skip, on_skip):
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not _inside(Path(folder, d), skip))
        if not recursive:
            for name in dirs:
                on_skip(Path(folder, name), SUBFOLDER_SKIPPED)
            dirs[:] = []
        for name in sorted(files):
            path = Path(folder, name)
            if name.startswith("."):
                continue
            if path.suffix.lower() in SUFFIXES:
                yield Source(path, path.relative_to(root))
            else:
                on_skip(path, f"not a supported image file ({path.suffix or 'no suffix'}; "
                              f"supported: {', '.join(FORMATS)})")


def read_header(path, max_pixels=defaults.MAX_PIXELS):
    """The :class:`Header` of ``path`` without decoding its pixels; raises :class:`ImageError`."""
    with _open(path, max_pixels) as img:
        return Header(*img.size, _CHANNELS.get(img.mode, len(img.getbands())))


def read_image(path, max_pixels=defaults.MAX_PIXELS):
    """Decode ``path`` completely into a :class:`Decoded`; raises :class:`ImageError`."""
    with _open(path, max_pixels) as img, _PILLOW_LIMIT.raised_to(max_pixels):
        return _failing_as_image_error(lambda: _decode(img))


class _PillowLimit:
    """Pillow's decompression-bomb limit, raised to ``max_pixels`` while a file is opened or decoded.

    Pillow refuses an image of more than twice its process-wide ``Image.MAX_IMAGE_PIXELS``
    (~179 M pixels by default) whatever ``max_pixels`` says. The opens and decodes under way in
    all threads share that value: the largest any of them needs (never below Pillow's own), put
    back when none is left. An open runs without it (None): :func:`_check_header` refuses a size
    over ``max_pixels`` right after; a decode keeps it for the sizes Pillow checks inside.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._under_way = {}   # max_pixels (None: no limit) -> opens and decodes using it
        self._saved = None     # Pillow's value before the first of them

    @contextmanager
    def raised_to(self, max_pixels):
        with self._lock:
            if not self._under_way:
                self._saved = Image.MAX_IMAGE_PIXELS
            self._under_way[max_pixels] = self._under_way.get(max_pixels, 0) + 1
            self._apply()
        try:
            yield
        finally:
            with self._lock:
                self._under_way[max_pixels] -= 1
                if not self._under_way[max_pixels]:
                    del self._under_way[max_pixels]
                self._apply()

    def _apply(self):
        limits = list(self._under_way)
        if not limits:
            Image.MAX_IMAGE_PIXELS = self._saved
        elif None in limits or self._saved is None:
            Image.MAX_IMAGE_PIXELS = None
        else:
            Image.MAX_IMAGE_PIXELS = max(self._saved, *limits)


_PILLOW_LIMIT = _PillowLimit()


def _open(path, max_pixels):
    path = Path(path)

    def opened():
        if path.stat().st_size == 0:
            raise ImageError("empty file")
        with _PILLOW_LIMIT.raised_to(None):
            img = Image.open(path, formats=FORMATS)
        try:
            _check_header(img, max_pixels)
        except BaseException:
            img.close()
            raise
        return img
    return _failing_as_image_error(opened)


def _failing_as_image_error(step):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)   # max_pixels rules
            return step()
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(f"not an image, or not one of {', '.join(FORMATS)}") from None
    except Image.DecompressionBombError:
        raise ImageError("too large to decode safely: a part of it is over Pillow's decompression-bomb "
                         "limit (--max-pixels raises it)") from None
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
        raise ImageError(f"too large: {width}x{height} pixels, more than the limit of {max_pixels} "
                         f"(--max-pixels {width * height} allows it)")
    if getattr(img, "n_frames", 1) > 1 and img.format != "MPO":   # MPO: the first is the photo
        raise ImageError("animations and multi-page images are not supported")
    if any(_WIDE_RAWMODE.match(_rawmode(tile)) for tile in img.tile):
        raise ImageError("unsupported depth: 16 bits per channel (only 8-bit images)")


def _rawmode(tile):
    args = tile.args if isinstance(tile.args, tuple) else (tile.args,)
    return args[0] if args and isinstance(args[0], str) else ""


def _decode(img):
    img.load()
    ImageOps.exif_transpose(img, in_place=True)
    icc_profile = None if img.mode in _RECOLOURED else img.info.get("icc_profile")
    exif, xmp = _exif_bytes(img), img.info.get("xmp")
    if img.mode == "P":
        img = img.convert("RGBA" if img.has_transparency_data else "RGB")
    elif img.mode in _CONVERT:
        img = img.convert(_CONVERT[img.mode])
    if img.mode not in _KEEP:
        raise ImageError(f"unsupported pixel format {img.mode} (only 8-bit gray or RGB, with or without alpha)")
    return Decoded(_pixels(img), icc_profile or None, exif, xmp.encode() if isinstance(xmp, str) else xmp)


def _exif_bytes(img):
    """The EXIF block to keep: no orientation (applied), no thumbnail; TIFF: no layout tags."""
    exif = img.getexif()
    for tag in list(exif):
        if tag == ExifTags.Base.Orientation or (img.format == "TIFF" and tag not in _TIFF_EXIF_TAGS):
            del exif[tag]
    return exif.tobytes() if len(exif) else None


def _pixels(img):
    """``img``'s pixels as a new uint8 array, copied a band of rows at a time (no whole-image bytes)."""
    width, height = img.size
    bands = len(img.getbands())
    out = np.empty((height, width, bands) if bands > 1 else (height, width), np.uint8)
    rows = max(1, _BAND_BYTES // max(1, width * bands))
    for top in range(0, height, rows):
        out[top:top + rows] = np.asarray(img.crop((0, top, width, min(top + rows, height))))
    return out


def output_name(relative, fmt):
    """The output path (relative to the output folder) of an input found at ``relative``."""
    return Path(relative).with_suffix(f".{fmt}")


def check_output_size(width, height, fmt):
    """Refuse an image the output format cannot hold; raises :class:`ImageError`."""
    if fmt == "webp" and max(width, height) > WEBP_MAX_SIDE:
        raise ImageError(f"{width}x{height} is too large for WebP ({WEBP_MAX_SIDE} pixels a side "
                         "at most): use --format png")


def write_image(path, pixels, fmt="png", icc_profile=None, exif=None, xmp=None):
    """Write uint8 ``pixels`` losslessly as ``fmt`` (png or webp) at ``path``, with the metadata."""
    write_atomic(path, lambda out: save_image(out, pixels, fmt, icc_profile, exif, xmp))


def save_image(out, pixels, fmt="png", icc_profile=None, exif=None, xmp=None):
    """Encode uint8 ``pixels`` as :func:`write_image` does, into the binary file object ``out``."""
    options = dict(ENCODER_OPTIONS[fmt])
    if fmt == "png" and xmp:
        options["pnginfo"] = PngImagePlugin.PngInfo()
        options["pnginfo"].add_itxt("XML:com.adobe.xmp", xmp.decode("utf-8", "replace"))
    elif xmp:
        options["xmp"] = xmp
    metadata = {key: value for key, value in (("icc_profile", icc_profile), ("exif", exif)) if value}
    Image.fromarray(pixels).save(out, format=fmt.upper(), **metadata, **options)


def check_writable(folder):
    """Create ``folder`` when missing and make sure a file can be created in it; raises OSError."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=folder, prefix=".mspd-edge-check.", suffix=".tmp")
    os.close(handle)
    os.unlink(temp)
