"""Conditions: parents, JPEG, protection and reversion stay within the budget."""
from dataclasses import replace

import numpy as np
import pytest

from mspd_edge.evaluate.conditions import ABLATIONS, CONDITIONS, MAIN_CONDITIONS, check_conditions, jpeg, make_condition
from mspd_edge.imaging import budget_levels
from mspd_edge.pipeline import Settings


def test_conditions_pull_in_their_parents_in_protocol_order():
    assert check_conditions(["reverted-gray"]) == ("mspd", "reverted-gray")
    assert check_conditions(["mspd+jpeg50", "none"]) == ("none", "mspd", "mspd+jpeg50")
    assert set(MAIN_CONDITIONS + ABLATIONS) == set(CONDITIONS)


def test_unknown_condition_is_named():
    with pytest.raises(ValueError, match="mspd-N3"):
        check_conditions(["mspd", "mspd-N3"])


def test_jpeg_round_trip_changes_the_image_and_keeps_its_shape(cifar10_dir):
    from mspd_edge.data import load_npz

    images, _, _ = load_npz(cifar10_dir / "test.npz", limit=4)
    out = jpeg(images)
    assert out.shape == images.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - images).max() > 0


@pytest.fixture(scope="module")
def cifar_images(cifar10_dir):
    from mspd_edge.data import load_npz

    images, labels, _ = load_npz(cifar10_dir / "test.npz", limit=3)
    return images, labels


def test_protect_and_revert_stay_within_the_budget(tiny_backend, cifar_images):
    images, labels = cifar_images
    settings = Settings(n_samples=2, seed=3, label_mode="couple").resolved(tiny_backend)
    backends = {"defence": tiny_backend, "graybox": None}
    protected, defence_labels = make_condition("mspd", images, backends, settings, labels)
    reverted, _ = make_condition("reverted-white", protected, backends, settings, labels)
    levels = budget_levels(settings.eps)
    assert defence_labels.shape == (3,)
    assert 0 < np.abs(protected.astype(int) - images).max() <= levels
    assert np.abs(reverted.astype(int) - protected).max() <= levels
    ablation, _ = make_condition("mspd-F", images, backends, settings, labels)
    forward_only, _ = make_condition("mspd", images, backends, replace(settings, epochs="F"), labels)
    np.testing.assert_array_equal(ablation, forward_only)


def test_gray_box_reversion_needs_a_gray_box_backend(tiny_backend, cifar_images):
    images, labels = cifar_images
    settings = Settings(n_samples=1, seed=0, label_mode="couple").resolved(tiny_backend)
    with pytest.raises(ValueError, match="gray-box"):
        make_condition("reverted-gray", images, {"defence": tiny_backend, "graybox": None}, settings, labels)
