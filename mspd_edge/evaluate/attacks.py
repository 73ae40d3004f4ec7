"""The evaluation's attacks: PGD-Linf, PGD-L2, AutoAttack (standard), Square and sparse-L0, by name.

Every attack acts on the image it is given, with the budget relative to it, and is
deterministic given a seed; the global RNG is left untouched. AutoAttack and Square come
from the ``pyautoattack`` package (``pip install 'mspd-edge[eval]'``); sparse-l0 (sparse-PGD
and Sparse-RS, their per-image worst case) from :mod:`mspd_edge.attacks`, its budget ``eps``
a number of pixels.
"""
import logging
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..attacks import pgd_linf, pixel_budget, sparse_l0
from ..defaults import SPARSE_STEPS

ATTACKS = ("pgd-linf", "pgd-l2", "autoattack", "square", "sparse-l0")
L2_EPS = 0.5                # default L2 budget; the L-inf ones default to the model's eps
PGD_STEPS = 10
SQUARE_QUERIES = 5000
PGD_STEP_FRACTION = 0.25    # PGD step size alpha = eps / 4 in both norms (2/255 at 8/255)
DEFAULT_STEPS = {"pgd-linf": PGD_STEPS, "pgd-l2": PGD_STEPS, "square": SQUARE_QUERIES,
                 "autoattack": 0,  # AutoAttack runs its own fixed schedule: steps is unused
                 "sparse-l0": SPARSE_STEPS}
GRAD_NORM_FLOOR = 1e-12     # keeps the L2 step finite where the gradient vanishes
AUTOATTACK_LOGGER = "auto-attack"
AUTOATTACK_INSTALL_HINT = "pip install 'mspd-edge[eval]'"


@dataclass(frozen=True)
class AttackSpec:
    """One attack and its budget: ``eps`` in the attack's norm (pixels for sparse-l0); ``steps``
    are PGD steps, Square queries or sparse-l0 iterations (unused by AutoAttack)."""
    name: str
    eps: float
    steps: int

    @property
    def norm(self):
        """``"L2"`` for pgd-l2, ``"L0"`` for sparse-l0, else ``"Linf"``."""
        return {"pgd-l2": "L2", "sparse-l0": "L0"}.get(self.name, "Linf")

    def describe(self):
        """The budget as the results' config records it."""
        if self.norm == "L0":
            return {"pixels": int(self.eps), "iterations": self.steps}
        return {"eps": self.eps, "steps": self.steps}

    @property
    def alpha(self):
        """PGD step size: ``eps * PGD_STEP_FRACTION`` (eps / 4) for both norms."""
        return self.eps * PGD_STEP_FRACTION


def attack_spec(name, eps=None, steps=None, model_eps=8 / 255, input_size=(3, 32, 32)):
    """The :class:`AttackSpec` for ``name``, defaults filled in (L-inf eps: ``model_eps``; L0:
    20 pixels on 32x32, scaled with the area of ``input_size``)."""
    if name not in ATTACKS:
        raise ValueError(f"unknown attack {name!r}; choose from {', '.join(ATTACKS)}")
    if eps is None:
        eps = {"pgd-l2": L2_EPS, "sparse-l0": pixel_budget(*input_size[1:])}.get(name, model_eps)
    spec = AttackSpec(name, float(eps), int(DEFAULT_STEPS[name] if steps is None else steps))
    if spec.eps <= 0 or (spec.steps < 1 and name != "autoattack"):
        raise ValueError(f"{name}: eps must be > 0 and steps >= 1, got eps={spec.eps}, steps={spec.steps}")
    return spec


def pgd_l2(model, x, y, eps, alpha, steps, random_start=True):
    """L2 PGD on cross-entropy; returns the adversarial images.

    Starts uniformly inside the eps-ball, takes steps of L2 length ``alpha`` along the
    gradient, and projects onto the eps-ball around ``x`` and onto [0, 1] after each.
    """
    delta = torch.zeros_like(x)
    if random_start:
        direction = torch.randn_like(x)
        radius = eps * torch.rand(len(x), device=x.device) ** (1 / x[0].numel())
        delta = direction / _l2_norms(direction) * radius.view(-1, *[1] * (x.dim() - 1))
    adv = (x + delta).clamp(0, 1)
    for _ in range(steps):
        adv.requires_grad_(True)
        loss = F.cross_entropy(model(adv), y, reduction="sum")
        (grad,) = torch.autograd.grad(loss, adv)
        delta = adv.detach() + alpha * grad / _l2_norms(grad).clamp_min(GRAD_NORM_FLOOR) - x
        delta = delta * (eps / _l2_norms(delta).clamp_min(GRAD_NORM_FLOOR)).clamp(max=1)
        adv = (x + delta).clamp(0, 1)  # clamping only shrinks delta: it stays in the ball
    return adv.detach()


def robust_flags(model, x, y, spec, seed=0, batch_size=256):
    """True where the model classifies x correctly AND the attack fails. Only clean-correct
    images are attacked. Runs on the device of the model; flags come back on ``x``'s device."""
    device = next(model.parameters()).device
    images, labels = x.to(device).contiguous(), y.to(device)   # AutoAttack's checks .view() gradients
    flags = _predict(model, images, batch_size) == labels
    attacked = flags.nonzero().squeeze(1)
    if len(attacked):
        run = {"autoattack": _run_autoattack, "square": _run_autoattack, "sparse-l0": _run_sparse}.get(
            spec.name, _run_pgd)
        with _seeded(seed, device):
            flags[attacked] = run(model, images[attacked], labels[attacked], spec, seed, batch_size)
    return flags.to(x.device)


def _run_pgd(model, x, y, spec, seed, batch_size):
    attack = pgd_linf if spec.name == "pgd-linf" else pgd_l2
    return torch.cat([
        _predict(model, attack(model, xb, yb, spec.eps, spec.alpha, spec.steps), batch_size) == yb
        for xb, yb in zip(x.split(batch_size), y.split(batch_size))])


def _run_sparse(model, x, y, spec, seed, batch_size):
    adv = sparse_l0(model, x, y, k=int(spec.eps), seed=seed, steps=spec.steps, batch_size=batch_size)
    return _predict(model, adv, batch_size) == y


def _run_autoattack(model, x, y, spec, seed, batch_size):
    try:
        from pyautoattack import AutoAttack
    except ImportError as e:
        raise ImportError(f"attack {spec.name!r} needs pyautoattack: {AUTOATTACK_INSTALL_HINT}") from e
    if spec.name == "square":
        adversary = AutoAttack(model, eps=spec.eps, norm=spec.norm, version="custom",
                               attacks=["square"], seed=seed, device=x.device)
        adversary.square.n_queries = spec.steps
    else:
        adversary = AutoAttack(model, eps=spec.eps, norm=spec.norm, version="standard",
                               seed=seed, device=x.device)
    adversary.verbose = False
    logger = logging.getLogger(AUTOATTACK_LOGGER)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        _, y_adv = adversary.run_standard_evaluation(x, y, batch_size=batch_size)
    finally:
        logger.setLevel(level)
    return y_adv == y


@torch.no_grad()
def _predict(model, x, batch_size):
    return torch.cat([model(xb).argmax(1) for xb in x.split(batch_size)])


def _l2_norms(t):
    """Per-image L2 norms of ``t``, shaped to broadcast against it."""
    return t.flatten(1).norm(dim=1).view(-1, *[1] * (t.dim() - 1))


@contextmanager
def _seeded(seed, device):
    """Seed torch for the block, restoring the global RNG state (CPU and ``device``) after."""
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        yield
