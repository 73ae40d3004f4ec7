"""The noise contract shared by every backend (numpy only).

For one call on a batch ``x`` of shape ``(B, C, H, W)``:
``rng = numpy.random.default_rng(seed)``, then per epoch, in order,
``rng.uniform(-1, 1, (n_samples, *x.shape)).astype(numpy.float32)``.
Jobs over many images give image ``i`` its own stream, ``image_seed(seed, i)``, and stack the
per-image draws along axis 1, so a result never depends on how images were batched.
"""
import numpy as np


def draw_noise(seed, n_samples, shape, n_epochs):
    """One float32 array ``(n_samples, *shape)`` in [-1, 1] per epoch, drawn as the contract says."""
    rng = np.random.default_rng(seed)
    return [rng.uniform(-1, 1, (n_samples, *shape)).astype(np.float32) for _ in range(n_epochs)]


def image_seed(seed, index):
    """The seed of image ``index`` within a job seeded with ``seed`` (an independent stream)."""
    return np.random.SeedSequence(seed, spawn_key=(index,))


def batch_noise(seed, indices, n_samples, image_shape, n_epochs):
    """Noise for a batch of job images ``indices``: per-image draws stacked along axis 1."""
    per_image = [draw_noise(image_seed(seed, i), n_samples, (1, *image_shape), n_epochs) for i in indices]
    return [np.concatenate([draws[e] for draws in per_image], axis=1) for e in range(n_epochs)]


def fresh_seed():
    """A random job seed, to be reported so that the run can be repeated."""
    return int(np.random.SeedSequence().entropy % (1 << 63))
