"""Sparse-PGD (Zhong et al. 2024, "Towards Efficient Training and Evaluation of Robust Models
against l0 Bounded Adversarial Perturbations"): a white-box L0 attack on k pixels.

The perturbation is ``p * m``: a magnitude ``p`` bounded only by the image box (x + p in [0, 1])
times a binary mask ``m`` of the k pixels (all channels of a pixel) with the largest
``sigmoid(s)`` of a continuous mask ``s``. ``p`` takes sign-gradient steps; ``s`` takes
L2-normalised gradient steps through the relaxation, so pixels enter and leave the mask. The
gradient reaching ``p`` goes through the soft mask (``projected=False``, the paper's
unprojected variant: every pixel learns) or the binary one (``projected=True``). The loss
switches per image from cross-entropy to the (unscaled) DLR margin once the true class leads by
less than ``LOW_CONFIDENCE``; a mask unchanged for ``patience`` steps is drawn afresh, and
``restarts`` starts again from a new random point for the images still standing.
"""
import math

import torch
import torch.nn.functional as F

STEP = 0.25              # magnitude step (the box is [0, 1]: a quarter of it)
MASK_STEP = 0.25         # mask step, times sqrt(c h w), along the L2-normalised gradient
LOW_CONFIDENCE = 0.5     # logit margin below which the loss is the DLR margin, not CE
PATIENCE = 3             # steps with an unchanged mask before it is drawn afresh
GRAD_FLOOR = 1e-10


class _TopKMask(torch.autograd.Function):
    """``p * topk(soft, k)``; backward passes ``g * soft`` (unprojected) or ``g * binary``
    (projected) to ``p``, and ``sum_channels(g * p)`` to the soft mask."""

    @staticmethod
    def forward(ctx, p, soft, k, projected):
        binary = top_k_mask(soft, k)
        ctx.save_for_backward(p, binary if projected else soft)
        return p * binary

    @staticmethod
    def backward(ctx, grad):
        p, gate = ctx.saved_tensors
        return grad * gate, (grad * p).sum(1, keepdim=True), None, None


def top_k_mask(scores, k):
    """Binary ``[n, 1, h, w]`` mask of the k largest ``scores`` of each image."""
    flat = scores.flatten(1)
    return torch.zeros_like(flat).scatter_(1, flat.topk(k, dim=1).indices, 1.0).view_as(scores)


def margin(logits, y):
    """True-class logit minus the largest other one (negative: misclassified)."""
    others = logits.scatter(1, y[:, None], float("-inf"))
    return logits.gather(1, y[:, None]).squeeze(1) - others.max(1).values


def _loss(logits, y):
    """Per image: CE where the model is confident, the DLR margin (negated) where it is not."""
    m = margin(logits, y)
    return torch.where(m < LOW_CONFIDENCE, -m, F.cross_entropy(logits, y, reduction="none"))


def _start(x, generator):
    p = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype) * 2 - 1
    p = torch.max(torch.min(p, 1 - x), -x)
    s = torch.randn((len(x), 1, *x.shape[2:]), generator=generator, device=x.device, dtype=x.dtype)
    return p, s


def _step(x, p, s, grad_p, grad_s, mask_step):
    """One ascent step: sign step on the magnitude (kept in the box), normalised step on the mask."""
    p = torch.max(torch.min(p + STEP * grad_p.sign(), 1 - x), -x)
    norms = grad_s.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
    return p, s + torch.where(norms > GRAD_FLOOR, mask_step * grad_s / norms.clamp_min(GRAD_FLOOR), 0.0)


def sparse_pgd_step(model, x, loss_fn, k, generator=None):
    """One unprojected sparse-PGD step from a random start, ascending ``loss_fn(logits)`` (one
    loss per image): the cheap training attack of Fast-LS-l0 (Zhong et al. 2025). Returns
    images differing from ``x`` in at most ``k`` pixels; the model is left in its mode."""
    p, s = _start(x, generator)
    p.requires_grad_(True)
    s.requires_grad_(True)
    loss = loss_fn(model(x + _TopKMask.apply(p, torch.sigmoid(s), k, False)))
    grad_p, grad_s = torch.autograd.grad(loss.sum(), (p, s))
    with torch.no_grad():
        p, s = _step(x, p.detach(), s.detach(), grad_p, grad_s, MASK_STEP * math.sqrt(x[0].numel()))
        return (x + p * top_k_mask(torch.sigmoid(s), k)).clamp(0, 1)


def sparse_pgd(model, x, y, k, *, steps, projected=False, restarts=1, generator=None):
    """Adversarial images for the NCHW batch ``x`` in [0, 1] (labels ``y``), each differing from
    ``x`` in at most ``k`` pixels: the first misclassified iterate, else ``x`` itself."""
    adv = x.clone()
    standing = torch.arange(len(x), device=x.device)
    for _ in range(restarts):
        if len(standing) == 0:
            break
        candidates, hit = _attack(model, x[standing], y[standing], k, steps, projected, generator)
        adv[standing[hit]] = candidates[hit]
        standing = standing[~hit]
    return adv


def _attack(model, x, y, k, steps, projected, generator):
    """One run: ``(images, fooled)``, the misclassified iterate where one was found, else ``x``."""
    out, fooled = x.clone(), torch.zeros(len(x), dtype=torch.bool, device=x.device)
    index = torch.arange(len(x), device=x.device)
    p, s = _start(x, generator)
    mask_step = MASK_STEP * math.sqrt(x[0].numel())
    still = torch.zeros(len(x), dtype=torch.long, device=x.device)
    for _ in range(steps):
        p.requires_grad_(True)
        s.requires_grad_(True)
        candidate = x + _TopKMask.apply(p, torch.sigmoid(s), k, projected)
        logits = model(candidate)
        grad_p, grad_s = torch.autograd.grad(_loss(logits, y).sum(), (p, s))
        with torch.no_grad():
            hit = logits.argmax(1) != y
            out[index[hit]] = candidate[hit].clamp(0, 1)
            fooled[index[hit]] = True
            keep = ~hit
            if not keep.any():
                break
            x, y, p, s, grad_p, grad_s, still, index = (t[keep] for t in (x, y, p, s, grad_p, grad_s, still, index))
            p, new_s = _step(x, p, s, grad_p, grad_s, mask_step)
            unchanged = (top_k_mask(new_s, k) == top_k_mask(s, k)).flatten(1).all(1)
            still = torch.where(unchanged, still + 1, 0)
            stale = still >= PATIENCE
            if stale.any():
                new_s[stale] = torch.randn(new_s[stale].shape, generator=generator, device=x.device, dtype=x.dtype)
                still[stale] = 0
            s = new_s
    return out, fooled
