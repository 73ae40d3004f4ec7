"""Image distances for reports (numpy and cv2 only): L-inf, L2, PSNR and SSIM.

Distances take two arrays of the same shape; uint8 images are compared on the [0, 1] scale
(``scale=255``), float images in [0, 1] with the default ``scale=1``. :func:`uint8_distances`
and :func:`ssim` work a band of rows at a time, so a photo needs no full-size float copy.
"""
import cv2
import numpy as np

SSIM_SIGMA = 1.5            # Gaussian window of Wang et al. (2004)
SSIM_TRUNCATE = 3.5         # window radius in sigmas: an 11-tap window at sigma 1.5 (as scikit-image)
SSIM_K1, SSIM_K2 = 0.01, 0.03
UINT8_RANGE = 255.0
BAND_VALUES = 1 << 20       # values per band of rows


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


def uint8_distances(a, b):
    """``(L-inf in levels, L2 and PSNR on the 8-bit scale)`` of two uint8 images, exactly (integers)."""
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} and {b.shape}")
    worst, squares = 0, 0
    for rows in _bands(a.shape[0], a[0].size, 0):
        difference = a[rows].astype(np.int16) - b[rows]
        worst = max(worst, int(difference.max(initial=0)), -int(difference.min(initial=0)))
        squares += int(np.square(difference, dtype=np.int32).sum(dtype=np.int64))
    mse = squares / max(1, a.size)
    return worst, float(np.sqrt(squares)) / UINT8_RANGE, \
        float("inf") if squares == 0 else float(10 * np.log10(UINT8_RANGE ** 2 / mse))


def _bands(height, row_values, halo):
    """Row slices covering ``range(halo, height - halo)``, ~BAND_VALUES values each."""
    rows = max(1, BAND_VALUES // max(1, row_values))
    return [slice(top, min(top + rows, height - halo)) for top in range(halo, height - halo, rows)]


def ssim(a, b, data_range=UINT8_RANGE):
    """Mean SSIM of two images ``[H, W]`` or ``[H, W, C]`` (the mean over channels).

    Wang et al. (2004): Gaussian window (sigma 1.5, 11 taps), K1 0.01, K2 0.03, population
    covariances, borders cropped by the window radius; equal to scikit-image's
    ``structural_similarity(gaussian_weights=True, use_sample_covariance=False)``.
    Raises ``ValueError`` for images smaller than the window. Works a band of rows (with the
    window's halo) at a time, all channels together.
    """
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} and {b.shape}")
    radius = int(SSIM_TRUNCATE * SSIM_SIGMA + 0.5)
    if min(a.shape[:2]) < 2 * radius + 1:
        raise ValueError(f"SSIM needs images of at least {2 * radius + 1}x{2 * radius + 1} pixels")
    total, count = 0.0, 0
    for rows in _bands(a.shape[0], a[0].size, radius):
        block = slice(rows.start - radius, rows.stop + radius)
        ssim_map = _ssim_map(a[block], b[block], radius, data_range)[radius:-radius, radius:-radius]
        total += float(ssim_map.sum(dtype=np.float64))
        count += ssim_map.size
    return total / count


def _ssim_map(a, b, radius, data_range):
    """The SSIM map of two blocks (their outer ``radius`` rows and columns are not valid).

    float32 (OpenCV's blur is ~6x faster than in float64) on values centred at half the data
    range, which keeps the variances' cancellation small: within 1e-6 of float64 on photos.
    Four blurs: the denominator needs only the sum of the two variances.
    """
    def blur(x):
        return cv2.GaussianBlur(x, (2 * radius + 1, 2 * radius + 1), SSIM_SIGMA,
                                borderType=cv2.BORDER_REFLECT).reshape(x.shape)

    centre = np.float32(data_range / 2)
    a, b = np.asarray(a, np.float32) - centre, np.asarray(b, np.float32) - centre
    mu_a, mu_b = blur(a), blur(b)
    variances = blur(a * a + b * b) - mu_a * mu_a - mu_b * mu_b
    cov = blur(a * b) - mu_a * mu_b
    mu_a += centre
    mu_b += centre
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    return ((2 * mu_a * mu_b + c1) * (2 * cov + c2)
            / ((mu_a * mu_a + mu_b * mu_b + c1) * (variances + c2)))
