"""Accuracy of a model on uint8 image tensors: clean, under PGD, under Gaussian noise or sparse-L0."""
import torch

from ..attacks import pgd_linf, sparse_l0

PGD_STEP = 2 / 255  # the standard PGD step for eps 8/255


@torch.no_grad()
def _predict(model, x):
    return model(x).argmax(1)


def accuracy(model, images, labels, *, device="cpu", eps=0.0, steps=0, noise_sigma=0.0, l0_pixels=0,
             seed=0, batch_size=500):
    """Share of ``images`` (uint8 [n,C,H,W]) classified as ``labels``; PGD-``steps`` when eps > 0,
    sparse-l0 on ``l0_pixels`` pixels (``steps`` iterations) when l0_pixels > 0, or on one noisy
    copy (Gaussian, ``noise_sigma``, drawn from ``seed``) when noise_sigma > 0.

    Under attack an image counts when it is classified correctly both clean and after the
    attack (the AutoAttack convention), so only the clean-correct images are attacked.
    """
    was_training = model.training
    model.eval()
    correct = 0
    generator = torch.Generator(device=device).manual_seed(seed)
    for i in range(0, len(labels), batch_size):
        x = images[i:i + batch_size].float().div(255).to(device)
        y = labels[i:i + batch_size].to(device)
        if noise_sigma > 0:
            x = x + noise_sigma * torch.randn(x.shape, generator=generator, device=x.device)
        hit = _predict(model, x) == y
        if eps > 0 and steps > 0 and hit.any():
            hit[hit.clone()] = _predict(model, pgd_linf(model, x[hit], y[hit], eps, PGD_STEP, steps)) == y[hit]
        if l0_pixels > 0 and steps > 0 and hit.any():
            adv = sparse_l0(model, x[hit], y[hit], k=l0_pixels, steps=steps, seed=seed)
            hit[hit.clone()] = _predict(model, adv) == y[hit]
        correct += hit.sum().item()
    model.train(was_training)
    return correct / len(labels)
