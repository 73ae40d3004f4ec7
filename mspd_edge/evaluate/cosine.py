"""Gradient alignment between the backbone and a target (the paper's Table XI).

MSPD transfers because robust models have aligned input gradients: the cosine similarity of
``d CE(f(x), y) / d x`` of the backbone and of a target, per image, on the original images.
"""
import torch
import torch.nn.functional as F


def _input_grads(model, x, y):
    device = next(model.parameters()).device
    x = x.to(device).requires_grad_(True)
    loss = F.cross_entropy(model(x), y.to(device), reduction="sum")
    (grad,) = torch.autograd.grad(loss, x)
    return grad.flatten(1).cpu()


def gradient_cosine(backbone, target, x, y, batch_size=256):
    """``{"n", "mean", "std"}`` of the per-image input-gradient cosine of ``backbone`` and ``target``."""
    cosines = [F.cosine_similarity(_input_grads(backbone, x[i:i + batch_size], y[i:i + batch_size]),
                                   _input_grads(target, x[i:i + batch_size], y[i:i + batch_size]), dim=1)
               for i in range(0, len(y), batch_size)]
    cosines = torch.cat(cosines)
    return {"n": len(cosines), "mean": float(cosines.mean()), "std": float(cosines.std(unbiased=False))}
