"""Dense white-box attacks used to train and check models (PGD / FGSM with random start).

The evaluation issue brings maintained libraries (AutoAttack); these are the ones training
needs inside its loop, written out so they run without extra dependencies.
"""
import torch
import torch.nn.functional as F


def fgsm_rs(model, x, y, eps, alpha):
    """FGSM with a uniform random start (Wong et al. 2020); returns the adversarial images."""
    delta = torch.empty_like(x).uniform_(-eps, eps)
    delta = ((x + delta).clamp(0, 1) - x).requires_grad_(True)
    loss = F.cross_entropy(model(x + delta), y)
    (grad,) = torch.autograd.grad(loss, delta)
    delta = (delta.detach() + alpha * grad.sign()).clamp(-eps, eps)
    return (x + delta).clamp(0, 1)


def n_fgsm(model, x, y, eps, alpha, noise_scale=2.0):
    """N-FGSM (de Jorge et al. 2022): noise in ``noise_scale * eps``, one step, no projection.

    The stronger noise and the unclipped step avoid catastrophic overfitting at FGSM cost.
    """
    delta = torch.empty_like(x).uniform_(-noise_scale * eps, noise_scale * eps).requires_grad_(True)
    loss = F.cross_entropy(model((x + delta).clamp(0, 1)), y)
    (grad,) = torch.autograd.grad(loss, delta)
    return (x + delta.detach() + alpha * grad.sign()).clamp(0, 1)


def pgd_linf(model, x, y, eps, alpha, steps, random_start=True):
    """L-inf PGD on cross-entropy; returns the adversarial images (model left in its mode)."""
    adv = x.clone()
    if random_start:
        adv = (adv + torch.empty_like(x).uniform_(-eps, eps)).clamp(0, 1)
    for _ in range(steps):
        adv.requires_grad_(True)
        loss = F.cross_entropy(model(adv), y, reduction="sum")
        (grad,) = torch.autograd.grad(loss, adv)
        adv = adv.detach() + alpha * grad.sign()
        adv = torch.min(torch.max(adv, x - eps), x + eps).clamp(0, 1)
    return adv.detach()
