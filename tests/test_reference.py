"""The reference cascade: hand-computed cases, the noise contract, an independent implementation."""
import numpy as np
import pytest
import torch
import torch.nn as nn

from mspd_edge.reference import mcgs, revert, smooth_step
from mspd_edge.pipeline import check_epochs
from mspd_edge.noise import draw_noise
from mspd_edge.zoo.dm_resnet import DMPreActResNet

EPS = 8 / 255


class SumModel(nn.Module):
    """logits = [-sum(x), 0]: for label 0 the CE gradient is sigmoid(sum x) > 0 everywhere."""

    def forward(self, x):
        s = x.flatten(1).sum(1)
        return torch.stack([-s, torch.zeros_like(s)], 1)


def _explicit_noise(values, shape):
    """One noise tensor per epoch: copy i is the constant values[e][i]."""
    return [torch.tensor(v, dtype=torch.float32).view(-1, *[1] * len(shape)).expand(len(v), *shape).clone()
            for v in values]


def test_smooth_step_by_hand():
    # forward step: z_i = x + eps u_i, stepped = max(z_i - eps, x - eps) = x + eps (max(u_i, 0) - 1)
    x = torch.full((1, 1, 2, 2), 0.5)
    noise = _explicit_noise([[0.5, -0.5]], x.shape)[0]
    out = smooth_step(SumModel(), x, torch.tensor([0]), noise, EPS, -1.0)
    torch.testing.assert_close(out, x - 0.75 * EPS, rtol=0, atol=1e-7)


@pytest.mark.parametrize("lr", [1.0, 0.5])
def test_cascade_by_hand(lr):
    # F: xF = x + lr eps mean(max(u,0) - 1); B: xB_k = xF + eps mean(min(v,0) + 1), xB = xF - lr (xB_k - xF)
    x = torch.full((1, 3, 4, 4), 0.5)
    noise = _explicit_noise([[0.5, -0.5], [0.5, -0.5]], x.shape)
    out = mcgs(SumModel(), x, torch.tensor([0]), eps=EPS, n_samples=2, lr=lr, noise=noise)
    expected = (x - lr * 0.75 * EPS - lr * 0.75 * EPS).clamp(x - EPS, x + EPS)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-7)


def test_cascade_clips_to_unit_range():
    x = torch.zeros(1, 1, 2, 2)
    out = mcgs(SumModel(), x, torch.tensor([0]), eps=EPS, n_samples=2,
               noise=_explicit_noise([[0.5, -0.5], [0.5, -0.5]], x.shape))
    assert out.min() >= 0 and torch.equal(out, torch.zeros_like(out))


def test_seed_draws_the_contract_noise():
    model = DMPreActResNet(base_width=4).eval()
    x, y = torch.rand(2, 3, 32, 32), torch.tensor([1, 7])
    rng = np.random.default_rng(123)
    explicit = [rng.uniform(-1, 1, (3, 2, 3, 32, 32)).astype(np.float32) for _ in range(2)]
    by_seed = mcgs(model, x, y, eps=EPS, n_samples=3, seed=123)
    by_noise = mcgs(model, x, y, eps=EPS, n_samples=3, noise=[torch.from_numpy(n) for n in explicit])
    assert torch.equal(by_seed, by_noise)
    assert all(np.array_equal(a, b) for a, b in zip(draw_noise(123, 3, (2, 3, 32, 32), 2), explicit))


def _independent_mcgs(model, x, y, eps, lr, epochs, noise):
    """A second implementation: one copy at a time, torch.func.grad, explicit projections."""
    def loss(img, label):
        return nn.functional.cross_entropy(model(img[None]), label[None], reduction="sum")

    grad_fn = torch.func.grad(loss)
    current = x.clone()
    for epoch, eps_noise in zip(epochs, noise):
        stepped = torch.zeros_like(current)
        for b in range(x.shape[0]):
            for i in range(eps_noise.shape[0]):
                z = torch.clamp(current[b] + eps * eps_noise[i, b], 0, 1)
                g = grad_fn(z, y[b])
                s = -1.0 if epoch == "F" else 1.0
                zs = z + s * eps * torch.sign(g)
                zs = torch.clamp(torch.minimum(torch.maximum(zs, current[b] - eps), current[b] + eps), 0, 1)
                stepped[b] += zs / eps_noise.shape[0]
        move = stepped - current if epoch == "F" else current - stepped
        current = torch.clamp(torch.minimum(torch.maximum(current + lr * move, x - eps), x + eps), 0, 1)
    return current


@pytest.mark.parametrize("epochs,lr", [("FB", 1.0), ("FBFB", 0.7), ("B", 1.0)])
def test_matches_independent_implementation(epochs, lr):
    torch.manual_seed(0)
    model = DMPreActResNet(base_width=4).eval()
    x, y = torch.rand(2, 3, 32, 32), torch.tensor([3, 5])
    noise = [torch.from_numpy(n) for n in draw_noise(7, 3, tuple(x.shape), len(epochs))]
    ours = mcgs(model, x, y, eps=EPS, n_samples=3, lr=lr, epochs=epochs, noise=noise)
    theirs = _independent_mcgs(model, x, y, EPS, lr, epochs, noise)
    assert (ours - theirs).abs().max().item() <= 1e-6
    assert (ours - x).abs().max().item() <= EPS + 1e-6


def test_backbone_untouched():
    model = DMPreActResNet(base_width=4).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    mcgs(model, torch.rand(1, 3, 32, 32), torch.tensor([0]), eps=EPS, n_samples=2, seed=0)
    assert model.training
    assert all(p.grad is None for p in model.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_revert_reflects():
    model = DMPreActResNet(base_width=4).eval()
    x, y = torch.rand(1, 3, 32, 32), torch.tensor([2])
    again = mcgs(model, x, y, eps=EPS, n_samples=2, seed=1)
    torch.testing.assert_close(revert(model, x, y, eps=EPS, n_samples=2, seed=1), (2 * x - again).clamp(0, 1))


@pytest.mark.parametrize("bad", ["", "FX", "fb"])
def test_bad_epochs(bad):
    with pytest.raises(ValueError, match="epochs"):
        check_epochs(bad)


def test_noise_shape_checked():
    with pytest.raises(ValueError, match="noise shape"):
        mcgs(SumModel(), torch.rand(2, 1, 2, 2), torch.tensor([0, 0]), eps=EPS, n_samples=2,
             noise=[torch.zeros(2, 1, 1, 2, 2)] * 2)


def test_package_exposes_the_reference_lazily():
    import mspd_edge
    import mspd_edge.torch_backend  # noqa: F401  (imports the reference module)

    assert mspd_edge.mcgs is mcgs and mspd_edge.revert is revert and callable(mspd_edge.load_model)
