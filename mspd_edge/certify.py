"""Randomized smoothing (Cohen, Rosenfeld and Kolter 2019): PREDICT and CERTIFY.

The smoothed classifier ``g(x) = argmax_c P(f(x + e) = c)``, ``e ~ N(0, sigma^2 I)``, of a base
classifier ``f`` (a torch model on [0, 1] images; the noise is added there, unclipped, as in
locuslab/smoothing ``core.py``). Both procedures count the base classifier's votes on noisy
copies drawn from an explicit ``torch.Generator`` (seeded, the global RNG untouched) in batches:

* PREDICT: ``n`` votes; the top class unless the two-sided binomial test of its count against the
  runner-up's (p = 1/2) has a p-value above ``alpha``: then ABSTAIN.
* CERTIFY: ``n0`` votes pick the class cA, ``n`` fresh votes count it (nA); pA_lower is the
  one-sided (1 - alpha) Clopper-Pearson lower bound of nA / n; ABSTAIN below 1/2, else the
  certified L2 radius ``sigma * Phi^-1(pA_lower)``.

With every vote for cA the bound is ``alpha^(1/n)``: the largest radius ``n`` can certify is
``sigma * Phi^-1(alpha^(1/n))`` (2.46 sigma at n = 1,000 and alpha = 0.001).
"""
from dataclasses import dataclass

import numpy as np
import torch
from scipy.stats import beta, binomtest, norm

from .defaults import CERTIFY_ALPHA, CERTIFY_N, CERTIFY_N0

ABSTAIN = -1
BATCH_SIZE = 1000


@dataclass(frozen=True)
class Certificate:
    """CERTIFY's answer for one image: the class (``ABSTAIN`` = -1) and its certified L2 radius."""
    prediction: int
    radius: float


def lower_confidence_bound(n_a, n, alpha):
    """One-sided (1 - alpha) Clopper-Pearson lower bound on the success rate of ``n_a`` in ``n``
    (statsmodels' ``proportion_confint(n_a, n, alpha=2 * alpha, method="beta")[0]``)."""
    return 0.0 if n_a == 0 else float(beta.ppf(alpha, n_a, n - n_a + 1))


def max_radius(sigma, n, alpha=CERTIFY_ALPHA):
    """The largest radius CERTIFY can return with ``n`` votes: ``sigma * Phi^-1(alpha^(1/n))``."""
    return float(sigma * norm.ppf(alpha ** (1 / n)))


def vote_counts(model, x, sigma, num, generator, num_classes, batch_size=BATCH_SIZE):
    """How often ``model`` predicts each class on ``num`` noisy copies of the CHW image ``x``."""
    counts = np.zeros(num_classes, dtype=np.int64)
    with torch.no_grad():
        while num > 0:
            size = min(batch_size, num)
            num -= size
            noise = torch.randn((size, *x.shape), generator=generator, device=x.device, dtype=x.dtype)
            predictions = model(x.unsqueeze(0) + sigma * noise).argmax(1)
            counts += np.bincount(predictions.cpu().numpy(), minlength=num_classes)[:num_classes]
    return counts


def predict(model, x, sigma, n, alpha, generator, num_classes, batch_size=BATCH_SIZE):
    """PREDICT: the smoothed class of ``x``, or ``ABSTAIN`` where the binomial test is not significant."""
    counts = vote_counts(model, x, sigma, n, generator, num_classes, batch_size)
    top, second = np.argsort(-counts, kind="stable")[:2]
    count1, count2 = int(counts[top]), int(counts[second])
    if binomtest(count1, count1 + count2, p=0.5).pvalue > alpha:
        return ABSTAIN
    return int(top)


def certify(model, x, sigma, n0, n, alpha, generator, num_classes, batch_size=BATCH_SIZE):
    """CERTIFY: a :class:`Certificate` for the CHW image ``x`` (radius 0 where it abstains)."""
    selection = vote_counts(model, x, sigma, n0, generator, num_classes, batch_size)
    c_a = int(selection.argmax())
    n_a = int(vote_counts(model, x, sigma, n, generator, num_classes, batch_size)[c_a])
    p_a = lower_confidence_bound(n_a, n, alpha)
    if p_a < 0.5:
        return Certificate(ABSTAIN, 0.0)
    return Certificate(c_a, float(sigma * norm.ppf(p_a)))


def certify_images(model, images, sigma, *, n0=CERTIFY_N0, n=CERTIFY_N, alpha=CERTIFY_ALPHA, seed=0,
                   batch_size=BATCH_SIZE, num_classes=None, progress=None):
    """CERTIFY every image of the NCHW batch ``images`` (in [0, 1]); one generator seeded with
    ``seed`` on the model's device draws all the noise, so the answers repeat exactly.
    ``progress``: called once per image (a tqdm ``update``, say). Returns a list of Certificates."""
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    num_classes = num_classes or _num_classes(model, images, device)
    out = []
    for image in images:
        out.append(certify(model, image.to(device), sigma, n0, n, alpha, generator, num_classes, batch_size))
        if progress is not None:
            progress()
    return out


def certified_accuracy(certificates, labels, radii):
    """``{radius: fraction}``: the share of images certified correct with a radius >= ``radius``
    (at radius 0: correct and not abstained)."""
    hits = [(c.prediction == int(y), c.radius) for c, y in zip(certificates, labels)]
    return {r: sum(ok and radius >= r for ok, radius in hits) / len(hits) for r in radii}


def mean_radius(certificates, labels):
    """The average certified radius (Zhai et al. 2020): the radius where correct, 0 elsewhere."""
    return float(np.mean([c.radius if c.prediction == int(y) else 0.0 for c, y in zip(certificates, labels)]))


def _num_classes(model, images, device):
    with torch.no_grad():
        return model(images[:1].to(device)).shape[1]
