"""Helpers of the camera tests (imported by name: pytest puts this folder on sys.path)."""
import time
from pathlib import Path

import cv2
import numpy as np

EPS = 8 / 255


def smooth_frames(count, size=(64, 48), seed=0):
    """``count`` RGB frames of ``size`` (w, h): smooth random patterns, so codecs behave."""
    rng = np.random.default_rng(seed)
    w, h = size
    return [cv2.resize(rng.integers(0, 256, (max(2, h // 8), max(2, w // 8), 3), dtype=np.uint8),
                       (w, h), interpolation=cv2.INTER_LINEAR) for _ in range(count)]


def write_video(path, frames, fourcc="MJPG", fps=10.0):
    """Write RGB ``frames`` with OpenCV's VideoWriter; returns the path."""
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (w, h))
    assert writer.isOpened(), f"this OpenCV cannot write {fourcc} to {path}"
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return Path(path)


def decode_video(path):
    """Every frame of ``path`` as OpenCV decodes it, in RGB (the reference for the budget)."""
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    cap.release()
    return frames


def read_png_frames(folder):
    """``{index: RGB image}`` of the frame_*.png in ``folder``; asserts each one decodes."""
    out = {}
    for path in sorted(Path(folder).glob("frame_*.png")):
        bgr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        assert bgr is not None, f"{path} does not decode"
        out[int(path.stem.split("_")[1])] = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB) if bgr.ndim == 3 else bgr
    return out


def linf(a, b):
    return int(np.abs(a.astype(np.int16) - b.astype(np.int16)).max())


class SlowBackend:
    """A numpy backend that takes ``delay`` seconds per call (the protector falling behind)."""

    name = "slow"
    input_size = (3, 32, 32)
    default_eps = EPS

    def __init__(self, delay=0.02, fail_at=None):
        self.delay, self.fail_at, self.batches = delay, fail_at, []

    def predict(self, x, model):
        return np.zeros(len(x), np.int64)

    def run(self, x, labels, noise, settings):
        self.batches.append(len(x))
        if self.fail_at is not None and len(self.batches) > self.fail_at:
            raise RuntimeError("backend failed")
        time.sleep(self.delay)
        return np.clip(x + settings.eps * np.sign(noise[0][0]), 0, 1).astype(np.float32)
