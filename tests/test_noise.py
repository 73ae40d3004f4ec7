"""The noise contract that every backend shares."""
import numpy as np

from mspd_edge.noise import batch_noise, draw_noise, image_key, image_seed


def test_draw_noise_follows_the_contract():
    rng = np.random.default_rng(5)
    expected = [rng.uniform(-1, 1, (4, 2, 3, 8, 8)).astype(np.float32) for _ in range(3)]
    got = draw_noise(5, 4, (2, 3, 8, 8), 3)
    assert all(g.dtype == np.float32 and np.array_equal(g, e) for g, e in zip(got, expected))
    assert all(g.min() >= -1 and g.max() <= 1 for g in got)


KEYS = [(1, 2, 3, 4), (5, 6, 7, 8), (9, 10, 11, 12)]


def test_batch_noise_is_per_image_and_batch_invariant():
    whole = batch_noise(9, KEYS, 2, (3, 4, 4), 2)
    assert whole[0].shape == (2, 3, 3, 4, 4)
    for i, key in enumerate(KEYS):
        alone = draw_noise(image_seed(9, key), 2, (1, 3, 4, 4), 2)
        assert all(np.array_equal(w[:, i:i + 1], a) for w, a in zip(whole, alone))
    assert not np.array_equal(whole[0][:, 0], whole[0][:, 1])


def test_different_job_seeds_differ():
    assert not np.array_equal(batch_noise(1, KEYS[:1], 1, (1, 2, 2), 1)[0],
                              batch_noise(2, KEYS[:1], 1, (1, 2, 2), 1)[0])


def test_image_key_is_the_image_itself():
    """Same pixels, same key (a copy, another array); one changed value or another shape differs."""
    image = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    key = image_key(image)
    assert len(key) == 4 and all(0 <= w < 2**32 for w in key)
    assert image_key(image.copy()) == key and image_key(np.asfortranarray(image)) == key
    changed = image.copy()
    changed[4, 6, 2] ^= 1
    assert image_key(changed) != key
    assert image_key(image.reshape(7, 5, 3)) != key
