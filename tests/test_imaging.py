"""Resize rule, channel handling and the 8-bit budget rule."""
import numpy as np
import pytest

from mspd_edge.imaging import budget_levels, from_model_output, to_model_input, to_uint8_within_budget

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
    assert np.array_equal(x.transpose(1, 2, 0), want)
    small = image[:20, :24]
    x, _ = to_model_input(small, SIZE)
    want = cv2.resize(small.astype(np.float32) / 255, (32, 32), interpolation=cv2.INTER_LINEAR)
    assert np.array_equal(x.transpose(1, 2, 0), want)
