"""Resize rule, channel handling, the banded full-size work and the 8-bit budget rule."""
import cv2
import numpy as np
import pytest
import skimage.data
from PIL import Image

from mspd_edge import imaging
from mspd_edge.imaging import (area_average, budget_levels, budget_warning, check_budget, from_model_output,
                               to_model_input, to_uint8_within_budget)

EPS = 8 / 255
SIZE = (3, 32, 32)
rng = np.random.default_rng(0)


def test_budget_rule_rounds_then_clips_to_levels():
    original = np.array([[[10, 250, 0]]], np.uint8)
    protected = np.array([[[30.4, 240.6, 0.2]]], np.float32) / 255
    out = to_uint8_within_budget(protected, original, EPS)
    assert budget_levels(EPS) == 8
    assert out.tolist() == [[[18, 242, 0]]]


def test_model_size_rgb_passes_straight_through():
    image = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    x, layout = to_model_input(image, SIZE)
    assert x.shape == SIZE and x.dtype == np.float32
    assert np.array_equal(from_model_output(x, layout, EPS), image)
    shifted = np.clip(x + 3 / 255, 0, 1)
    assert np.array_equal(from_model_output(shifted, layout, EPS), np.minimum(image.astype(int) + 3, 255))


@pytest.mark.parametrize("shape", [(75, 100), (75, 100, 1), (75, 100, 3), (75, 100, 4), (20, 24, 2), (32, 32)])
def test_any_size_and_channels_round_trip(shape):
    image = rng.integers(0, 256, shape, dtype=np.uint8)
    x, layout = to_model_input(image, SIZE)
    assert x.shape == SIZE
    pushed = np.clip(x + rng.uniform(-1, 1, x.shape).astype(np.float32) * EPS, 0, 1)
    out = from_model_output(pushed, layout, EPS)
    assert out.shape == image.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - image).max() <= budget_levels(EPS)
    if len(shape) == 3 and shape[2] in (2, 4):
        assert np.array_equal(out[..., -1], image[..., -1])


def test_gray_gets_the_channel_mean_perturbation():
    image = np.full((32, 32), 100, np.uint8)
    x, layout = to_model_input(image, SIZE)
    pushed = x + np.array([3, 0, 0], np.float32).reshape(3, 1, 1) / 255
    assert np.array_equal(from_model_output(pushed, layout, EPS), np.full((32, 32), 101, np.uint8))


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="8-bit"):
        to_model_input(np.zeros((4, 4, 3), np.uint16), SIZE)
    with pytest.raises(ValueError, match="channel"):
        to_model_input(np.zeros((4, 4, 5), np.uint8), SIZE)


def _old_full_frame(protected_chw, layout, eps):
    """The former full-frame method: OpenCV's bilinear resize of the whole perturbation."""
    protected = protected_chw.transpose(1, 2, 0)
    base = layout.color.astype(np.float32) / 255
    delta = cv2.resize(protected - layout.resized.transpose(1, 2, 0), base.shape[1::-1],
                       interpolation=cv2.INTER_LINEAR)
    if layout.gray:
        delta = delta.mean(axis=2, keepdims=True)
    return to_uint8_within_budget(base + delta, layout.color, eps)


def _photo(height, width, gray=False):
    image = np.asarray(Image.fromarray(skimage.data.astronaut()).resize((width, height)))
    return image.mean(axis=2).astype(np.uint8) if gray else image


@pytest.mark.parametrize("size", [(3, 32, 32), (3, 224, 224)])
@pytest.mark.parametrize("gray", [False, True])
def test_banded_output_equals_the_full_frame_formula(monkeypatch, size, gray):
    image = _photo(900, 1200, gray)
    x, layout = to_model_input(image, size)
    pushed = np.clip(x + EPS * rng.uniform(-1, 1, x.shape).astype(np.float32), 0, 1)
    banded = from_model_output(pushed, layout, EPS)   # ~580 (gray: ~1700) rows a band
    monkeypatch.setattr(imaging, "BAND_VALUES", image.size)
    whole = from_model_output(pushed, layout, EPS)
    assert np.array_equal(banded, whole) and banded.shape == image.shape
    old = _old_full_frame(pushed, layout, EPS).reshape(image.shape)
    differ = old != banded   # OpenCV's rounding differs in the last bit of a few float values
    assert np.abs(old.astype(int) - banded).max() <= 1 and differ.mean() < 1e-5


@pytest.mark.parametrize("shape", [(75, 100, 3), (64, 64, 3), (1001, 777, 1), (33, 40, 3), (900, 1200, 3)])
def test_area_average_equals_opencv_area_to_float_rounding(shape):
    image = rng.integers(0, 256, shape, dtype=np.uint8)
    for size in ((32, 32), (32, 33)):
        mine = area_average(image, size) / 255
        theirs = cv2.resize(image.astype(np.float32) / 255, size[::-1], interpolation=cv2.INTER_AREA)
        assert np.abs(mine - theirs.reshape(mine.shape)).max() < 3e-7


def test_budget_levels_and_a_budget_of_zero_levels():
    assert [budget_levels(e / 255) for e in (1, 1.5, 2.5, 8)] == [1, 2, 2, 8]
    assert check_budget(0.6 / 255) == 1
    with pytest.raises(ValueError, match="rounds to 0 levels"):
        check_budget(0.5 / 255)


def test_a_budget_over_the_backbones_is_warned_of_in_whole_levels():
    assert budget_warning(255 / 255, 8 / 255, "cifar10-backbone") == (
        "--eps 255 is above the 8/255 the backbone cifar10-backbone was trained for: each value "
        "may change by up to 255/255, which shows (large budgets destroy the image), for no "
        "robustness the backbone was trained to give")
    assert [budget_warning(e / 255, 8 / 255, "b") is None for e in (1, 8, 8.4, 8.6, 9)] == \
        [True, True, True, False, False]
    assert budget_warning(4 / 255, 4 / 255, "vit") is None
    assert "--eps 5 is above the 4/255 the backbone vit" in budget_warning(5 / 255, 4 / 255, "vit")


def test_imagenet_inputs_get_robustbench_bicubic_resize_of_the_whole_image():
    """224x224: Pillow's bicubic filter on the 8-bit image (torchvision's Resize of a PIL image,
    RobustBench's BicubicRes256Crop224 without the crop), the whole image to 224x224."""
    from PIL import Image

    image = rng.integers(0, 256, (300, 451, 3), dtype=np.uint8)
    x, layout = to_model_input(image, (3, 224, 224))
    want = np.asarray(Image.fromarray(image).resize((224, 224), Image.Resampling.BICUBIC), np.float32) / 255
    assert x.shape == (3, 224, 224) and x.dtype == np.float32
    assert np.array_equal(x.transpose(1, 2, 0), want)
    gray, _ = to_model_input(image[:, :, 0], (3, 224, 224))
    assert np.array_equal(gray[0], x[0]) and np.array_equal(gray[2], x[0])


def test_cifar_inputs_keep_area_and_bilinear_resize():
    import cv2

    image = rng.integers(0, 256, (75, 100, 3), dtype=np.uint8)
    x, _ = to_model_input(image, SIZE)
    want = cv2.resize(image.astype(np.float32) / 255, (32, 32), interpolation=cv2.INTER_AREA)
    assert np.abs(x.transpose(1, 2, 0) - want).max() < 3e-7   # the exact area average
    small = image[:20, :24]
    x, _ = to_model_input(small, SIZE)
    want = cv2.resize(small.astype(np.float32) / 255, (32, 32), interpolation=cv2.INTER_LINEAR)
    assert np.array_equal(x.transpose(1, 2, 0), want)
