"""Batching, labels and noise of the backend-independent pipeline, on the torch backend."""

import numpy as np
import pytest
import torch

from mspd_edge.reference import mcgs
from mspd_edge.noise import draw_noise, image_key, image_seed
from mspd_edge.pipeline import Settings, auto_batch_size, protect_images

EPS = 8 / 255


@pytest.fixture(scope="module")
def backend(tiny_backend):
    return tiny_backend


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(1)
    return [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(5)]


def _run(backend, images, labels=None, **kw):
    settings = Settings(n_samples=2, seed=3, **kw).resolved(backend)
    return [(out, label) for _, out, label in protect_images(images, backend, settings, labels=labels)]


def test_batch_size_does_not_change_results(backend, images):
    one = _run(backend, images, batch_size=1)
    many = _run(backend, images, batch_size=4)
    assert all(np.array_equal(a, b) and la == lb for (a, la), (b, lb) in zip(one, many))


def test_result_does_not_depend_on_the_rest_of_the_job(backend, images):
    """The same image gives the same output alone, in another order, or among other images."""
    whole = _run(backend, images)
    alone = _run(backend, images[2:3])
    reordered = _run(backend, images[::-1])
    assert np.array_equal(whole[2][0], alone[0][0]) and np.array_equal(whole[2][0], reordered[-3][0])


def test_image_result_equals_reference_on_its_own_seed(backend, images):
    out, label = _run(backend, images)[2]
    x = torch.from_numpy(images[2].transpose(2, 0, 1)[None].astype(np.float32) / 255)
    noise = [torch.from_numpy(n) for n in draw_noise(image_seed(3, image_key(images[2])), 2, tuple(x.shape), 2)]
    ref = mcgs(backend.backbone, x, torch.tensor([label]), eps=EPS, n_samples=2, noise=noise)
    expected = np.rint(ref[0].numpy().transpose(1, 2, 0) * 255).clip(images[2].astype(int) - 8, images[2].astype(int) + 8)
    assert np.array_equal(out, expected.astype(np.uint8))


def test_label_modes(backend, images):
    x = np.stack([im.transpose(2, 0, 1) for im in images]).astype(np.float32) / 255
    by_classifier = [label for _, label in _run(backend, images)]
    assert by_classifier == backend.predict(x, "classifier").tolist()
    by_backbone = [label for _, label in _run(backend, images, label_mode="couple")]
    assert by_backbone == backend.predict(x, "backbone").tolist()
    given = [label for _, label in _run(backend, images, label_mode="gt", labels=[9, 8, 7, 6, 5])]
    assert given == [9, 8, 7, 6, 5]
    with pytest.raises(ValueError, match="gt"):
        _run(backend, images, label_mode="gt")


def test_settings_resolution(backend):
    settings = Settings(n_samples=20).resolved(backend)
    assert settings.eps == EPS and isinstance(settings.seed, int) and settings.batch_size == 16
    assert auto_batch_size(20, (3, 224, 224)) == 1
    with pytest.raises(ValueError, match="label mode"):
        Settings(label_mode="nope").resolved(backend)
