"""``mspd-edge camera`` in process (click's runner): outputs, report, policies, clear errors.

Most tests use the fast fake backend of tests/conftest.py through the protect command's
backend registry; one runs a tiny random zoo model through the real torch backend.
"""
import json

import numpy as np
import pytest
from click.testing import CliRunner

from camera_helpers import decode_video, linf, read_png_frames, smooth_frames, write_video
from mspd_edge.cli.camera import camera_command

FAST = ["--n-samples", "2", "--seed", "3", "--stats-interval", "0"]


def invoke(*args):
    return CliRunner().invoke(camera_command, [str(a) for a in args])


def test_video_to_png_frames_with_the_torch_backend(video, tiny_manifest, tmp_path):
    path, decoded = video
    out, report = tmp_path / "frames", tmp_path / "report.json"
    result = invoke("--source", path, "--output", out, "--backbone", tiny_manifest, "--labels",
                    "couple", "--report", report, *FAST)
    assert result.exit_code == 0, result.output
    frames = read_png_frames(out)
    assert sorted(frames) == list(range(len(decoded)))
    assert all(frames[k].shape == decoded[k].shape and linf(frames[k], decoded[k]) <= 8 for k in frames)
    data = json.loads(report.read_text())
    assert data["counts"] == {"in": 12, "out": 12, "dropped": 0, "failed": 0}
    assert data["ended"] == "end of stream" and data["error"] is None
    assert data["settings"]["seed"] == 3 and data["settings"]["backbone"] == "tiny"
    assert data["settings"]["drop"] is False and data["linf_255_max"] <= 8
    assert data["source"]["kind"] == "file" and data["outputs"][0]["written"] == 12
    assert "seed 3" in result.stderr and "end of stream" in result.stderr


def test_video_to_lossless_video(video, fake_cli, tmp_path):
    path, decoded = video
    result = invoke("-s", path, "-o", tmp_path / "out.mkv", *FAST)
    assert result.exit_code == 0, result.output
    back = decode_video(tmp_path / "out.mkv")
    assert len(back) == len(decoded) and all(linf(a, b) <= 8 for a, b in zip(back, decoded))
    assert len((tmp_path / "out.mkv.timestamps.csv").read_text().splitlines()) == len(decoded) + 1


def test_lossy_video_only_when_asked(video, fake_cli, tmp_path):
    path, _ = video
    refused = invoke("-s", path, "-o", tmp_path / "out.avi", "--codec", "MJPG", *FAST)
    assert refused.exit_code == 1 and "--lossy" in refused.stderr
    accepted = invoke("-s", path, "-o", tmp_path / "out.avi", "--codec", "MJPG", "--lossy", *FAST)
    assert accepted.exit_code == 0 and "weakens the protection" in accepted.stderr


def test_folder_source_any_sizes(fake_cli, tmp_path):
    from PIL import Image

    src = tmp_path / "photos"
    src.mkdir()
    images = [smooth_frames(1, (40, 30), seed=1)[0], smooth_frames(1, (17, 9), seed=2)[0]]
    for k, image in enumerate(images):
        Image.fromarray(image).save(src / f"img{k}.png")
    result = invoke("-s", src, "-o", tmp_path / "out", *FAST)
    assert result.exit_code == 0, result.output
    frames = read_png_frames(tmp_path / "out")
    assert all(frames[k].shape == images[k].shape and linf(frames[k], images[k]) <= 8 for k in (0, 1))


def test_folder_with_an_unreadable_image(fake_cli, tmp_path):
    from PIL import Image

    src = tmp_path / "photos"
    src.mkdir()
    Image.fromarray(smooth_frames(1)[0]).save(src / "a.png")
    (src / "b.png").write_bytes(b"broken")
    Image.fromarray(smooth_frames(1)[0]).save(src / "c.png")
    result = invoke("-s", src, "-o", tmp_path / "out", *FAST)
    assert result.exit_code == 1 and f"error: {src / 'b.png'}: " in result.stderr
    assert sorted(read_png_frames(tmp_path / "out")) == [0, 2]   # named by position in the folder


def test_max_frames_and_drop_option(video, fake_cli, tmp_path):
    path, _ = video
    result = invoke("-s", path, "-o", tmp_path / "out", "--max-frames", 5, "--drop",
                    "--report", tmp_path / "r.json", *FAST)
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["ended"] == "max frames" and data["counts"]["in"] == 5 and data["settings"]["drop"]
    assert data["counts"]["out"] + data["counts"]["dropped"] == 5


@pytest.mark.parametrize("source, message", [
    ("no/such/clip.avi", "no such file or folder"), ("93", "cannot open camera 93")])
def test_unopenable_source(source, message, fake_cli, tmp_path):
    result = invoke("-s", source, "-o", tmp_path / "out", *FAST)
    assert result.exit_code == 1 and f"error: {message}" in result.stderr
    assert not (tmp_path / "out").exists()


def _undecodable(kind, tmp_path):
    """Bytes no frame decodes from: zeros, noise, or a real video's header followed by noise
    (which OpenCV opens; only its first read fails)."""
    noise = np.random.default_rng(0).integers(0, 256, 20000, dtype=np.uint8).tobytes()
    if kind == "header":
        return write_video(tmp_path / "real.avi", smooth_frames(3)).read_bytes()[:600] + noise
    return b"\x00" * 1000 if kind == "zeros" else noise


@pytest.mark.parametrize("kind", ["zeros", "noise", "header"])
@pytest.mark.parametrize("output", ["out", "new/out.mkv"])
def test_an_undecodable_video_file_is_one_error_and_no_output(kind, output, fake_cli, tmp_path):
    bad = tmp_path / "clip.mp4"
    bad.write_bytes(_undecodable(kind, tmp_path))
    result = invoke("-s", bad, "-o", tmp_path / output, *FAST)
    assert result.exit_code == 1 and result.stderr.splitlines() == [
        f"error: cannot open video file {bad}: not a video OpenCV can decode (no FFmpeg backend, "
        "unknown format, or damaged)" + ("; no frame decodes" if kind == "header" else "")]
    assert not (tmp_path / output.split("/")[0]).exists()


def test_a_source_that_gives_no_frame_leaves_no_output(fake_cli, tmp_path, monkeypatch):
    """Found only while streaming (a live source, a folder of unreadable images): the folders
    the outputs made and their header-only timestamps files are removed."""
    from mspd_edge.cli import camera as command
    from mspd_edge.camera.sources import CaptureSource

    silent = tmp_path / "silent.avi"
    silent.write_bytes(_undecodable("header", tmp_path))
    monkeypatch.setattr(command, "open_source", lambda spec, *a: CaptureSource(spec, "url"))
    result = invoke("-s", silent, "-o", tmp_path / "a" / "out", *FAST)
    assert result.exit_code == 1 and "opened but gave no frame" in result.stderr
    assert not (tmp_path / "a").exists()
    monkeypatch.undo()
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "x.png").write_bytes(b"broken")
    (tmp_path / "kept").mkdir()
    result = invoke("-s", broken, "-o", tmp_path / "kept" / "out.mkv", *FAST)
    assert result.exit_code == 1 and f"error: {broken / 'x.png'}: " in result.stderr
    assert list((tmp_path / "kept").iterdir()) == []                  # the folder that was there stays


def test_max_pixels_of_a_folder_source(fake_cli, tmp_path):
    from PIL import Image

    src = tmp_path / "photos"
    src.mkdir()
    Image.fromarray(smooth_frames(1, (100, 75))[0]).save(src / "big.png")
    refused = invoke("-s", src, "-o", tmp_path / "a", "--max-pixels", 5000, *FAST)
    assert refused.exit_code == 1 and f"error: {src / 'big.png'}: too large: 100x75 pixels, more than " \
        "the limit of 5000 (--max-pixels 7500 allows it)" in refused.stderr
    allowed = invoke("-s", src, "-o", tmp_path / "b", "--max-pixels", 7500, *FAST)
    assert allowed.exit_code == 0 and sorted(read_png_frames(tmp_path / "b")) == [0]


def test_an_eps_over_the_backbones_budget_is_warned_of_first(video, tiny_manifest, tmp_path):
    path, _ = video
    result = invoke("-s", path, "-o", tmp_path / "out", "--backbone", tiny_manifest, "--labels",
                    "couple", "--eps", 16, "--max-frames", 1, "-q", *FAST)
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [
        "warning: --eps 16 is above the 8/255 the backbone tiny was trained for: each value may "
        "change by up to 16/255, which shows (large budgets destroy the image), for no robustness "
        "the backbone was trained to give"]


def test_existing_frames_need_overwrite(video, fake_cli, tmp_path):
    path, _ = video
    assert invoke("-s", path, "-o", tmp_path / "out", "--max-frames", 2, *FAST).exit_code == 0
    again = invoke("-s", path, "-o", tmp_path / "out", "--max-frames", 1, *FAST)
    assert again.exit_code == 1 and "--overwrite" in again.stderr
    replaced = invoke("-s", path, "-o", tmp_path / "out", "--max-frames", 1, "--overwrite", *FAST)
    assert replaced.exit_code == 0 and sorted(read_png_frames(tmp_path / "out")) == [0]


def test_usage_errors(video, fake_cli, tmp_path):
    path, _ = video
    assert invoke("-s", path, *FAST).exit_code == 2                       # no output at all
    wrong = invoke("-s", path, "-o", tmp_path / "o", "--backend", "nope", *FAST)
    assert wrong.exit_code == 2 and "nope" in wrong.output


def test_disconnect_mid_stream_keeps_what_was_written(fake_cli, tmp_path, monkeypatch):
    from mspd_edge.cli import camera as command
    from mspd_edge.camera.sources import CaptureSource

    clip = write_video(tmp_path / "live.avi", smooth_frames(4))
    monkeypatch.setattr(command, "open_source", lambda spec, *a: CaptureSource(spec, "url"))
    result = invoke("-s", clip, "-o", tmp_path / "out", "--report", tmp_path / "r.json", *FAST)
    assert result.exit_code == 1 and "disconnected or stopped after 4 frame" in result.stderr
    assert sorted(read_png_frames(tmp_path / "out")) == [0, 1, 2, 3]
    assert json.loads((tmp_path / "r.json").read_text())["ended"] == "source error"


def test_registered_in_the_mspd_edge_group():
    from mspd_edge.cli import main

    assert main.commands["camera"] is camera_command
