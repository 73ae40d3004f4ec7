"""The evaluation's attacks break the shipped non-robust model, stay in budget, and are seeded."""
import sys

import pytest
import torch

from mspd_edge.attacks import pgd_linf
from mspd_edge.data import load_npz
from mspd_edge.evaluate.attacks import ATTACKS, L2_EPS, AttackSpec, attack_spec, pgd_l2, robust_flags
from mspd_edge.zoo import load_model

N_IMAGES = 16
MAX_ROBUST = 1                 # "near zero": at most 1 of the 16 images survives a full-strength attack
MIN_CLEAN = 8                  # the model gets about 80% right: enough images for the check to mean something
SQUARE_QUERIES = 1000          # of the 5000 default: enough at 8/255 on this model (300 leave 6 of 11)
BUDGETS = {"pgd-l2": {"eps": L2_EPS}, "square": {"steps": SQUARE_QUERIES}}
WEAK = {"eps": 1 / 255, "steps": 1}  # an attack that leaves most clean-correct images robust


@pytest.fixture(scope="module")
def batch(cifar10_dir):
    """``(x float32 NCHW in [0, 1], y)``: the first 16 CIFAR-10 test images."""
    images, labels, _ = load_npz(cifar10_dir / "test.npz", limit=N_IMAGES)
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255, torch.from_numpy(labels)


@pytest.fixture(scope="module")
def model():
    return load_model("cifar10-target-nonrobust")


def clean_correct(model, x, y):
    with torch.no_grad():
        return model(x).argmax(1) == y


@pytest.mark.parametrize("name", ATTACKS)
def test_attacks_break_the_nonrobust_model(model, batch, name):
    x, y = batch
    flags = robust_flags(model, x, y, attack_spec(name, **BUDGETS.get(name, {})))
    assert clean_correct(model, x, y).sum() >= MIN_CLEAN
    assert flags.dtype == torch.bool and flags.shape == (N_IMAGES,)
    assert flags.sum() <= MAX_ROBUST


@pytest.mark.parametrize("attack,norm,eps", [(pgd_l2, 2, L2_EPS), (pgd_linf, float("inf"), 8 / 255)],
                         ids=["pgd-l2", "pgd-linf"])
def test_pgd_stays_in_budget_and_image_range(model, batch, attack, norm, eps):
    x, y = batch
    torch.manual_seed(0)
    adv = attack(model, x, y, eps, alpha=eps, steps=3)  # alpha = eps: every step needs projecting
    assert (adv - x).flatten(1).norm(p=norm, dim=1).max() <= eps + 1e-5
    assert adv.min() >= 0 and adv.max() <= 1


def test_robust_flags_only_where_clean_correct_and_seeded(model, batch):
    x, y = batch
    spec = attack_spec("pgd-linf", **WEAK)
    rng = torch.get_rng_state()
    flags = robust_flags(model, x, y, spec, seed=3, batch_size=5)
    assert torch.equal(torch.get_rng_state(), rng)
    correct = clean_correct(model, x, y)
    assert flags.any() and not (flags & ~correct).any()
    assert torch.equal(robust_flags(model, x, y, spec, seed=3, batch_size=5), flags)


def test_attack_spec_defaults_and_unknown_name():
    linf, l2 = attack_spec("pgd-linf"), attack_spec("pgd-l2")
    assert (linf.eps, linf.steps, linf.norm) == (pytest.approx(8 / 255), 10, "Linf")
    assert linf.alpha == pytest.approx(2 / 255)
    assert (l2.eps, l2.steps, l2.alpha, l2.norm) == (0.5, 10, 0.125, "L2")
    assert attack_spec("square").steps == 5000
    assert attack_spec("autoattack", model_eps=4 / 255).eps == pytest.approx(4 / 255)
    assert attack_spec("pgd-l2", eps=1.0, steps=20, model_eps=4 / 255) == AttackSpec("pgd-l2", 1.0, 20)
    sparse = attack_spec("sparse-l0")
    assert (sparse.eps, sparse.norm, sparse.describe()) == (20, "L0", {"pixels": 20, "iterations": sparse.steps})
    assert attack_spec("sparse-l0", input_size=(3, 224, 224)).eps == 20 * 49
    assert linf.describe() == {"eps": linf.eps, "steps": 10}
    with pytest.raises(ValueError, match="pgd-linf, pgd-l2, autoattack, square, sparse-l0"):
        attack_spec("fgsm")
    with pytest.raises(ValueError, match="eps must be > 0"):
        attack_spec("pgd-linf", eps=0)


def test_autoattack_without_the_package_names_the_extra(model, batch, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyautoattack", None)
    with pytest.raises(ImportError, match=r"mspd-edge\[eval\]"):
        robust_flags(model, *batch, attack_spec("autoattack"))
