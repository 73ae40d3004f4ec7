"""Certified robustness in the evaluation: randomized smoothing of the targets trained for it.

A target whose manifest names a ``smoothing_sigma`` is a base classifier trained with Gaussian
noise at that sigma; its smoothed classifier is certified (Cohen et al. 2019, :mod:`mspd_edge.certify`)
on the images of each condition of ``CERTIFY_CONDITIONS``, with the same seed for every
condition (common random numbers: the conditions differ only by their images).
"""
from dataclasses import dataclass

from ..certify import certified_accuracy, certify_images, max_radius, mean_radius
from ..defaults import CERTIFY_ALPHA, CERTIFY_N, CERTIFY_N0, CERTIFY_RADII

CERTIFY_CONDITIONS = ("none", "mspd", "reverted-white")


@dataclass(frozen=True)
class CertifySpec:
    """CERTIFY's sample sizes and confidence level."""
    n0: int = CERTIFY_N0
    n: int = CERTIFY_N
    alpha: float = CERTIFY_ALPHA

    def describe(self):
        """As the results' config records it."""
        return {"n0": self.n0, "n": self.n, "alpha": self.alpha}


def smoothing_sigmas(targets):
    """``{name: sigma}`` of the targets that are smoothed classifiers' base classifiers."""
    return {name: model.info.smoothing_sigma for name, model in targets.items()
            if getattr(getattr(model, "info", None), "smoothing_sigma", None)}


def certified_entry(model, x, y, sigma, spec, seed, batch_size, progress=None):
    """The results.json entry of one target and condition: certified accuracy at
    ``CERTIFY_RADII`` (keys "0.0", "0.25", ...), mean certified radius and the parameters."""
    certificates = certify_images(model, x, sigma, n0=spec.n0, n=spec.n, alpha=spec.alpha, seed=seed,
                                  batch_size=batch_size, progress=progress)
    accuracy = certified_accuracy(certificates, y.tolist(), CERTIFY_RADII)
    return {"sigma": sigma, **spec.describe(), "max_radius": max_radius(sigma, spec.n, spec.alpha),
            "accuracy": {str(float(r)): a for r, a in accuracy.items()},
            "mean_radius": mean_radius(certificates, y.tolist())}
