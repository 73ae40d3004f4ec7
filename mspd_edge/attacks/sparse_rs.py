"""Sparse-RS (Croce et al. 2022, "Sparse-RS: a versatile framework for query-efficient sparse
black-box adversarial attacks"), the L0 pixel attack: random search over sets of k pixels.

Each image keeps a set of k pixels set to random corners of the colour cube (every channel 0
or 1). A query swaps a few of them (a share ``P_INIT`` of k, shrinking on the paper's schedule)
for as many pixels outside the set, with fresh corners; the swap is kept where the margin
(true-class logit minus the best other) falls. An image leaves the search once misclassified.
Only predictions are used: it is blind to gradient masking.
"""
import torch

from .sparse_pgd import margin

P_INIT = 0.3
# (share of the 10,000-query schedule, divisor of P_INIT from there on), as in the authors' code
SCHEDULE = ((0.001, 2), (0.005, 4), (0.02, 5), (0.05, 6), (0.1, 8), (0.2, 10), (0.4, 12), (0.6, 15), (0.8, 20))


def changed_pixels(query, queries, k):
    """How many pixels query ``query`` of ``queries`` swaps (at least one)."""
    progress, divisor = query / queries, 1
    for start, value in SCHEDULE:
        if progress > start:
            divisor = value
    return max(int(P_INIT / divisor * k), 1)


def _pick(allowed, count, generator):
    """``count`` random positions per row among the True entries of ``allowed`` [n, positions]."""
    scores = torch.rand(allowed.shape, generator=generator, device=allowed.device)
    return scores.masked_fill(~allowed, -1.0).topk(count, dim=1).indices


def _corners(n, c, positions, generator, device):
    return torch.randint(0, 2, (n, c, positions), generator=generator, device=device).float()


def _apply(x, chosen, colours):
    flat_x = x.flatten(2)
    gate = chosen[:, None, :].to(x.dtype)
    return (flat_x * (1 - gate) + colours * gate).view_as(x)


@torch.no_grad()
def sparse_rs(model, x, y, k, *, queries, generator=None):
    """Adversarial images for the NCHW batch ``x`` in [0, 1] (labels ``y``), each differing from
    ``x`` in at most ``k`` pixels: the first misclassified candidate, else ``x`` itself."""
    n, c, h, w = x.shape
    out = x.clone()
    chosen = torch.zeros((n, h * w), dtype=torch.bool, device=x.device)
    chosen.scatter_(1, _pick(torch.ones_like(chosen), k, generator), True)
    colours = _corners(n, c, h * w, generator, x.device)
    logits = model(_apply(x, chosen, colours))
    best = margin(logits, y)
    index = torch.arange(n, device=x.device)
    for query in range(queries):
        hit = best < 0
        out[index[hit]] = _apply(x[hit], chosen[hit], colours[hit])
        keep = ~hit
        if not keep.any():
            break
        x, y, chosen, colours, best, index = (t[keep] for t in (x, y, chosen, colours, best, index))
        count = changed_pixels(query, queries, k)
        leave, enter = _pick(chosen, count, generator), _pick(~chosen, count, generator)
        new_chosen = chosen.clone()
        new_chosen.scatter_(1, leave, False)
        new_chosen.scatter_(1, enter, True)
        new_colours = colours.clone()
        new_colours.scatter_(2, enter[:, None, :].expand(-1, c, -1), _corners(len(x), c, count, generator, x.device))
        loss = margin(model(_apply(x, new_chosen, new_colours)), y)
        better = loss < best
        chosen[better], colours[better], best[better] = new_chosen[better], new_colours[better], loss[better]
    hit = best < 0
    out[index[hit]] = _apply(x[hit], chosen[hit], colours[hit])
    return out
