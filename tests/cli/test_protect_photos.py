"""``mspd-edge protect`` on photos as a user runs it: the result contract, the budget asked for,
formats, metadata, permissions, skipped files, an unwritable output, and Ctrl-C in a subprocess.

Photos come from scikit-image (``skimage.data``), written as camera-like JPEGs by the tests.
"""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from PIL import ExifTags, Image, ImageCms

from limits import EVENT_SECONDS
from cli_helpers import EMBEDDED, digest, error_lines, invoke
from mspd_edge.data import load_npz
from mspd_edge.io import read_image

ROTATE_90_CW = 6
SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _camera_jpeg(path, photo, orientation=1):
    exif = Image.Exif()
    exif[ExifTags.Base.Make], exif[ExifTags.Base.Model] = "Nikon", "Z 8"
    exif[ExifTags.Base.Copyright], exif[ExifTags.Base.Orientation] = "(c) A. Photographer", orientation
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(photo).save(path, quality=90, exif=exif, icc_profile=SRGB)
    return path


@pytest.fixture
def shoot(tmp_path):
    """A folder of photos: two JPEGs from skimage (one EXIF-turned) and a PNG."""
    root = tmp_path / "shoot"
    _camera_jpeg(root / "coffee.jpg", skimage.data.coffee())
    _camera_jpeg(root / "chelsea.jpg", skimage.data.chelsea(), orientation=ROTATE_90_CW)
    Image.fromarray(skimage.data.astronaut()).save(root / "astronaut.png")
    return root


def test_an_image_gives_the_same_bytes_alone_among_others_in_any_order_and_resumed(shoot, tmp_path, fake_cli):
    files = sorted(shoot.iterdir())
    assert invoke("protect", shoot / "coffee.jpg", "-o", tmp_path / "alone", "--seed", 3).exit_code == 0
    assert invoke("protect", shoot, "-o", tmp_path / "folder", "--seed", 3).exit_code == 0
    assert invoke("protect", *reversed(files), "-o", tmp_path / "reversed", "--seed", 3,
                  "--batch-size", 1).exit_code == 0
    assert invoke("protect", files[0], "-o", tmp_path / "resumed", "--seed", 3).exit_code == 0
    result = invoke("protect", shoot, "-o", tmp_path / "resumed", "--seed", 3)   # the rest, after a stop
    assert result.exit_code == 0 and "protected 2 image(s) (1 skipped" in result.stderr
    whole = digest((tmp_path / "folder").iterdir())
    assert len(whole) == 3 and digest((tmp_path / "alone").iterdir())["coffee.png"] == whole["coffee.png"]
    assert digest((tmp_path / "reversed").iterdir()) == whole == digest((tmp_path / "resumed").iterdir())


@pytest.mark.parametrize("eps, levels, note", [("1.5", 2, True), ("3", 3, False), ("0.6", 1, True)])
def test_the_budget_is_the_one_asked_for_or_said(shoot, tmp_path, fake_cli, eps, levels, note):
    result = invoke("protect", shoot / "astronaut.png", "-o", tmp_path / "out", "--eps", eps,
                    "--report", tmp_path / "report.json")
    assert result.exit_code == 0, result.output
    said = f"note: --eps {eps}: the outputs change by at most {levels}/255 (whole 8-bit levels)"
    assert (said in result.stderr) == note
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["settings"]["eps_255"] == levels and report["images"][0]["linf_255"] == levels


@pytest.mark.parametrize("eps", ["0.5", "0.2"])
def test_a_budget_of_zero_levels_is_a_usage_error(shoot, tmp_path, fake_cli, eps):
    result = invoke("protect", shoot, "-o", tmp_path / "out", "--eps", eps)
    assert result.exit_code == 2 and "rounds to 0 levels of the 8-bit outputs" in result.stderr
    assert fake_cli.calls == [] and not (tmp_path / "out").exists()


def test_metadata_is_kept_and_the_orientation_applied(shoot, tmp_path, fake_cli):
    result = invoke("protect", shoot, "-o", tmp_path / "out", "--seed", 0, "--report", tmp_path / "r.json")
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "out" / "chelsea.png") as out:
        exif = out.getexif()
        assert out.size == (300, 451) and out.info["icc_profile"] == SRGB   # chelsea is 451x300, turned
        assert exif[ExifTags.Base.Model] == "Z 8" and exif[ExifTags.Base.Copyright] == "(c) A. Photographer"
        assert ExifTags.Base.Orientation not in exif
    records = {Path(r["input"]).name: r for r in json.loads((tmp_path / "r.json").read_text())["images"]}
    assert records["chelsea.jpg"]["metadata"] == ["icc", "exif"] and records["astronaut.png"]["metadata"] == []


def test_webp_output_and_a_same_name_collision(shoot, tmp_path, fake_cli):
    rgba = np.dstack([skimage.data.astronaut()[:200, :300], np.full((200, 300), 128, np.uint8)])
    Image.fromarray(rgba).save(shoot / "coffee.webp", lossless=True)   # same stem as coffee.jpg
    result = invoke("protect", shoot, "-o", tmp_path / "out", "--format", "webp")
    assert result.exit_code == 1
    assert error_lines(result) == [f"error: {shoot / 'coffee.webp'}: its output {tmp_path / 'out' / 'coffee.webp'} "
                                   f"is also that of {shoot / 'coffee.jpg'} (same name but for the suffix or "
                                   "case): rename one of them"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["astronaut.webp", "chelsea.webp", "coffee.webp"]
    before, after = (read_image(p).pixels for p in (shoot / "astronaut.png", tmp_path / "out" / "astronaut.webp"))
    assert after.shape == before.shape and 0 < np.abs(after.astype(int) - before).max() <= 8


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_outputs_and_the_report_honour_the_umask(shoot, tmp_path, fake_cli, umask):
    previous = os.umask(umask)
    try:
        result = invoke("protect", shoot, "-o", tmp_path / "out", "--report", tmp_path / "out" / "report.json")
    finally:
        os.umask(previous)
    assert result.exit_code == 0, result.output
    modes = {p.name: p.stat().st_mode & 0o777 for p in (tmp_path / "out").iterdir()}
    assert len(modes) == 4 and set(modes.values()) == {0o666 & ~umask}


def test_an_unwritable_output_or_report_folder_fails_before_any_computation(shoot, tmp_path, fake_cli):
    (tmp_path / "file").write_text("x")
    result = invoke("protect", shoot, "-o", tmp_path / "file" / "out")
    assert result.exit_code == 2 and fake_cli.calls == []
    assert result.stderr.splitlines() == [f"error: {tmp_path / 'file' / 'out'}: cannot write into this folder: "
                                          "Not a directory"]
    result = invoke("protect", shoot, "-o", tmp_path / "out", "--report", tmp_path / "file" / "r.json")
    assert result.exit_code == 2 and fake_cli.calls == [] and not (tmp_path / "out").exists()
    assert result.stderr.startswith(f"error: {tmp_path / 'file' / 'r.json'}: cannot write the report there")


def test_unsupported_files_of_a_folder_are_reported_as_skipped(shoot, tmp_path, fake_cli):
    frames = [Image.fromarray(skimage.data.astronaut()[:64, :64, :]), Image.fromarray(skimage.data.coffee()[:64, :64])]
    frames[0].save(shoot / "clip.gif", save_all=True, append_images=frames[1:])
    (shoot / "notes.txt").write_text("shot list")
    result = invoke("protect", shoot, "-o", tmp_path / "out", "--report", tmp_path / "r.json")
    assert result.exit_code == 0, result.output
    assert "protected 3 image(s) (2 skipped, 0 failed)" in result.stderr
    assert f"skipped: {shoot / 'clip.gif'}: not a supported image file (.gif; supported: PNG, JPEG, WEBP, " \
           "BMP, TIFF)" in result.stderr
    skipped = json.loads((tmp_path / "r.json").read_text())["skipped"]
    assert [(Path(s["input"]).name, s["reason"]) for s in skipped] == [("clip.gif", "unsupported"),
                                                                       ("notes.txt", "unsupported")]


# ---- Ctrl-C: a real process, the embedded models ---------------------------------------------

def test_one_ctrl_c_in_a_batch_stops_after_the_image_being_written(tmp_path, embedded_models):
    """Six photos in one batch (the cascade runs once; writing each with its SSIM takes a
    while): one Ctrl-C at the first output stops before the next write, exit 130, the rest
    pending (a stop between batches only let such a batch finish with exit 0)."""
    (tmp_path / "in").mkdir()
    for k in range(6):   # 1024x512 each: one batch of the default size and memory
        photo = np.roll(skimage.data.astronaut(), 40 * k, axis=1)
        Image.fromarray(np.concatenate([photo, photo])).save(tmp_path / "in" / f"{k}.png")
    report = tmp_path / "report.json"
    command = [str(Path(sys.executable).with_name("mspd-edge")), "protect", str(tmp_path / "in"), "-o",
               str(tmp_path / "out"), *EMBEDDED, "--n-samples", "2", "--seed", "1", "--report", str(report)]
    code, stderr = _run_until_first_output(command, tmp_path / "out", signals=1)
    assert code == 130, stderr
    result = json.loads(report.read_text())
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert result["interrupted"] is True and 1 <= len(written) < 6 and len(result["pending"]) == 6 - len(written)
    assert "stopping after the current image(s)" in stderr and "interrupted: protected" in stderr


def _run_until_first_output(command, outdir, signals, timeout=EVENT_SECONDS):
    """Start ``command``, send ``signals`` SIGINTs once its first output appears; its result."""
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout
    while not list(outdir.glob("*.png")) and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    for _ in range(signals):
        child.send_signal(signal.SIGINT)
        time.sleep(0.05)
    _, stderr = child.communicate(timeout=timeout)
    return child.returncode, stderr


@pytest.mark.parametrize("signals", [1, 2])
def test_ctrl_c_stops_cleanly_with_a_report_and_the_job_resumes(tmp_path, cifar10_dir, embedded_models,
                                                                signals):
    (tmp_path / "in").mkdir()
    for k, image in enumerate(load_npz(cifar10_dir / "test.npz", limit=24)[0]):
        Image.fromarray(image).save(tmp_path / "in" / f"{k:02d}.png")
    job = [tmp_path / "in", "-o", tmp_path / "out", *EMBEDDED, "--seed", 5, "--batch-size", 2]
    command = [str(Path(sys.executable).with_name("mspd-edge")), "protect", *map(str, job),
               "--report", str(tmp_path / "report.json")]
    code, stderr = _run_until_first_output(command, tmp_path / "out", signals)
    assert code == 130, stderr
    report = json.loads((tmp_path / "report.json").read_text())
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert report["interrupted"] and report["pending"] and written   # no temporary file among them
    assert written == sorted(Path(r["output"]).name for r in report["images"])
    assert report["counts"]["written"] + report["counts"]["pending"] == 24
    assert "interrupted: protected" in stderr and "run the same command with --seed 5 again" in stderr

    result = invoke("protect", *job)
    assert result.exit_code == 0 and f"({len(written)} skipped, 0 failed)" in result.stderr
    assert invoke("protect", tmp_path / "in", "-o", tmp_path / "whole", *job[3:]).exit_code == 0
    assert digest((tmp_path / "out").iterdir()) == digest((tmp_path / "whole").iterdir())


@pytest.mark.parametrize("command", ["protect", "revert"])
def test_one_line_before_the_work_says_which_model_a_photo_goes_through(shoot, tmp_path, fake_cli, cifar10,
                                                                       command):
    """A 32x32 backbone on photos: one note naming it and the ImageNet pair, before the progress
    bar (where a user sees it); none on thumbnails."""
    result = invoke(command, shoot, "-o", tmp_path / "photos")
    notes = [line for line in result.stderr.splitlines() if "photo(s) go through" in line]
    assert result.exit_code == 0 and len(notes) == 1
    assert notes[0].startswith("note: 3 photo(s) go through fake-backbone") and "32x32" in notes[0]
    assert "mspd-edge models pull Singh2023Revisiting_ViT-S-ConvStem Tian2022Deeper_DeiT-B" in notes[0]
    assert result.stderr.index(notes[0]) < result.stderr.index(f"{command}ing:") < \
        result.stderr.index(f"{command}ed 3 image(s)")
    small = tmp_path / "small"
    small.mkdir()
    Image.fromarray(cifar10[0][0]).save(small / "thumb.png")
    result = invoke(command, small, "-o", tmp_path / "thumbs")
    assert result.exit_code == 0 and "photo(s)" not in result.stderr
