"""The reference and the torch backend in bf16/fp16: the shipped backbone on real CIFAR-10 images.

(The reference runs both on any CPU, emulated where the CPU lacks them; the CLI refuses what
does not run natively, tests/backends/test_precision.py.)

Only the network runs in reduced precision; the noise, clip, projection and mean stay float32,
so the budget holds exactly. Tolerances (measured, docs/precision.md): bf16 keeps 8 significant
bits, so the gradient's cosine stays above 0.9999 (measured 0.99997) and 99.7% of its signs agree
with fp32; a flipped sign moves its copy's step, so 98-99% of the protected 8-bit values are
identical. The limits (cosine 0.999, signs 99%, values 90%) keep a margin and still fail a
network that is not autocast-safe (e.g. fp16 overflow: NaN, or a half-precision loss).
fp16 (11 bits) is closer still: signs 99.97%, values 99.9% (limits 99.8%, 97%).
"""
import numpy as np
import pytest
import torch

from mspd_edge.noise import draw_noise
from mspd_edge.reference import input_grad, mcgs, network_precision
from mspd_edge.measure.compare import array_error
from mspd_edge.torch_backend import TorchBackend
from mspd_edge.zoo import load_model

EPS = 8 / 255
LIMITS = {"bf16": (0.999, 0.99, 0.90), "fp16": (0.9999, 0.998, 0.97)}   # cosine, signs, values


@pytest.fixture(scope="module")
def backbone():
    return load_model("cifar10-backbone")


@pytest.fixture(scope="module")
def images(cifar10):
    x = torch.from_numpy(cifar10[0][:4]).permute(0, 3, 1, 2).float().div(255).contiguous()
    return x, torch.from_numpy(cifar10[1][:4].astype(np.int64))


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_gradient_and_cascade_against_fp32(backbone, images, precision):
    x, y = images
    cosine, signs, values = LIMITS[precision]
    copies = (x.repeat(20, 1, 1, 1) + EPS * torch.from_numpy(draw_noise(0, 80, tuple(x.shape[1:]), 1)[0])).clamp(0, 1)
    ref = input_grad(backbone, copies, y.repeat(20))
    got = input_grad(backbone, copies, y.repeat(20), precision=precision, channels_last=True)
    assert got.dtype == torch.float32 and got.is_contiguous()
    err = array_error(got.numpy(), ref.numpy())
    assert err["cosine"] > cosine and err["sign_agreement"] > signs, err
    noise = draw_noise(1, 20, tuple(x.shape), 2)
    fp32 = mcgs(backbone, x, y, eps=EPS, noise=noise)
    low = mcgs(backbone, x, y, eps=EPS, noise=noise, precision=precision, channels_last=True)
    assert low.dtype == torch.float32
    # the projection is float32: the budget holds to float32 rounding, not to bf16's 2^-8
    assert (low - x).abs().max() <= EPS + 1e-6 and low.min() >= 0 and low.max() <= 1
    same = (torch.round(low * 255) == torch.round(fp32 * 255)).float().mean().item()
    assert same > values, same


def test_fp32_is_the_reference_unchanged(backbone, images):
    x, y = images
    noise = draw_noise(2, 4, tuple(x.shape), 2)
    plain = mcgs(backbone, x, y, eps=EPS, noise=noise, n_samples=4)
    explicit = mcgs(backbone, x, y, eps=EPS, noise=noise, n_samples=4, precision="fp32")
    assert torch.equal(plain, explicit)
    with pytest.raises(ValueError, match="fp32, bf16 or fp16"):
        network_precision("cpu", "int8")


def test_torch_backend_bf16_is_batch_invariant(backbone, images):
    """The fixed call shape holds in bf16: an image protected alone or in a batch is the same."""
    x, y = (t.numpy() for t in images)
    backend = TorchBackend(load_model("cifar10-backbone"), precision="bf16")
    assert backend.channels_last and backend.precision == "bf16" and backend.images_per_call == 2
    from mspd_edge.pipeline import Settings

    settings = Settings(seed=0, n_samples=4).resolved(backend)
    noise = [n.numpy() if hasattr(n, "numpy") else n for n in draw_noise(3, 4, x.shape, 2)]
    batch = backend.run(x, y, noise, settings)
    for k in (1, 2):   # image 1 shares its call with image 0 in the batch, image 2 with image 3
        alone = backend.run(x[k:k + 1], y[k:k + 1], [n[:, k:k + 1] for n in noise], settings)
        np.testing.assert_array_equal(batch[k:k + 1], alone)
