"""The noise contract that every backend shares."""
import numpy as np

from mspd_edge.noise import batch_noise, draw_noise, image_seed


def test_draw_noise_follows_the_contract():
    rng = np.random.default_rng(5)
    expected = [rng.uniform(-1, 1, (4, 2, 3, 8, 8)).astype(np.float32) for _ in range(3)]
    got = draw_noise(5, 4, (2, 3, 8, 8), 3)
    assert all(g.dtype == np.float32 and np.array_equal(g, e) for g, e in zip(got, expected))
    assert all(g.min() >= -1 and g.max() <= 1 for g in got)


def test_batch_noise_is_per_image_and_batch_invariant():
    whole = batch_noise(9, [0, 1, 2], 2, (3, 4, 4), 2)
    assert whole[0].shape == (2, 3, 3, 4, 4)
    for i in range(3):
        alone = draw_noise(image_seed(9, i), 2, (1, 3, 4, 4), 2)
        assert all(np.array_equal(w[:, i:i + 1], a) for w, a in zip(whole, alone))
    assert not np.array_equal(whole[0][:, 0], whole[0][:, 1])


def test_different_job_seeds_differ():
    assert not np.array_equal(batch_noise(1, [0], 1, (1, 2, 2), 1)[0], batch_noise(2, [0], 1, (1, 2, 2), 1)[0])
