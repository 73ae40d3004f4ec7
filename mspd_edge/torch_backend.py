"""The PyTorch reference as a pipeline backend (see ``mspd_edge.pipeline``)."""
import numpy as np
import torch

from .reference import input_grad, mcgs


class TorchBackend:
    """Runs the reference ``mcgs`` with a backbone and a label classifier on ``device``."""

    name = "torch"

    def __init__(self, backbone, classifier=None, device="cpu"):
        self.device = torch.device(device)
        self.backbone = backbone.to(self.device).eval()
        self.classifier = None if classifier is None else classifier.to(self.device).eval()
        self.info = info = backbone.info
        self.input_size = tuple(info.input_size)
        self.default_eps = info.eps

    def _tensor(self, array):
        return torch.from_numpy(np.ascontiguousarray(array)).to(self.device)

    @torch.no_grad()
    def predict(self, x, model):
        """Argmax labels of ``model`` ("classifier" or "backbone") for float32 [B,C,h,w]."""
        net = self.backbone if model == "backbone" else self.classifier
        if net is None:
            raise ValueError("label mode 'classifier' needs a classifier model")
        return net(self._tensor(x)).argmax(1).cpu().numpy()

    def input_grad(self, images, labels):
        """``d sum-CE(backbone(images), labels) / d images`` (float32 numpy in and out)."""
        return input_grad(self.backbone, self._tensor(images), self._tensor(labels)).cpu().numpy()

    def run(self, x, labels, noise, settings):
        """The protected batch (float32 numpy) for images ``x``, ``labels`` and per-epoch noise."""
        out = mcgs(self.backbone, self._tensor(x), self._tensor(labels), eps=settings.eps,
                   n_samples=settings.n_samples, lr=settings.lr, epochs=settings.epochs,
                   noise=[self._tensor(n) for n in noise])
        return out.cpu().numpy()
