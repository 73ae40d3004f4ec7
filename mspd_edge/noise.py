"""The noise contract shared by every backend (numpy only).

For one call on a batch ``x`` of shape ``(B, C, H, W)`` (the Python API, ``mcgs(..., seed=)``):
``rng = numpy.random.default_rng(seed)``, then per epoch, in order,
``rng.uniform(-1, 1, (n_samples, *x.shape)).astype(numpy.float32)``.

Jobs over many images (files, Ray datasets, camera frames) give each image its own stream,
``image_seed(seed, image_key(pixels))``: a :class:`numpy.random.SeedSequence` of the job seed
whose spawn key is a 128-bit digest of the image itself (its uint8 pixels and shape), and
stack the per-image draws along axis 1. So a result is a function of the image and the
settings alone: not of its position in a run, the other files, the order or the batching.
"""
import hashlib

import numpy as np

KEY_WORDS = 4   # 32-bit words of the image key: 128 bits of the pixels' sha256


def draw_noise(seed, n_samples, shape, n_epochs):
    """One float32 array ``(n_samples, *shape)`` in [-1, 1] per epoch, drawn as the contract says."""
    rng = np.random.default_rng(seed)
    return [rng.uniform(-1, 1, (n_samples, *shape)).astype(np.float32) for _ in range(n_epochs)]


def image_key(pixels):
    """The noise key of an image: 128 bits of the sha256 of its shape and uint8 pixels."""
    pixels = np.ascontiguousarray(pixels)
    digest = hashlib.sha256(repr((pixels.shape, pixels.dtype.str)).encode())
    digest.update(memoryview(pixels).cast("B"))
    return tuple(int(w) for w in np.frombuffer(digest.digest()[:4 * KEY_WORDS], "<u4"))


def image_seed(seed, key):
    """The seed of the image with ``key`` (:func:`image_key`) in a job seeded with ``seed``."""
    return np.random.SeedSequence(seed, spawn_key=tuple(key))


def batch_noise(seed, keys, n_samples, image_shape, n_epochs):
    """Noise for a batch of images with ``keys``: per-image draws stacked along axis 1."""
    per_image = [draw_noise(image_seed(seed, k), n_samples, (1, *image_shape), n_epochs) for k in keys]
    return [np.concatenate([draws[e] for draws in per_image], axis=1) for e in range(n_epochs)]


def fresh_seed():
    """A random job seed, to be reported so that the run can be repeated."""
    return int(np.random.SeedSequence().entropy % (1 << 63))
