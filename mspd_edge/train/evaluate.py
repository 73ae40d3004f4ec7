"""Accuracy of a model on uint8 image tensors, clean or under PGD."""
import torch

from ..attacks import pgd_linf

PGD_STEP = 2 / 255  # the standard PGD step for eps 8/255


@torch.no_grad()
def _predict(model, x):
    return model(x).argmax(1)


def accuracy(model, images, labels, *, device="cpu", eps=0.0, steps=0, batch_size=500):
    """Share of ``images`` (uint8 [n,C,H,W]) classified as ``labels``; PGD-``steps`` when eps > 0.

    Under attack an image counts when it is classified correctly both clean and after PGD
    (the AutoAttack convention), so only the clean-correct images are attacked.
    """
    was_training = model.training
    model.eval()
    correct = 0
    for i in range(0, len(labels), batch_size):
        x = images[i:i + batch_size].float().div(255).to(device)
        y = labels[i:i + batch_size].to(device)
        hit = _predict(model, x) == y
        if eps > 0 and steps > 0 and hit.any():
            hit[hit.clone()] = _predict(model, pgd_linf(model, x[hit], y[hit], eps, PGD_STEP, steps)) == y[hit]
        correct += hit.sum().item()
    model.train(was_training)
    return correct / len(labels)
