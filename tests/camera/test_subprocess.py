"""``python -m mspd_edge.cli camera`` in a subprocess: end to end with the embedded default models,
and Ctrl-C (SIGINT) midway: the frames already captured are written, each one complete.

The SIGINT tests run twice: with a tiny random zoo model (always) and with the embedded
defaults by name (skipped until their weights are shipped).
"""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from camera_helpers import decode_video, linf, read_png_frames, smooth_frames, write_video
from limits import COMMAND_SECONDS, EVENT_SECONDS

REPO = Path(__file__).resolve().parents[2]
QUIET = ["--stats-interval", "0"]


def camera(*args, stderr):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}   # keep it light on a shared machine
    return subprocess.Popen([sys.executable, "-m", "mspd_edge.cli", "camera", *map(str, args)], cwd=REPO,
                            env=env, stdout=subprocess.DEVNULL, stderr=stderr)


def wait_for(path, process, timeout=EVENT_SECONDS, text=None):
    """Wait while ``process`` runs until ``path`` exists (and holds ``text``)."""
    deadline = time.monotonic() + timeout
    while not path.exists() or (text is not None and text not in path.read_text(errors="replace")):
        assert process.poll() is None, f"the command ended before {path.name} {text or 'was written'}"
        assert time.monotonic() < deadline, f"no {path.name} {text or ''} after {timeout} s"
        time.sleep(0.02)


def check_frames(folder, decoded):
    """Frames are consecutive from frame_000000, decode completely, and respect the budget."""
    frames = read_png_frames(folder)
    assert sorted(frames) == list(range(len(frames)))
    for k, image in frames.items():
        assert image.shape == decoded[k].shape and linf(image, decoded[k]) <= 8
    assert not [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]
    return len(frames)


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory):
    path = write_video(tmp_path_factory.mktemp("clip") / "long.avi", smooth_frames(150, (64, 48)))
    return path, decode_video(path)


@pytest.fixture(params=["tiny", "embedded"])
def model_args(request, tiny_manifest):
    if request.param == "tiny":
        return ["--backbone", tiny_manifest, "--labels", "couple"]
    return request.getfixturevalue("embedded_models")


def test_end_to_end_with_the_default_models(embedded_models, video, tmp_path):
    path, decoded = video
    with open(tmp_path / "stderr.txt", "wb") as err:
        process = camera("-s", path, "-o", tmp_path / "out", "--seed", 7, "--report",
                         tmp_path / "r.json", *embedded_models, *QUIET, stderr=err)
        assert process.wait(timeout=COMMAND_SECONDS) == 0, (tmp_path / "stderr.txt").read_text()
    assert check_frames(tmp_path / "out", decoded) == len(decoded)
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["settings"]["backbone"] == "cifar10-backbone"
    assert report["settings"]["classifier"] == "cifar10-classifier"
    assert report["settings"]["seed"] == 7 and report["settings"]["n_samples"] == 20


def test_ctrl_c_midway_writes_every_captured_frame(model_args, long_clip, tmp_path):
    path, decoded = long_clip
    out = tmp_path / "out"
    with open(tmp_path / "stderr.txt", "wb") as err:
        process = camera("-s", path, "-o", out, "--batch-size", 2, "--queue", 4, "--report",
                         tmp_path / "r.json", *model_args, *QUIET, stderr=err)
        try:
            wait_for(out / "frame_000000.png", process)
            process.send_signal(signal.SIGINT)
            status = process.wait(timeout=EVENT_SECONDS)
        finally:
            process.kill()
    log = (tmp_path / "stderr.txt").read_text()
    assert status == 0, log
    assert "stopping: protecting and writing the frames already captured" in log
    written = check_frames(out, decoded)
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["ended"] == "interrupted" and 0 < written < len(decoded)
    assert report["counts"]["in"] == report["counts"]["out"] == written   # captured = written


def test_second_ctrl_c_aborts_leaving_only_complete_frames(tiny_manifest, long_clip, tmp_path):
    path, decoded = long_clip
    out = tmp_path / "out"
    with open(tmp_path / "stderr.txt", "wb") as err:
        process = camera("-s", path, "-o", out, "--batch-size", 1, "--queue", 64, "--backbone",
                         tiny_manifest, "--labels", "couple", *QUIET, stderr=err)   # a long drain
        try:
            wait_for(out / "frame_000000.png", process)
            process.send_signal(signal.SIGINT)
            # The second once the first was handled: two pending SIGINTs are delivered as one.
            wait_for(tmp_path / "stderr.txt", process, text="stopping:")
            process.send_signal(signal.SIGINT)
            status = process.wait(timeout=EVENT_SECONDS)
        finally:
            process.kill()
    log = (tmp_path / "stderr.txt").read_text()
    assert status == 130, log
    assert "aborted" in log
    assert check_frames(out, decoded) < len(decoded)
