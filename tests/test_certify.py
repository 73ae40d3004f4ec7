"""Randomized smoothing: CERTIFY and PREDICT against cases whose answer is known by hand."""
import pytest
import torch
from scipy.stats import beta, norm

from mspd_edge.certify import (ABSTAIN, Certificate, certified_accuracy, certify_images, lower_confidence_bound,
                               max_radius, mean_radius, predict)

SHAPE = (3, 4, 4)
BOUNDARY = 0.5


def linear_model(constant=False):
    """Two classes split by the hyperplane x[0, 0, 0] = 0.5 (class 0 above it), so the smoothed
    classifier's true certified radius is the image's distance to it; ``constant``: always class 1."""
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(int(torch.tensor(SHAPE).prod()), 2))
    with torch.no_grad():
        model[1].weight.zero_()
        model[1].bias.copy_(torch.tensor([0.0, 1.0]))
        if not constant:
            model[1].weight[0, 0], model[1].weight[1, 0] = 1.0, -1.0
            model[1].bias.copy_(torch.tensor([-BOUNDARY, BOUNDARY]))
    return model.eval()


def image(offset):
    x = torch.full(SHAPE, 0.3)
    x[0, 0, 0] = BOUNDARY + offset
    return x


@pytest.mark.parametrize("n, radius_in_sigmas", [(1000, 2.46), (10_000, 3.20), (100_000, 3.81)])
def test_max_radius_is_the_bound_with_every_vote_right(n, radius_in_sigmas):
    assert max_radius(0.5, n, 0.001) == pytest.approx(0.5 * radius_in_sigmas, abs=0.005)
    assert lower_confidence_bound(n, n, 0.001) == pytest.approx(0.001 ** (1 / n))


def test_certify_with_every_vote_alike_returns_the_largest_radius():
    (cert,) = certify_images(linear_model(constant=True), image(0.0)[None], 0.25, n0=50, n=1000, alpha=0.001)
    assert cert.prediction == 1
    assert cert.radius == pytest.approx(max_radius(0.25, 1000, 0.001))


def test_certify_counts_and_radius_match_a_hand_computation():
    sigma, n0, n, alpha, seed, x = 0.25, 100, 1000, 0.001, 7, image(0.3)
    generator = torch.Generator().manual_seed(seed)    # the same draws, in the same order
    selection = torch.randn((n0, *SHAPE), generator=generator)
    estimation = torch.randn((n, *SHAPE), generator=generator)
    assert (x[0, 0, 0] + sigma * selection[:, 0, 0, 0] > BOUNDARY).sum() > n0 / 2       # class 0 is picked
    n_a = int((x[0, 0, 0] + sigma * estimation[:, 0, 0, 0] > BOUNDARY).sum())
    expected = sigma * norm.ppf(beta.ppf(alpha, n_a, n - n_a + 1))
    (cert,) = certify_images(linear_model(), x[None], sigma, n0=n0, n=n, alpha=alpha, seed=seed)
    assert cert == Certificate(0, pytest.approx(expected, rel=1e-9))


def test_certified_radius_is_a_lower_bound_of_the_true_one():
    sigma, distance = 0.25, 0.3      # a linear classifier's smoothed radius is the distance itself
    (cert,) = certify_images(linear_model(), image(distance)[None], sigma, n=20_000, seed=1)
    assert cert.prediction == 0
    assert distance - 0.03 < cert.radius <= distance


def test_certify_and_predict_abstain_on_the_boundary():
    model, x = linear_model(), image(0.0)
    (cert,) = certify_images(model, x[None], 0.5, n=1000, seed=3)
    assert cert == Certificate(ABSTAIN, 0.0)
    generator = torch.Generator().manual_seed(3)
    assert predict(model, x, 0.5, 1000, 0.001, generator, 2) == ABSTAIN
    assert predict(model, image(0.5), 0.5, 1000, 0.001, generator, 2) == 0


def test_certify_is_seeded_and_leaves_the_global_rng_alone():
    model, images = linear_model(), torch.stack([image(0.1), image(-0.2)])
    state = torch.get_rng_state()
    first = certify_images(model, images, 0.25, n=500, seed=11)
    assert torch.equal(torch.get_rng_state(), state)
    assert certify_images(model, images, 0.25, n=500, seed=11) == first
    assert [c.prediction for c in first] == [0, 1]


def test_certified_accuracy_and_mean_radius():
    certs = [Certificate(0, 0.6), Certificate(1, 0.3), Certificate(ABSTAIN, 0.0), Certificate(2, 1.0)]
    labels = [0, 1, 1, 0]
    assert certified_accuracy(certs, labels, (0.0, 0.25, 0.5, 0.75)) == {0.0: 0.5, 0.25: 0.5, 0.5: 0.25, 0.75: 0.0}
    assert mean_radius(certs, labels) == pytest.approx((0.6 + 0.3) / 4)
