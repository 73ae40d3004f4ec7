"""Protect (or revert) many images with any cascade backend: numpy and cv2 only, no torch.

A backend is a :class:`mspd_edge.protocol.Backend`: ``input_size`` (C, h, w), ``default_eps``,
``predict(x, model)`` (int64 labels of ``"classifier"`` or ``"backbone"`` for float32
[B,C,h,w]) and ``run(x, labels, noise, settings)`` (the protected float32 batch) are what this
module uses. The torch reference and the runtime backends derive from it, so all share this
batching, noise, resize and budget logic.
"""
from dataclasses import dataclass, replace

import numpy as np

from . import defaults
from .imaging import check_budget, from_model_output, to_model_input
from .noise import batch_noise, fresh_seed, image_key

MAX_COPY_VALUES = 20 * 16 * 3 * 32 * 32   # N*B*C*H*W per backbone pass: 16 CIFAR images at N=20


@dataclass(frozen=True)
class Settings:
    """Defence settings; ``eps``/``seed``/``batch_size`` of None mean model default/fresh/auto."""

    eps: float | None = None
    n_samples: int = defaults.N_SAMPLES
    lr: float = defaults.LR
    epochs: str = defaults.EPOCHS
    seed: int | None = None
    label_mode: str = "classifier"
    batch_size: int | None = None

    def resolved(self, backend):
        """A copy with eps, seed and batch size filled in for ``backend``; raises ValueError for
        invalid settings, including a budget that rounds to 0 levels of the 8-bit outputs."""
        if self.label_mode not in defaults.LABEL_MODES:
            raise ValueError(f"label mode must be one of {defaults.LABEL_MODES}, got {self.label_mode!r}")
        check_epochs(self.epochs)
        if self.n_samples < 1 or (self.eps is not None and self.eps <= 0) or self.lr <= 0:
            raise ValueError(f"n_samples >= 1, eps > 0 and lr > 0 are required: {self}")
        eps = backend.default_eps if self.eps is None else self.eps
        check_budget(eps)
        return replace(self, eps=eps,
                       seed=fresh_seed() if self.seed is None else self.seed,
                       batch_size=self.batch_size or auto_batch_size(self.n_samples, backend.input_size))


def check_epochs(epochs):
    """Validate an epoch string such as "FB" or "FBFB"; returns it."""
    if not epochs or set(epochs) - set(defaults.EPOCH_LETTERS):
        raise ValueError(f"epochs must be a non-empty string of 'F' and 'B', got {epochs!r}")
    return epochs


def auto_batch_size(n_samples, input_size):
    """Images per cascade call so that one backbone pass holds at most MAX_COPY_VALUES values."""
    per_image = n_samples * int(np.prod(input_size))
    return max(1, MAX_COPY_VALUES // per_image)


def _labels_for(backend, x, settings, given):
    if settings.label_mode == "gt":
        if given is None or any(label is None for label in given):
            raise ValueError("label mode 'gt' needs a label for every image")
        return np.asarray(given, np.int64)
    return backend.predict(x, "classifier" if settings.label_mode == "classifier" else "backbone")


def protect_batch(images, backend, settings, labels=None, reverse=False):
    """``[(protected uint8 image, label)]`` for uint8 ``images``.

    Each image's own pixels pick its noise stream (``mspd_edge.noise.image_key``), so a result
    does not depend on the rest of the job nor on its batching. ``settings`` must be resolved
    (``Settings.resolved``); ``labels``: class indices for label mode "gt"; ``reverse``:
    Preemptive Reversion ``clip01(2 x - MCGS(x))`` instead of protection.
    """
    inputs = [to_model_input(image, backend.input_size) for image in images]
    x = np.stack([chw for chw, _ in inputs])
    y = _labels_for(backend, x, settings, labels)
    keys = [image_key(image) for image in images]
    noise = batch_noise(settings.seed, keys, settings.n_samples, x.shape[1:], len(settings.epochs))
    out = backend.run(x, y, noise, settings)
    if reverse:
        out = np.clip(2 * x - out, 0, 1)
    return [(from_model_output(out[k], layout, settings.eps), int(y[k])) for k, (_, layout) in enumerate(inputs)]


def protect_images(images, backend, settings, labels=None, reverse=False):
    """Yield ``(index, protected uint8 image, label)`` for each uint8 image, in order (see
    ``protect_batch``), in batches of ``settings.batch_size``.
    """
    size = settings.batch_size
    for start in range(0, len(images), size):
        indices = range(start, min(start + size, len(images)))
        batch_labels = None if labels is None else [labels[i] for i in indices]
        results = protect_batch([images[i] for i in indices], backend, settings, batch_labels, reverse)
        for i, (image, label) in zip(indices, results):
            yield i, image, label
