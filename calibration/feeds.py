"""What the gradient graphs see in the cascade, as calibration inputs: noisy copies of real images.

Each image gives one feed of the ``backbone_grad`` graph: its N copies ``clip01(x + eps u)``
of the cascade's first epoch (the noise contract of ``mspd_edge.noise``, keyed by the image),
labelled by the bundle's fp32 classifier (its backbone when it has none), as the cascade
labels them.
"""
import numpy as np

from mspd_edge import defaults
from mspd_edge.bundle import IMAGES, LABELS
from mspd_edge.imaging import model_inputs
from mspd_edge.noise import batch_noise, image_key


def noisy_copies(x, noise, eps):
    """``clip01(x + eps u)`` for images ``x`` [B,C,H,W] and ``noise`` [N,B,C,H,W] as ``[N*B, ...]``."""
    copies = np.clip(x[None] + np.float32(eps) * noise, 0, 1, dtype=np.float32)
    return copies.reshape(-1, *x.shape[1:])


def calibration_feeds(backend, images, n_samples=defaults.N_SAMPLES, seed=0):
    """One ``{"images", "labels"}`` feed per uint8 image for ``backend`` (an fp32 runtime
    backend: its input size, eps and label graph)."""
    x = model_inputs(images, backend.input_size)
    model = "classifier" if backend.bundle.has("classifier") else "backbone"
    labels = backend.predict(x, model)
    feeds = []
    for k, image in enumerate(images):
        (noise,) = batch_noise(seed, [image_key(image)], n_samples, x.shape[1:], 1)
        copies = noisy_copies(x[k:k + 1], noise, backend.default_eps)
        feeds.append({IMAGES: copies, LABELS: np.repeat(labels[k:k + 1], n_samples)})
    return feeds
