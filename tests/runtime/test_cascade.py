"""The cascade driver on ONNX Runtime against the PyTorch reference (tiny random-weight model)."""
import numpy as np
import pytest
import torch

from mspd_edge.reference import input_grad, mcgs
from mspd_edge.noise import draw_noise
from mspd_edge.pipeline import Settings
from mspd_edge.runtime.cascade import OrtBackend, cascade

from runtime_helpers import model_input

N = 4


@pytest.fixture(scope="module")
def backend(tiny_bundle):
    with OrtBackend(tiny_bundle, threads=1) as b:
        yield b


@pytest.fixture(scope="module")
def batch(cifar_images, tiny_torch):
    x = model_input(cifar_images[0][:6])
    labels = tiny_torch[1](torch.from_numpy(x)).argmax(1).numpy()
    return x, labels, draw_noise(3, N, x.shape, 2)


@pytest.mark.parametrize("route", ["step", "grad"])
def test_cascade_matches_torch(backend, batch, tiny_torch, route):
    """Both epoch routes give the reference's float32 result up to rounding (same ops, same
    order; ORT sums convolutions in another order, so a near-zero gradient may flip sign)."""
    x, labels, noise = batch
    settings = Settings(eps=8 / 255, n_samples=N, seed=3)
    ref = mcgs(tiny_torch[0], torch.from_numpy(x), torch.from_numpy(labels), eps=8 / 255,
               n_samples=N, noise=[torch.from_numpy(e) for e in noise]).numpy()
    backend.route = route
    out = backend.run(x, labels, noise, settings)
    diff = np.abs(out - ref)
    assert diff.max() <= 2 * (8 / 255) / N + 1e-6 and (diff > 1e-6).mean() < 0.001


def test_split_batches_give_the_same_result(tiny_bundle, batch):
    """Splitting a batch (memory bound or CPU call size; here one image per call) never
    changes the output."""
    x, labels, noise = batch
    settings = Settings(eps=8 / 255, n_samples=N, seed=3, epochs="FB")
    with OrtBackend(tiny_bundle, threads=1, max_copy_values=N * 3 * 32 * 32) as small:
        assert small.images_per_call(N) == 1
        split = small.run(x, labels, noise, settings)
    with OrtBackend(tiny_bundle, threads=1, copies_per_call=None) as whole:
        assert whole.images_per_call(N) >= len(x)
        assert np.array_equal(split, whole.run(x, labels, noise, settings))


def test_labels_and_gradient_match_torch(backend, batch, tiny_torch):
    x, labels, _ = batch
    back, cls = tiny_torch
    with torch.no_grad():
        assert np.array_equal(backend.predict(x, "classifier"), cls(torch.from_numpy(x)).argmax(1).numpy())
        assert np.array_equal(backend.predict(x, "backbone"), back(torch.from_numpy(x)).argmax(1).numpy())
    got = backend.input_grad(x, labels)
    ref = input_grad(back, torch.from_numpy(x), torch.from_numpy(labels)).numpy()
    assert np.abs(got - ref).max() <= 1e-5 * np.abs(ref).max()


def test_numpy_cascade_algebra():
    """F then B with a fake SmoothStep, against the formulas of MCGS.md written out."""
    eps, lr = np.float32(0.1), 1.0
    x = np.array([[[[0.5, 0.95, 0.02]]]], np.float32)
    steps = iter([np.array([[[[0.6, 1.0, 0.0]]]], np.float32), np.array([[[[0.45, 0.9, 0.1]]]], np.float32)])
    out = cascade(x, np.zeros(1, np.int64), [None, None], eps=eps, lr=lr, epochs="FB",
                  smooth_step=lambda c, y, n, e, d: next(steps))
    x_f = np.clip(np.clip(x + lr * (np.array([0.6, 1.0, 0.0]) - x), x - eps, x + eps), 0, 1)
    x_b = np.clip(np.clip(x_f - lr * (np.array([0.45, 0.9, 0.1]) - x_f), x - eps, x + eps), 0, 1)
    assert np.allclose(out, x_b, atol=1e-7)


def test_bad_inputs_are_refused(backend, batch):
    x, labels, noise = batch
    with pytest.raises(ValueError, match="noise"):
        backend.run(x, labels, noise[:1], Settings(eps=8 / 255, n_samples=N, seed=0))
    with pytest.raises(ValueError, match="n_samples"):
        backend.run(x, labels, noise, Settings(eps=8 / 255, n_samples=N + 1, seed=0))
    with pytest.raises(ValueError, match="route"):
        OrtBackend(backend.bundle, route="fast")


@pytest.mark.parametrize("lr", [1.0, 0.7])
def test_cascade_algebra_is_the_same_on_torch_tensors(lr):
    """The algebra the TensorRT backend runs on torch CUDA tensors: bit-identical to numpy's, and
    to the formulas written with np.minimum/np.maximum and float32 scalars."""
    rng = np.random.default_rng(4)
    x = rng.random((3, 3, 8, 8), dtype=np.float32)
    steps = [rng.random(x.shape, dtype=np.float32) for _ in "FB"]
    eps = 8 / 255

    def run(to):
        fakes = iter([to(s) for s in steps])
        return cascade(to(x), to(np.zeros(3, np.int64)), [None, None], eps=eps, lr=lr, epochs="FB",
                       smooth_step=lambda c, y, n, e, d: next(fakes))

    on_numpy, on_torch = run(np.asarray), run(torch.from_numpy).numpy()
    assert on_numpy.dtype == np.float32 and np.array_equal(on_numpy, on_torch)
    e, current = np.float32(eps), x
    for sign, step in zip((1.0, -1.0), steps):
        moved = current + np.float32(sign * lr) * (step - current)
        current = np.clip(np.minimum(np.maximum(moved, x - e), x + e), np.float32(0), np.float32(1))
    assert np.array_equal(on_numpy, current)


@pytest.mark.parametrize("spinning", [False, True])
def test_cascade_threads_spin_only_when_asked(tiny_bundle, spinning):
    """Off by default (beside other work spinning cost ~2x); the label graphs never spin."""
    options = {} if not spinning else {"spinning": True}
    with OrtBackend(tiny_bundle, threads=1, **options) as b:
        for graph, expected in (("mcgs_step", spinning), ("backbone_grad", spinning), ("backbone", False)):
            options = b.runner(graph).make_session_options()
            try:
                entry = options.get_session_config_entry("session.intra_op.allow_spinning")
            except RuntimeError:   # not set: ORT's default, which spins
                entry = "1"
            assert entry == ("1" if expected else "0")
