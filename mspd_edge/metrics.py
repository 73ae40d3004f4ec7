"""Image distances for reports (numpy and cv2 only): L-inf, L2, PSNR and SSIM.

Distances take two arrays of the same shape; uint8 images are compared on the [0, 1] scale
(``scale=255``), float images in [0, 1] with the default ``scale=1``.
"""
import cv2
import numpy as np

SSIM_SIGMA = 1.5            # Gaussian window of Wang et al. (2004)
SSIM_TRUNCATE = 3.5         # window radius in sigmas: an 11-tap window at sigma 1.5 (as scikit-image)
SSIM_K1, SSIM_K2 = 0.01, 0.03
UINT8_RANGE = 255.0


def _difference(a, b, scale):
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} and {b.shape}")
    return (a.astype(np.float64) - b.astype(np.float64)) / scale


def linf(a, b, scale=1.0):
    """Largest absolute difference, divided by ``scale``."""
    return float(np.abs(_difference(a, b, scale)).max(initial=0.0))


def l2(a, b, scale=1.0):
    """Euclidean norm of the difference over all values, divided by ``scale``."""
    return float(np.linalg.norm(_difference(a, b, scale).ravel()))


def psnr(a, b, data_range=UINT8_RANGE):
    """Peak signal-to-noise ratio in dB (``inf`` for identical images)."""
    mse = float(np.mean(_difference(a, b, 1.0) ** 2))
    return float("inf") if mse == 0 else float(10 * np.log10(data_range ** 2 / mse))


def ssim(a, b, data_range=UINT8_RANGE):
    """Mean SSIM of two images ``[H, W]`` or ``[H, W, C]`` (the mean over channels).

    Wang et al. (2004): Gaussian window (sigma 1.5, 11 taps), K1 0.01, K2 0.03, population
    covariances, borders cropped by the window radius; equal to scikit-image's
    ``structural_similarity(gaussian_weights=True, use_sample_covariance=False)``.
    Raises ``ValueError`` for images smaller than the window.
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} and {b.shape}")
    if a.ndim == 2:
        return _ssim_channel(a, b, data_range)
    return float(np.mean([_ssim_channel(a[..., c], b[..., c], data_range) for c in range(a.shape[2])]))


def _ssim_channel(a, b, data_range):
    radius = int(SSIM_TRUNCATE * SSIM_SIGMA + 0.5)
    if min(a.shape) < 2 * radius + 1:
        raise ValueError(f"SSIM needs images of at least {2 * radius + 1}x{2 * radius + 1} pixels")

    def blur(x):
        return cv2.GaussianBlur(x, (2 * radius + 1, 2 * radius + 1), SSIM_SIGMA,
                                borderType=cv2.BORDER_REFLECT)

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a * mu_a
    var_b = blur(b * b) - mu_b * mu_b
    cov = blur(a * b) - mu_a * mu_b
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)
                / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2)))
    return float(ssim_map[radius:-radius, radius:-radius].mean())
