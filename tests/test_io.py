"""Finding inputs, decoding them safely, writing PNG and WebP files atomically with their metadata."""
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import ExifTags, Image, ImageCms

from mspd_edge import io
from mspd_edge.io import (ImageError, check_output_size, check_writable, discover, read_header,
                          read_image, write_image)
from mspd_edge.util import current_umask, write_atomic

ROTATE_90_CW = 6   # EXIF orientation: the stored image is shown turned 90 degrees clockwise


def _rgb(h=12, w=16, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _save(path, array, **kwargs):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, **kwargs)
    return path


def test_discover_files_folders_globs(tmp_path):
    a = _save(tmp_path / "in" / "a.jpg", _rgb())
    b = _save(tmp_path / "in" / "sub" / "b.PNG", _rgb())
    _save(tmp_path / "in" / ".hidden.png", _rgb())
    (tmp_path / "in" / "notes.txt").write_text("x")
    out = tmp_path / "in" / "out"
    _save(out / "old.png", _rgb())

    skipped = []
    sources, missing = discover([tmp_path / "in"], exclude=out, on_skip=lambda *item: skipped.append(item))
    assert [(s.path, s.relative) for s in sources] == [(a, Path("a.jpg"))] and missing == []
    assert skipped == [(tmp_path / "in" / "sub", "a subfolder (use -r)"),   # not the output folder
                       (tmp_path / "in" / "notes.txt",
                        "not a supported image file (.txt; supported: PNG, JPEG, WEBP, BMP, TIFF)")]

    sources, _ = discover([tmp_path / "in"], recursive=True, exclude=out)
    assert [s.relative for s in sources] == [Path("a.jpg"), Path("sub/b.PNG")]

    sources, missing = discover([str(tmp_path / "in" / "**" / "*.PNG"), a, a, "nope.png",
                                 str(tmp_path / "*.webp")])
    assert [(s.path, s.relative) for s in sources] == [(b, Path("b.PNG")), (a, Path("a.jpg"))]
    assert missing == ["nope.png", str(tmp_path / "*.webp")]


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tif", ".webp"])
def test_lossless_formats_round_trip(tmp_path, suffix):
    image = _rgb()
    kwargs = {"lossless": True} if suffix == ".webp" else {}
    decoded = read_image(_save(tmp_path / f"x{suffix}", image, **kwargs))
    assert decoded.pixels.dtype == np.uint8 and np.array_equal(decoded.pixels, image)


def test_jpeg_and_cifar10_images_decode(tmp_path, cifar10):
    image = cifar10[0][0]
    decoded = read_image(_save(tmp_path / "x.jpg", image, quality=95)).pixels
    assert decoded.shape == (32, 32, 3) and np.abs(decoded.astype(int) - image).mean() < 8


def test_gray_alpha_and_palette_modes(tmp_path):
    gray = _rgb()[..., 0]
    assert read_image(_save(tmp_path / "g.png", gray)).pixels.shape == (12, 16)
    assert read_image(_save(tmp_path / "la.png", np.dstack([gray, gray]))).pixels.shape == (12, 16, 2)
    rgba = np.dstack([_rgb(), gray])
    assert np.array_equal(read_image(_save(tmp_path / "rgba.png", rgba)).pixels, rgba)

    palette = Image.fromarray(_rgb()).quantize(16)
    palette.save(tmp_path / "p.png")
    assert np.array_equal(read_image(tmp_path / "p.png").pixels, np.asarray(palette.convert("RGB")))
    palette.save(tmp_path / "pt.png", transparency=0)
    assert read_image(tmp_path / "pt.png").pixels.shape == (12, 16, 4)
    Image.fromarray(gray > 128).save(tmp_path / "bw.png")
    assert set(np.unique(read_image(tmp_path / "bw.png").pixels)) <= {0, 255}


def test_exif_orientation_is_applied_and_icc_profile_kept(tmp_path):
    image = _rgb(10, 20)
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = ROTATE_90_CW
    path = _save(tmp_path / "o.jpg", image, exif=exif, quality=95, icc_profile=b"profile")
    decoded = read_image(path)
    assert decoded.pixels.shape == (20, 10, 3) and decoded.icc_profile == b"profile"
    expected = np.rot90(np.asarray(Image.open(path)), k=-1)
    assert np.array_equal(decoded.pixels, expected)


def _bad_files(tmp_path):
    good = _save(tmp_path / "good.png", _rgb())
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good.read_bytes()[:-60])
    cut_jpeg = _save(tmp_path / "cut.jpg", _rgb(64, 64))
    cut_jpeg.write_bytes(cut_jpeg.read_bytes()[:400])
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.png").write_text("not an image\n")
    cv2.imwrite(str(tmp_path / "gray16.png"), np.full((8, 8), 40000, np.uint16))
    cv2.imwrite(str(tmp_path / "rgb16.png"), np.full((8, 8, 3), 40000, np.uint16))
    Image.fromarray(_rgb()).save(tmp_path / "anim.webp", save_all=True,
                                 append_images=[Image.fromarray(_rgb(seed=1))])
    Image.fromarray(_rgb()).save(tmp_path / "x.gif")
    return {
        "truncated.png": "truncated image", "cut.jpg": "truncated image", "empty.png": "empty file",
        "text.png": "not an image", "gray16.png": "16 bits per channel",
        "rgb16.png": "16 bits per channel", "anim.webp": "animations",
        "x.gif": "not an image, or not one of PNG, JPEG, WEBP, BMP, TIFF",
        "huge.png": "too large: 10000x6000 pixels",
        "bomb.png": "too large: 30000x30000 pixels, more than the limit of 50000000 "
                    "(--max-pixels 900000000 allows it)",
    }


def test_bad_files_raise_one_line_image_errors(tmp_path, png_header_only):
    expected = _bad_files(tmp_path)
    png_header_only(tmp_path / "huge.png", 10000, 6000)
    png_header_only(tmp_path / "bomb.png", 30000, 30000)
    for name, reason in expected.items():
        with pytest.raises(ImageError) as info:
            read_image(tmp_path / name)
        assert reason in str(info.value) and "\n" not in str(info.value), name
        if reason not in ("truncated image",):   # all but a cut file's are found in the header
            with pytest.raises(ImageError, match=reason.split(":")[0]):
                read_header(tmp_path / name)


def test_max_pixels_limit(tmp_path):
    path = _save(tmp_path / "a.png", _rgb(12, 16))
    assert read_image(path, max_pixels=12 * 16).pixels.shape == (12, 16, 3)
    with pytest.raises(ImageError, match=r"too large: 16x12 pixels, more than the limit of 100 "
                                         r"\(--max-pixels 192 allows it\)"):
        read_image(path, max_pixels=100)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_max_pixels_governs_pillows_bomb_limit(tmp_path, monkeypatch, suffix):
    """Pillow refuses over twice its own limit (~179 M pixels); ``max_pixels`` overrides it, then
    puts it back. Pillow's limit is lowered here so that a small real image crosses it."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    path = _save(tmp_path / f"a{suffix}", _rgb(60, 50))   # 3000 pixels
    with pytest.raises(Image.DecompressionBombError):
        Image.open(path).load()
    assert np.array_equal(read_image(path, max_pixels=3000).pixels, _rgb(60, 50))
    assert read_header(path, max_pixels=3000).nbytes == 9000
    assert Image.MAX_IMAGE_PIXELS == 1000
    with pytest.raises(ImageError, match=r"more than the limit of 2999 \(--max-pixels 3000 allows it\)"):
        read_image(path, max_pixels=2999)
    assert Image.MAX_IMAGE_PIXELS == 1000


def test_pillows_limit_shared_by_threads(tmp_path, monkeypatch):
    """Decodes in threads with different limits each get theirs; Pillow's comes back after."""
    from concurrent.futures import ThreadPoolExecutor

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    paths = [_save(tmp_path / f"{i}.tif", _rgb(40 + 10 * i, 50, seed=i)) for i in range(4)]
    limits = [50 * (40 + 10 * i) for i in range(4)] * 8
    with ThreadPoolExecutor(4) as pool:
        shapes = list(pool.map(lambda item: read_image(paths[item[0] % 4], item[1]).pixels.shape,
                               enumerate(limits)))
    assert shapes == [(40 + 10 * (i % 4), 50, 3) for i in range(len(limits))]
    assert Image.MAX_IMAGE_PIXELS == 1000


@pytest.mark.parametrize("shape", [(9, 7), (9, 7, 2), (9, 7, 3), (9, 7, 4)])
@pytest.mark.parametrize("fmt", ["png", "webp"])
def test_write_image_round_trips_losslessly_and_leaves_no_temporary_file(tmp_path, shape, fmt):
    pixels = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    if len(shape) == 3 and shape[2] in (2, 4):
        pixels[0, :, -1] = 0   # fully transparent pixels keep their colour too
    path = tmp_path / "deep" / f"x.{fmt}"
    profile = _srgb_profile()
    write_image(path, pixels, fmt, icc_profile=profile)
    decoded = read_image(path)
    expected = pixels
    if fmt == "webp" and (pixels.ndim == 2 or pixels.shape[2] == 2):   # WebP has no gray mode: RGB(A)
        gray = pixels if pixels.ndim == 2 else pixels[..., 0]
        expected = np.dstack([gray] * 3 + ([] if pixels.ndim == 2 else [pixels[..., 1]]))
    assert np.array_equal(decoded.pixels, expected)
    assert decoded.icc_profile == profile
    assert [p.name for p in path.parent.iterdir()] == [f"x.{fmt}"]


def test_failed_write_keeps_the_old_file_and_no_temporary(tmp_path):
    path = _save(tmp_path / "x.png", _rgb())
    before = path.read_bytes()
    with pytest.raises(TypeError):
        write_image(path, np.zeros((4, 4, 3), np.complex64))
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["x.png"]


def _srgb_profile():
    """An sRGB ICC profile; its header holds the time it was made, to the second."""
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _camera_exif(orientation):
    exif = Image.Exif()
    exif[ExifTags.Base.Make], exif[ExifTags.Base.Model] = "Canon", "EOS R5"
    exif[ExifTags.Base.Copyright], exif[ExifTags.Base.Orientation] = "(c) A. Photographer", orientation
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.ExposureTime] = 0.004
    return exif


@pytest.mark.parametrize("fmt", ["png", "webp"])
def test_metadata_survives_but_the_orientation_is_applied(tmp_path, fmt):
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><dc:rights>A. Photographer</dc:rights></x:xmpmeta>'
    profile = _srgb_profile()
    path = _save(tmp_path / "in.jpg", _rgb(10, 20), exif=_camera_exif(ROTATE_90_CW), quality=95,
                 icc_profile=profile, xmp=xmp)
    decoded = read_image(path)
    assert decoded.pixels.shape == (20, 10, 3) and decoded.xmp == xmp
    write_image(tmp_path / f"out.{fmt}", decoded.pixels, fmt, decoded.icc_profile, decoded.exif, decoded.xmp)
    with Image.open(tmp_path / f"out.{fmt}") as out:
        exif = out.getexif()
        assert out.size == (10, 20) and out.info["icc_profile"] == profile
        assert ExifTags.Base.Orientation not in exif and exif[ExifTags.Base.Model] == "EOS R5"
        assert exif[ExifTags.Base.Copyright] == "(c) A. Photographer" and exif[ExifTags.Base.Make] == "Canon"
        assert exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.ExposureTime] == 0.004
        xmp_out = out.info["xmp"]
        assert b"A. Photographer" in (xmp_out.encode() if isinstance(xmp_out, str) else xmp_out)
    assert read_image(tmp_path / f"out.{fmt}").pixels.shape == (20, 10, 3)   # not turned twice


def test_tiff_keeps_its_descriptive_tags_only(tmp_path):
    exif = _camera_exif(1)
    path = _save(tmp_path / "in.tif", _rgb(), exif=exif)
    kept = Image.Exif()
    kept.load(read_image(path).exif)
    assert kept[ExifTags.Base.Model] == "EOS R5" and ExifTags.Base.StripOffsets not in kept
    assert ExifTags.Base.ImageWidth not in kept and ExifTags.Base.Orientation not in kept


def test_header_and_decoding_in_bands(tmp_path, monkeypatch):
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = ROTATE_90_CW
    path = _save(tmp_path / "o.jpg", _rgb(30, 50), exif=exif)
    header = read_header(path)
    assert (header.width, header.height, header.channels, header.nbytes) == (50, 30, 3, 4500)
    Image.fromarray(_rgb()).quantize(4).save(tmp_path / "p.png")
    assert read_header(tmp_path / "p.png").channels == 4   # a palette decodes to RGB(A): at most 4
    monkeypatch.setattr(io, "_BAND_BYTES", 7 * 30 * 3)   # 7 rows per band: a last partial band
    banded = read_image(path).pixels
    monkeypatch.undo()
    assert np.array_equal(banded, read_image(path).pixels) and banded.shape == (50, 30, 3)


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_outputs_honour_the_umask(tmp_path, umask):
    previous = os.umask(umask)
    try:
        assert current_umask() == umask
        write_atomic(tmp_path / "a.json", b"{}")
        write_image(tmp_path / "b.png", _rgb())
    finally:
        os.umask(previous)
    for name in ("a.json", "b.png"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o666 & ~umask


def test_writability_check_and_the_webp_size_limit(tmp_path):
    check_writable(tmp_path / "new" / "folder")
    assert (tmp_path / "new" / "folder").is_dir() and not list((tmp_path / "new" / "folder").iterdir())
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError):
        check_writable(tmp_path / "file" / "out")
    check_output_size(16383, 100, "webp")
    check_output_size(20000, 100, "png")
    with pytest.raises(ImageError, match="too large for WebP"):
        check_output_size(16384, 100, "webp")


def test_cmyk_becomes_rgb_without_its_icc_profile(tmp_path):
    path = tmp_path / "cmyk.jpg"
    Image.fromarray(_rgb()).convert("CMYK").save(path, icc_profile=b"cmyk profile")
    decoded = read_image(path)
    assert decoded.pixels.shape == (12, 16, 3) and decoded.icc_profile is None
