"""The PyTorch reference as a pipeline backend (see ``mspd_edge.pipeline``).

Every call of the models has the same shape, ``images_per_call`` images (the last chunk of a
batch is padded with copies of its last image): PyTorch picks its kernels by shape, and a
kernel's rounding can flip the sign of a near-zero gradient, so a fixed call shape is what
makes an image's result independent of the batch it came in (the noise contract does the rest).
"""
import numpy as np
import torch

from .protocol import Backend
from .reference import input_grad, mcgs

# Images per model call: one on the CPU (its N copies already fill the cores; README "Reference
# speed": 0.054 s/image one at a time vs 0.051 batched by 16, 6% for batch invariance), and a
# batch that fills a GPU.
IMAGES_PER_CALL = {"cpu": 1, "cuda": 16}
# bf16 on the CPU: two images (40 copies) per call. Its small convolutions leave the two threads
# idle between tiny ops, so larger calls pay (benchmarks/torch_call_size.py, 2 threads: 37.5
# ms/image at one image per call, 31.4 at two, 26.1 at four, 24.4 at eight); two keeps a
# one-image batch as fast as fp32's while a batch of 16 gains most of it (docs/precision.md).
PRECISION_IMAGES_PER_CALL = {("cpu", "bf16"): 2}
# The channels-last memory layout for the network where it measured faster (README "Precision":
# bf16 on the CPU); fp32 keeps the reference's layout.
CHANNELS_LAST = {("cpu", "bf16"), ("cpu", "fp16")}


def chunks(count, size):
    """``(start, stop)`` of consecutive chunks of ``size`` covering ``range(count)``."""
    return [(start, min(start + size, count)) for start in range(0, count, size)]


def padded(array, size, axis=0):
    """``array`` padded to ``size`` along ``axis`` with copies of its last entry."""
    missing = size - array.shape[axis]
    if missing <= 0:
        return array
    last = np.take(array, [-1], axis=axis)
    return np.concatenate([array, np.repeat(last, missing, axis=axis)], axis=axis)


class TorchBackend(Backend):
    """Runs the reference ``mcgs`` with a backbone and a label classifier on ``device``.

    ``precision``: the backbone's in the gradient passes ("fp32", "bf16", "fp16": autocast,
    channels-last where :data:`CHANNELS_LAST` says); the labels are always float32.
    """

    name = "torch"

    def __init__(self, backbone, classifier=None, device="cpu", images_per_call=None, precision="fp32"):
        self.device = torch.device(device)
        self.precision = precision
        self.channels_last = (self.device.type, precision) in CHANNELS_LAST
        layout = torch.channels_last if self.channels_last else torch.contiguous_format
        self.backbone = backbone.to(self.device, memory_format=layout).eval()
        self.classifier = None if classifier is None else classifier.to(self.device).eval()
        self.info = info = backbone.info
        self.input_size = tuple(info.input_size)
        self.default_eps = info.eps
        self.images_per_call = images_per_call or PRECISION_IMAGES_PER_CALL.get(
            (self.device.type, precision), IMAGES_PER_CALL.get(self.device.type, 1))

    @property
    def network(self):
        """The ``precision``/``channels_last`` keywords of the reference's gradient passes."""
        return {"precision": self.precision, "channels_last": self.channels_last}

    def _tensor(self, array):
        return torch.from_numpy(np.ascontiguousarray(array)).to(self.device)

    @torch.no_grad()
    def predict(self, x, model):
        """Argmax labels of ``model`` ("classifier" or "backbone") for float32 [B,C,h,w]."""
        net = self.backbone if model == "backbone" else self.classifier
        if net is None:
            raise ValueError("label mode 'classifier' needs a classifier model")
        size = self.images_per_call
        parts = [net(self._tensor(padded(x[a:b], size))).argmax(1).cpu().numpy()[:b - a]
                 for a, b in chunks(len(x), size)]
        return np.concatenate(parts) if parts else np.zeros(0, np.int64)

    def input_grad(self, images, labels):
        """``d sum-CE(backbone(images), labels) / d images`` (float32 numpy in and out)."""
        return input_grad(self.backbone, self._tensor(images), self._tensor(labels),
                          **self.network).cpu().numpy()

    def run(self, x, labels, noise, settings):
        """The protected batch (float32 numpy) for images ``x``, ``labels`` and per-epoch noise."""
        size = self.images_per_call
        parts = []
        for a, b in chunks(len(x), size):
            out = mcgs(self.backbone, self._tensor(padded(x[a:b], size)),
                       self._tensor(padded(labels[a:b], size)), eps=settings.eps,
                       n_samples=settings.n_samples, lr=settings.lr, epochs=settings.epochs,
                       noise=[self._tensor(padded(n[:, a:b], size, axis=1)) for n in noise],
                       **self.network)
            parts.append(out.cpu().numpy()[:b - a])
        return np.concatenate(parts)
