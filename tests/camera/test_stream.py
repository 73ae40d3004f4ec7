"""The threaded stream: order, budget, per-frame noise, drop/block policies, stop, errors."""
import threading
import time

import cv2
import numpy as np
import pytest

from camera_helpers import EPS, SlowBackend, linf, smooth_frames
from mspd_edge.camera import Frame, SourceError, open_source, protect_stream
from mspd_edge.pipeline import Settings, protect_images

LEVELS = round(255 * EPS)


def test_every_frame_of_a_video_in_order_within_budget(video, tiny_backend):
    path, decoded = video
    with open_source(str(path)) as source:
        stream = protect_stream(source, tiny_backend, Settings(n_samples=2, seed=5, batch_size=4))
        out = list(stream)
    assert [f.index for f in out] == list(range(len(decoded)))
    assert [f.timestamp for f in out] == sorted(f.timestamp for f in out)
    for frame, source_frame in zip(out, decoded):
        assert frame.image.shape == source_frame.shape == (60, 80, 3)
        assert np.array_equal(frame.original, source_frame)
        assert linf(frame.image, source_frame) <= LEVELS
    assert sum(linf(f.image, d) > 0 for f, d in zip(out, decoded)) == len(decoded)   # it protects
    assert (stream.stats.captured, stream.stats.out, stream.stats.dropped) == (12, 12, 0)


def test_frame_k_is_image_k_of_the_job(tiny_backend):
    """Same noise streams as protect_images: identical results at the same batch size."""
    frames = smooth_frames(5, (40, 30), seed=3)
    settings = Settings(n_samples=2, seed=11, batch_size=1).resolved(tiny_backend)
    expected = [image for _, image, _ in protect_images(frames, tiny_backend, settings)]
    got = [f.image for f in protect_stream(frames, tiny_backend, settings)]
    assert all(np.array_equal(a, b) for a, b in zip(got, expected))


def test_results_do_not_depend_on_batching(tiny_backend):
    frames = smooth_frames(6, (32, 32), seed=4)
    one, four = ([f.image for f in protect_stream(frames, tiny_backend,
                                                  Settings(n_samples=2, seed=2, batch_size=size))]
                 for size in (1, 4))
    differing = np.mean([np.mean(a != b) for a, b in zip(one, four)])
    assert differing < 0.01   # float summation order may flip a rare sign


def test_seed_and_settings_are_resolved_and_reported(tiny_backend):
    stream = protect_stream(smooth_frames(1), tiny_backend, Settings(n_samples=2))
    assert stream.settings.seed is not None and stream.settings.eps == EPS
    assert stream.settings.batch_size >= 1 and stream.queue_size == 2 * stream.settings.batch_size


def test_bgr_frames_come_back_bgr(tiny_backend):
    rgb = smooth_frames(2, seed=8)
    settings = Settings(n_samples=2, seed=1, batch_size=2)
    from_rgb = [f.image for f in protect_stream(rgb, tiny_backend, settings)]
    bgr = [cv2.cvtColor(f, cv2.COLOR_RGB2BGR) for f in rgb]
    from_bgr = [f.image for f in protect_stream(bgr, tiny_backend, settings, color="bgr")]
    assert all(np.array_equal(cv2.cvtColor(b, cv2.COLOR_BGR2RGB), a) for a, b in zip(from_rgb, from_bgr))


def _live(count, period):
    """Frames arriving every ``period`` seconds, like a camera."""
    for k, image in enumerate(smooth_frames(count, (16, 16))):
        time.sleep(period)
        yield Frame(k, image, k * period)


def test_drop_oldest_when_the_protector_falls_behind():
    backend = SlowBackend(delay=0.05)
    stream = protect_stream(_live(30, 0.005), backend, Settings(n_samples=1, seed=0, batch_size=1),
                            drop=True, queue_size=2)
    indices = [f.index for f in stream]
    stats = stream.stats
    assert stats.dropped > 0 and stats.out == len(indices) and stats.snapshot()["queued"] == 0
    assert stats.out + stats.dropped == stats.captured == 30
    assert indices == sorted(indices) and indices[-1] == 29   # the newest frames are kept


def test_block_keeps_every_frame():
    backend = SlowBackend(delay=0.01)
    stream = protect_stream(_live(15, 0.001), backend, Settings(n_samples=1, seed=0, batch_size=2),
                            drop=False, queue_size=2)
    assert [f.index for f in stream] == list(range(15))
    assert stream.stats.dropped == 0 and max(backend.batches) <= 2


def test_stop_drains_every_accepted_frame():
    backend = SlowBackend(delay=0.02)
    stream = protect_stream(_live(1000, 0.002), backend, Settings(n_samples=1, seed=0, batch_size=2),
                            queue_size=4)
    out = []
    for frame in stream:
        out.append(frame.index)
        if len(out) == 3:
            stream.stop()
    assert out == list(range(len(out))) and len(out) < 1000
    assert stream.stats.captured == len(out) and stream.capture_finished(timeout=30)


def test_stop_from_another_thread():
    stream = protect_stream(_live(10_000, 0.001), SlowBackend(0.005), Settings(n_samples=1, seed=0))
    first = threading.Event()   # stop once frames flow, however loaded the machine is
    stopper = threading.Thread(target=lambda: (first.wait(timeout=30), stream.stop()))
    stopper.start()
    out = []
    for frame in stream:
        out.append(frame.index)
        first.set()
    stopper.join()
    assert 0 < len(out) < 10_000 and out == list(range(len(out)))


def test_close_from_another_thread_ends_the_iteration_though_the_backend_is_busy():
    # The camera's second Ctrl-C: the consumer ends at its next step, not when the backend does.
    stream = protect_stream(_live(10_000, 0.001), SlowBackend(5.0),
                            Settings(n_samples=1, seed=0, batch_size=1))
    closer = threading.Timer(0.2, stream.close)
    closer.start()
    started = time.monotonic()
    out = [frame.index for frame in stream]
    closer.join()
    assert out == [] and time.monotonic() - started < 4.0   # the first batch takes 5 s


def test_a_failing_source_ends_the_stream_after_its_frames():
    def frames():
        yield from smooth_frames(3)
        raise SourceError("camera unplugged")

    stream = protect_stream(frames(), SlowBackend(0), Settings(n_samples=1, seed=0))
    got = []
    with pytest.raises(SourceError, match="unplugged"):
        for frame in stream:
            got.append(frame.index)
    assert got == [0, 1, 2]


def test_a_failing_backend_is_raised():
    stream = protect_stream(smooth_frames(8), SlowBackend(0, fail_at=1),
                            Settings(n_samples=1, seed=0, batch_size=1))
    with pytest.raises(RuntimeError, match="backend failed"):
        list(stream)


def test_breaking_out_ends_the_threads():
    stream = protect_stream(_live(10_000, 0.001), SlowBackend(0.001), Settings(n_samples=1, seed=0))
    for frame in stream:
        break
    assert stream.capture_finished(timeout=30)


def test_ground_truth_labels_are_refused(tiny_backend):
    with pytest.raises(ValueError, match="gt"):
        protect_stream([], tiny_backend, Settings(label_mode="gt"))


def test_gray_and_alpha_frames(tiny_backend):
    gray = smooth_frames(1, (24, 20))[0][:, :, 0]
    rgba = np.dstack([smooth_frames(1, (24, 20), seed=2)[0], np.full((20, 24), 77, np.uint8)])
    out = list(protect_stream([gray, rgba], tiny_backend, Settings(n_samples=2, seed=0)))
    assert out[0].image.shape == gray.shape and linf(out[0].image, gray) <= LEVELS
    assert out[1].image.shape == rgba.shape and np.array_equal(out[1].image[:, :, 3], rgba[:, :, 3])
