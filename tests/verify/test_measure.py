"""compare(): real protections (the embedded pair), real Pillow and OpenCV re-encodings."""
import io

import cv2
import numpy as np
import skimage.data
from PIL import Image

from mspd_edge.verify import compare
from mspd_edge.verify.measure import same_frame


def _pillow_jpeg(pixels, quality=75, size=None):
    image = Image.fromarray(pixels)
    if size is not None:
        image = image.resize(size, Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())))


def _opencv(pixels, factor=0.75, quality=75):
    h, w = pixels.shape[:2]
    small = cv2.resize(pixels, (round(w * factor), round(h * factor)), interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(data, cv2.IMREAD_UNCHANGED)


def test_a_lossless_copy_keeps_all_of_it(photos, protected, models):
    for original, pixels in zip(photos, protected):
        result = compare(original, pixels, pixels.copy(), models.backend.input_size)
        assert result.verdict == "kept" and abs(result.kept_cosine - 1) < 1e-9
        assert abs(result.kept_energy - 1) < 1e-9 and result.foreign_energy < 1e-9


def test_re_encoded_protected_copies_keep_it_and_unprotected_ones_have_none(photos, protected, models):
    size = models.backend.input_size
    for original, pixels in zip(photos, protected):
        h, w = original.shape[:2]
        for publish in (_pillow_jpeg, lambda p: _pillow_jpeg(p, 80, (w * 3 // 4, h * 3 // 4)), _opencv):
            kept, none = compare(original, pixels, publish(pixels), size), compare(original, pixels, publish(original), size)
            assert kept.verdict == "kept" and kept.kept_cosine > 0.7 and 0.8 < kept.kept_gain < 1.2, kept
            assert none.verdict == "gone" and abs(none.kept_gain) < 0.1, none


def test_gray_and_alpha_copies_are_brought_to_the_original_channels(photos, protected, models):
    original, pixels = photos[3], protected[3]
    gray = cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY)
    rgba = np.dstack([pixels, np.full(pixels.shape[:2], 200, np.uint8)])
    assert same_frame(gray, original)[0].shape == original.shape
    assert compare(original, pixels, rgba, models.backend.input_size).verdict == "kept"
    assert compare(original, pixels, gray, models.backend.input_size).verdict == "kept"   # in luma
    assert compare(original, pixels, cv2.cvtColor(original, cv2.COLOR_RGB2GRAY), models.backend.input_size).verdict == "gone"


def test_a_crop_another_aspect_a_heavy_filter_or_another_image_is_not_comparable(photos, protected, models):
    size = models.backend.input_size
    original, pixels = photos[4], protected[4]
    cropped = compare(original, pixels, pixels[:, 16:], size)
    assert cropped.verdict == "not comparable" and "aspect ratio" in cropped.reason
    centre = compare(original, pixels, cv2.resize(pixels[12:-12, 12:-12], (128, 128)), size)
    assert centre.verdict == "not comparable" and centre.kept_cosine is not None
    blurred = compare(original, pixels, cv2.GaussianBlur(pixels, (0, 0), 6), size)
    assert blurred.verdict == "not comparable"
    other = compare(original, pixels, cv2.resize(skimage.data.chelsea(), (128, 128)), size)
    assert other.verdict == "not comparable" and "correlation" in other.reason


def test_the_verdict_follows_how_much_is_left(photos, protected, models):
    """Half of the protection is weakened, a tenth of it gone (mixing original and protected)."""
    original, pixels = photos[0], protected[0]
    size = models.backend.input_size
    half = np.rint((original.astype(float) + pixels) / 2).astype(np.uint8)
    tenth = np.rint(original * 0.9 + pixels * 0.1).astype(np.uint8)
    result = compare(original, pixels, half, size)
    assert result.verdict in ("kept", "weakened") and 0.3 < result.kept_gain < 0.7
    assert compare(original, pixels, tenth, size).verdict == "gone"
