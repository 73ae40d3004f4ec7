"""The PyTorch reference of the MCGS cascade (MCGS.md), against which every backend is checked.

float32 throughout by default; ``precision="bf16"|"fp16"`` runs the network of the gradient
passes under autocast and keeps everything else (noise, clip, projection, mean) float32.
"""
import contextlib

import numpy as np
import torch
import torch.nn.functional as F

from . import defaults
from .noise import draw_noise
from .pipeline import check_epochs

_DIRECTIONS = {"F": defaults.FORWARD, "B": defaults.BACKWARD}
AUTOCAST = {"bf16": torch.bfloat16, "fp16": torch.float16}


def _project(z, center, eps):
    return torch.min(torch.max(z, center - eps), center + eps)


def network_precision(device, precision="fp32"):
    """The autocast context of the network under ``precision`` ("fp32": none; "bf16", "fp16")."""
    if precision == "fp32":
        return contextlib.nullcontext()
    if precision not in AUTOCAST:
        raise ValueError(f"torch runs fp32, bf16 or fp16, not {precision!r}")
    return torch.autocast(torch.device(device).type, dtype=AUTOCAST[precision])


def input_grad(backbone, images, labels, precision="fp32", channels_last=False):
    """d sum-CE(backbone(images), labels) / d images; parameters get no gradients.

    ``precision`` "bf16"/"fp16": the network's forward and backward under autocast; the loss
    (cross-entropy on float32 logits) and the returned gradient are float32.
    ``channels_last``: feed the images in that memory layout (for a channels-last backbone).
    """
    with torch.enable_grad():
        images = images.detach()
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        images.requires_grad_(True)
        with network_precision(images.device, precision):
            logits = backbone(images)
        loss = F.cross_entropy(logits.float(), labels, reduction="sum")
        (grad,) = torch.autograd.grad(loss, images)
    return grad.contiguous()


def smooth_step(backbone, center, labels, noise, eps, direction, **network):
    """One SmoothStep: N noisy copies of ``center`` each take a signed step, then are averaged.

    ``noise`` is ``(N, *center.shape)`` in [-1, 1]; ``direction`` is -1 (forward) or +1 (backward);
    ``network``: ``precision`` and ``channels_last`` of :func:`input_grad` (the step is float32).
    """
    n = noise.shape[0]
    copies = (center.unsqueeze(0) + eps * noise).clamp(0, 1)
    grad = input_grad(backbone, copies.flatten(0, 1), labels.repeat(n), **network).view_as(copies)
    stepped = _project(copies + direction * eps * grad.sign(), center, eps).clamp(0, 1)
    return stepped.mean(0)


def _as_noise(noise, seed, n_samples, x, n_epochs):
    if noise is None:
        noise = draw_noise(seed, n_samples, tuple(x.shape), n_epochs)
    if len(noise) != n_epochs:
        raise ValueError(f"noise has {len(noise)} epochs, the cascade {n_epochs}")
    out = [torch.as_tensor(np.asarray(e) if not torch.is_tensor(e) else e).to(x) for e in noise]
    for e in out:
        if e.shape[1:] != x.shape:
            raise ValueError(f"noise shape {tuple(e.shape)} does not fit images {tuple(x.shape)}")
    return out


def _eval_mode(model):
    was_training = model.training
    model.eval()
    return was_training


def mcgs(backbone, x, labels, *, eps, n_samples=defaults.N_SAMPLES, lr=defaults.LR,
         epochs=defaults.EPOCHS, noise=None, seed=None, precision="fp32", channels_last=False):
    """Protect images ``x`` ([B,C,H,W] in [0,1]) with the MCGS cascade; returns the protected batch.

    ``labels`` (int64 [B]) are the labels the cascade uses; ``noise`` is one ``(n_samples, *x.shape)``
    tensor per epoch in [-1, 1] (drawn from ``seed`` as in ``mspd_edge.noise`` when omitted).
    ``precision``/``channels_last``: the network's, in the gradient passes (:func:`input_grad`).
    """
    check_epochs(epochs)
    x = x.detach()
    labels = torch.as_tensor(labels, dtype=torch.long, device=x.device)
    noise = _as_noise(noise, seed, n_samples, x, len(epochs))
    was_training = _eval_mode(backbone)
    try:
        current = x
        for epoch, e in zip(epochs, noise):
            stepped = smooth_step(backbone, current, labels, e, eps, _DIRECTIONS[epoch],
                                  precision=precision, channels_last=channels_last)
            sign = 1.0 if epoch == "F" else -1.0
            current = _project(current + sign * lr * (stepped - current), x, eps).clamp(0, 1)
    finally:
        backbone.train(was_training)
    return current


def revert(backbone, x_protected, labels, **kwargs):
    """Preemptive Reversion: ``clip01(2 x' - MCGS(x'))`` with the given backbone and settings."""
    return (2 * x_protected - mcgs(backbone, x_protected, labels, **kwargs)).clamp(0, 1)
