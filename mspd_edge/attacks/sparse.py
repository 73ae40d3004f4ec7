"""``sparse_l0``: the per-image worst case of sparse-PGD (unprojected, then projected) and
Sparse-RS, the composition of sparse-AutoAttack (Zhong et al. 2024) at a chosen budget."""
import torch

from ..defaults import SPARSE_K, SPARSE_K_SIDE, SPARSE_RESTARTS, SPARSE_STEPS
from .sparse_pgd import sparse_pgd
from .sparse_rs import sparse_rs


def pixel_budget(height, width, k=SPARSE_K, side=SPARSE_K_SIDE):
    """``k`` pixels on a ``side`` x ``side`` image, scaled with the area (at least one)."""
    return max(1, round(k * height * width / side ** 2))


@torch.no_grad()
def _wrong(model, images, y):
    return model(images).argmax(1) != y


def sparse_l0(model, x, y, *, k=None, seed=0, steps=SPARSE_STEPS, restarts=SPARSE_RESTARTS, batch_size=256):
    """Adversarial images (NCHW, [0, 1]) for ``x`` (labels ``y``) that differ from it in at most
    ``k`` pixels each (all channels of a pixel count as one; default: :func:`pixel_budget`).

    Per image the first attack that fools ``model`` wins, in the order sparse-PGD unprojected,
    sparse-PGD projected (``steps`` iterations, ``restarts`` runs each), Sparse-RS (``steps``
    queries); images already misclassified are returned unchanged. Seeded: the noise comes from
    one generator on ``x``'s device, the global RNG is untouched.
    """
    k = pixel_budget(*x.shape[2:]) if k is None else int(k)
    if not 0 < k < x.shape[2] * x.shape[3]:
        raise ValueError(f"sparse_l0: k must be between 1 and the pixel count less one, got {k}")
    generator = torch.Generator(device=x.device).manual_seed(seed)
    return torch.cat([_batch(model, xb, yb, k, steps, restarts, generator)
                      for xb, yb in zip(x.split(batch_size), y.split(batch_size))])


def _batch(model, x, y, k, steps, restarts, generator):
    adv = x.clone()
    standing = (~_wrong(model, x, y)).nonzero().squeeze(1)
    attacks = (lambda a, b: sparse_pgd(model, a, b, k, steps=steps, restarts=restarts, generator=generator),
               lambda a, b: sparse_pgd(model, a, b, k, steps=steps, restarts=restarts, projected=True,
                                       generator=generator),
               lambda a, b: sparse_rs(model, a, b, k, queries=steps, generator=generator))
    for attack in attacks:
        if len(standing) == 0:
            break
        candidates = attack(x[standing], y[standing])
        hit = _wrong(model, candidates, y[standing])
        adv[standing[hit]] = candidates[hit]
        standing = standing[~hit]
    return adv
