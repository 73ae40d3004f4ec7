"""Distances for reports; SSIM against scikit-image's reference implementation."""
import numpy as np
import pytest

from mspd_edge.metrics import l2, linf, psnr, ssim, uint8_distances

structural_similarity = pytest.importorskip("skimage.metrics").structural_similarity
skimage_data = pytest.importorskip("skimage.data")


def _perturbed(image, levels, seed):
    rng = np.random.default_rng(seed)
    noise = rng.integers(-levels, levels + 1, image.shape)
    return np.clip(image.astype(int) + noise, 0, 255).astype(np.uint8)


def _reference(a, b):
    return structural_similarity(a, b, data_range=255, gaussian_weights=True, sigma=1.5,
                                 use_sample_covariance=False, channel_axis=-1 if a.ndim == 3 else None)


@pytest.mark.parametrize("shape", [(32, 32, 3), (75, 100, 3), (11, 40), (60, 23, 4)])
def test_ssim_matches_skimage_on_random_images(shape):
    a = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    b = _perturbed(a, 8, 1)
    assert ssim(a, b) == pytest.approx(_reference(a, b), abs=1e-4)


def test_ssim_matches_skimage_on_cifar10(cifar10):
    for image in cifar10[0][:4]:
        protected = _perturbed(image, 8, 2)
        assert ssim(image, protected) == pytest.approx(_reference(image, protected), abs=1e-4)
        gray = image.mean(axis=2).astype(np.uint8)
        assert ssim(gray, protected[..., 0]) == pytest.approx(_reference(gray, protected[..., 0]), abs=1e-4)


def test_ssim_of_identical_images_is_one():
    image = np.random.default_rng(3).integers(0, 256, (20, 20, 3), dtype=np.uint8)
    assert ssim(image, image) == pytest.approx(1.0)


def test_ssim_refuses_images_smaller_than_its_window_and_shape_mismatches():
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(np.zeros((10, 30)), np.zeros((10, 30)))
    with pytest.raises(ValueError, match="shapes differ"):
        ssim(np.zeros((12, 12)), np.zeros((12, 13)))


def test_distances_on_uint8_scale():
    a = np.zeros((2, 2, 3), np.uint8)
    b = a.copy()
    b[0, 0, 0], b[1, 1, 2] = 8, 6
    assert linf(b, a) == 8 and linf(b, a, scale=255) == pytest.approx(8 / 255)
    assert l2(b, a, scale=255) == pytest.approx(10 / 255)
    assert psnr(b, a) == pytest.approx(10 * np.log10(255 ** 2 / (100 / 12)))
    assert psnr(a, a) == float("inf") and linf(a, a) == 0 and l2(a, a) == 0
    with pytest.raises(ValueError, match="shapes differ"):
        linf(a, a[0])


def test_banded_ssim_and_exact_distances_on_a_photo(monkeypatch):
    from mspd_edge import metrics

    photo = skimage_data.astronaut()
    protected = _perturbed(photo, 8, 4)
    banded = ssim(photo, protected)   # bands of 682 rows: the whole photo in one
    monkeypatch.setattr(metrics, "BAND_VALUES", 16 * photo[0].size)   # bands of 16 rows
    assert ssim(photo, protected) == pytest.approx(banded, abs=1e-12)
    assert banded == pytest.approx(_reference(photo, protected), abs=1e-6)
    levels, distance, ratio = uint8_distances(protected, photo)
    assert levels == linf(protected, photo) == 8
    assert distance == pytest.approx(l2(protected, photo, scale=255), rel=1e-12)
    assert ratio == pytest.approx(psnr(protected, photo), rel=1e-12)
