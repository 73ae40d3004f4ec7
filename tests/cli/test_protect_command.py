"""``mspd-edge protect`` / ``revert`` end to end: CIFAR-10 test images written as files.

Most tests swap the models for the fast fake backend of conftest.py (the CLI behaviour does not
depend on them); the ``e2e`` tests run the embedded default models by name.
"""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import ExifTags, Image

from limits import COMMAND_SECONDS
from cli_helpers import EMBEDDED, FAST, digest, error_lines, invoke
from mspd_edge.io import read_image

ROTATE_90_CW = 6              # EXIF orientation: the stored image is shown turned 90 degrees clockwise
BUDGET = 8                    # the CIFAR-10 default, in 8-bit levels


@pytest.fixture
def photos(tmp_path, cifar10):
    """A folder of inputs from CIFAR-10 test images: RGB PNG and JPEG, gray, RGBA, 100x75, EXIF-rotated."""
    images = cifar10[0]
    root = tmp_path / "photos"
    root.mkdir()
    Image.fromarray(images[0]).save(root / "rgb.png")
    Image.fromarray(images[1]).save(root / "photo.jpg", quality=95)
    Image.fromarray(images[2].mean(axis=2).astype(np.uint8)).save(root / "gray.png")
    alpha = np.arange(32 * 32, dtype=np.uint8).reshape(32, 32)
    Image.fromarray(np.dstack([images[3], alpha])).save(root / "rgba.png")
    Image.fromarray(images[4]).resize((100, 75)).save(root / "big.png")
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = ROTATE_90_CW
    Image.fromarray(images[5][:, :20]).save(root / "turned.jpg", exif=exif, quality=95)
    return root


def check_outputs(photos, outdir):
    """Every output: same size and channels as the (upright) input, within the budget."""
    for path in sorted(photos.iterdir()):
        before = read_image(path).pixels
        after = read_image(outdir / (path.stem + ".png")).pixels
        assert after.shape == before.shape and after.dtype == np.uint8, path.name
        assert np.abs(after.astype(int) - before).max() <= BUDGET, path.name
    assert read_image(outdir / "gray.png").pixels.ndim == 2
    assert read_image(outdir / "turned.png").pixels.shape == (20, 32, 3)
    rgba_in, rgba_out = (read_image(p / "rgba.png").pixels for p in (photos, outdir))
    assert np.array_equal(rgba_in[..., 3], rgba_out[..., 3])


def test_protect_writes_every_kind_of_input(photos, tmp_path, fake_cli):
    before = digest(photos.iterdir())
    result = invoke("protect", photos, "-o", tmp_path / "out", "--seed", 3)
    assert result.exit_code == 0, result.output
    check_outputs(photos, tmp_path / "out")
    assert digest(photos.iterdir()) == before
    summary = re.search(r"protected 6 image\(s\) \(0 skipped, 0 failed\) in ([\d.]+) s, ([\d.]+) images/s; "
                        r"seed 3\n", result.stderr)
    assert summary and float(summary[2]) > 0, result.stderr
    note = result.stderr.index("note: 2 image(s) not 32x32")
    assert note < result.stderr.index("protecting") < summary.start()   # said before the work


def test_report_json(photos, tmp_path, cifar10, fake_cli):
    report_path = tmp_path / "logs" / "report.json"
    result = invoke("protect", photos / "rgb.png", photos / "big.png", "-o", tmp_path / "out",
                    "--report", report_path, "--eps", 4, "--labels", "couple", "-q")
    assert result.exit_code == 0 and result.stderr == ""
    report = json.loads(report_path.read_text())
    settings = report["settings"]
    assert settings["command"] == "protect" and settings["eps_255"] == 4
    assert settings["eps"] == pytest.approx(4 / 255) and isinstance(settings["seed"], int)
    assert settings["label_mode"] == "couple" and settings["classifier"] is None
    assert settings["backbone"] == "fake-backbone" and settings["input_size"] == [3, 32, 32]
    assert report["counts"] == {"written": 2, "skipped": 0, "failed": 0, "pending": 0}
    assert report["interrupted"] is False and settings["format"] == "png"
    first, big = report["images"]
    assert first["input"] == str(photos / "rgb.png") and first["output"] == str(tmp_path / "out" / "rgb.png")
    assert first["linf_255"] == 4 and first["linf"] == pytest.approx(4 / 255)
    assert first["l2"] > 0 and 0 < first["ssim"] < 1 and first["seconds"] > 0
    assert first["label"]["name"] == cifar10[2][first["label"]["index"]]
    assert big["resized"] and big["size"] == [100, 75] and not first["resized"]

    again = tmp_path / "again.json"
    invoke("protect", photos / "rgb.png", "-o", tmp_path / "again", "--report", again,
           "--eps", 4, "--labels", "couple", "--seed", settings["seed"])
    assert (tmp_path / "again" / "rgb.png").read_bytes() == (tmp_path / "out" / "rgb.png").read_bytes()


def test_existing_outputs_are_kept_unless_overwrite(photos, tmp_path, fake_cli):
    out = tmp_path / "out"
    out.mkdir()
    (out / "rgb.png").write_bytes(b"old")
    result = invoke("protect", photos / "rgb.png", photos / "gray.png", "-o", out)
    assert result.exit_code == 0 and (out / "rgb.png").read_bytes() == b"old"
    assert f"skipped: {photos / 'rgb.png'}: {out / 'rgb.png'} exists (use --overwrite)" in result.stderr
    assert "protected 1 image(s) (1 skipped, 0 failed)" in result.stderr
    result = invoke("protect", photos / "rgb.png", "-o", out, "--overwrite")
    assert result.exit_code == 0 and read_image(out / "rgb.png").pixels.shape == (32, 32, 3)


def test_bad_inputs_fail_alone_with_one_line_each(photos, tmp_path, fake_cli, png_header_only):
    bad = tmp_path / "bad"
    bad.mkdir()
    good = (photos / "rgb.png").read_bytes()
    (bad / "truncated.png").write_bytes(good[:len(good) // 2])
    (bad / "empty.png").write_bytes(b"")
    (bad / "text.png").write_text("hello\n")
    cv2.imwrite(str(bad / "deep.png"), np.full((8, 8, 3), 40000, np.uint16))
    png_header_only(bad / "bomb.png", 30000, 30000)
    reasons = {"truncated.png": "truncated image", "empty.png": "empty file",
               "text.png": "not an image", "deep.png": "unsupported depth: 16 bits per channel",
               "bomb.png": "too large", "missing.png": "no such file or directory",
               "big.png": "too large: 100x75 pixels, more than the limit of 5000"}
    inputs = [photos / "rgb.png", bad, bad / "missing.png", photos / "big.png", photos / "gray.png"]
    result = invoke("protect", *inputs, "-o", tmp_path / "out", "--max-pixels", 5000, "-q")
    assert result.exit_code == 1
    lines = error_lines(result)
    assert len(lines) == len(reasons) == len(result.stderr.splitlines())
    for name, reason in reasons.items():
        path = photos / name if name == "big.png" else bad / name
        assert any(line.startswith(f"error: {path}: ") and reason in line for line in lines), name
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["gray.png", "rgb.png"]


def test_collisions_and_sub_paths(tmp_path, cifar10, fake_cli):
    root = tmp_path / "in"
    for sub in ("x", "y"):
        (root / sub).mkdir(parents=True)
        Image.fromarray(cifar10[0][0]).save(root / sub / "a.jpg")
    Image.fromarray(cifar10[0][1]).save(root / "x" / "a.png")
    result = invoke("protect", root, "-r", "-o", tmp_path / "out")
    assert result.exit_code == 1
    assert error_lines(result) == [f"error: {root / 'x' / 'a.png'}: its output {tmp_path / 'out' / 'x' / 'a.png'}"
                                   f" is also that of {root / 'x' / 'a.jpg'} (same name but for the suffix "
                                   "or case): rename one of them"]
    assert sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*")) == \
        ["x", "x/a.png", "y", "y/a.png"]


def test_folder_inputs_share_outdir_by_their_paths_and_say_what_they_skip(tmp_path, cifar10, fake_cli):
    """Without -r a folder's subfolders are skipped with a line each; two folder inputs holding
    one name collide in OUTDIR, and the error names both folders."""
    for k, folder in enumerate(("x", "y")):
        (tmp_path / folder / "sub").mkdir(parents=True)
        Image.fromarray(cifar10[0][k]).save(tmp_path / folder / "a.png")
        Image.fromarray(cifar10[0][k]).save(tmp_path / folder / "sub" / "b.png")
    result = invoke("protect", tmp_path / "x", tmp_path / "y", "-o", tmp_path / "out")
    assert result.exit_code == 1
    assert error_lines(result) == [
        f"error: {tmp_path / 'y' / 'a.png'}: its output {tmp_path / 'out' / 'a.png'} is also that of "
        f"{tmp_path / 'x' / 'a.png'}: both are a.png in {tmp_path / 'x'} and {tmp_path / 'y'} (each input "
        "goes to OUTDIR by its path in its folder): use another -o for one of them"]
    for folder in ("x", "y"):
        assert f"skipped: {tmp_path / folder / 'sub'}: a subfolder (use -r)\n" in result.stderr
    assert "protected 1 image(s) (2 skipped, 1 failed)" in result.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png"]
    result = invoke("protect", tmp_path / "x", "-r", "-o", tmp_path / "deep")
    assert result.exit_code == 0 and "skipped" not in result.stderr.replace("0 skipped", "")
    assert sorted(str(p.relative_to(tmp_path / "deep")) for p in (tmp_path / "deep").rglob("*.png")) == \
        ["a.png", "sub/b.png"]


def test_folder_labels_and_revert(tmp_path, cifar10, fake_cli):
    (tmp_path / "cat").mkdir()
    Image.fromarray(cifar10[0][0]).save(tmp_path / "cat" / "a.png")
    result = invoke("revert", tmp_path / "cat", "-o", tmp_path / "out", "--labels", "folder",
                    "--report", tmp_path / "r.json")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["settings"]["command"] == "revert" and report["settings"]["label_mode"] == "gt"
    assert report["images"][0]["label"] == {"index": 3, "name": "cat"} and fake_cli.calls == [[3]]
    assert "reverted 1 image(s)" in result.stderr


@pytest.mark.parametrize("args", [
    ["--eps", "0"], ["--epochs", "FX"], ["--labels", "nonsense"], ["--n-samples", "0"],
    ["--backend", "trt"], ["--device", "tpu"], ["--seed", "-1"],
])
def test_bad_options_are_usage_errors(photos, tmp_path, fake_cli, args):
    result = invoke("protect", photos, "-o", tmp_path / "out", *args)
    assert result.exit_code == 2 and not (tmp_path / "out").exists()


def test_missing_arguments_and_no_inputs_are_usage_errors(tmp_path, fake_cli):
    assert invoke("protect", "-o", tmp_path / "out").exit_code == 2
    assert invoke("protect", tmp_path).exit_code == 2
    csv = tmp_path / "labels.csv"
    csv.write_text("file,label\na.png,unicorn\n")
    assert invoke("protect", tmp_path, "-o", tmp_path / "out", "--labels", csv).exit_code == 2
    result = invoke("protect", tmp_path / "nope.png", tmp_path / "*.jpg", tmp_path, "-o", tmp_path / "out")
    assert result.exit_code == 2 and "no input images found" in result.stderr
    assert error_lines(result) == [f"error: {tmp_path / 'nope.png'}: no such file or directory",
                                   f"error: {tmp_path / '*.jpg'}: no file matches",
                                   f"error: {tmp_path}: no images in this folder (subfolders need --recursive)"]


def test_installed_command_and_torch_free_import():
    command = Path(sys.executable).with_name("mspd-edge")
    result = subprocess.run([command, "protect", "--help"], capture_output=True, text=True, check=True)
    assert "--n-samples" in result.stdout and "Exit status" in result.stdout
    probe = "import sys, mspd_edge.cli; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", probe], check=True)


def test_an_eps_over_the_backbones_budget_is_warned_of_once_first(photos, tmp_path, fake_cli):
    over = invoke("protect", photos / "rgb.png", "-o", tmp_path / "a", "--eps", 255, "-q")
    assert over.exit_code == 0 and over.stderr.splitlines() == [
        "warning: --eps 255 is above the 8/255 the backbone fake-backbone was trained for: each "
        "value may change by up to 255/255, which shows (large budgets destroy the image), for "
        "no robustness the backbone was trained to give"]
    reverted = invoke("revert", tmp_path / "a", "-o", tmp_path / "b", "--eps", 9, "--labels", "couple")
    assert reverted.stderr.startswith("warning: --eps 9 is above the 8/255 the backbone fake-backbone")
    for eps in ([], ["--eps", 8], ["--eps", 8.4]):
        result = invoke("protect", photos / "rgb.png", "-o", tmp_path / "c", "--overwrite", *eps)
        assert result.exit_code == 0 and "warning" not in result.stderr, eps


# ---- end to end with the embedded default models -------------------------------------------

def test_e2e_protect_and_revert_with_embedded_models(photos, tmp_path, cifar10, embedded_models):
    before = digest(photos.iterdir())
    result = invoke("protect", photos, "-o", tmp_path / "out", *EMBEDDED, *FAST, "--seed", 0,
                    "--report", tmp_path / "report.json")
    assert result.exit_code == 0, result.output
    check_outputs(photos, tmp_path / "out")
    assert digest(photos.iterdir()) == before
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["settings"]["backbone"] == "cifar10-backbone"
    assert report["settings"]["classifier"] == "cifar10-classifier"
    assert {r["label"]["name"] for r in report["images"]} <= set(cifar10[2])

    invoke("protect", photos, "-o", tmp_path / "again", *EMBEDDED, *FAST, "--seed", 0, "--batch-size", 1)
    assert digest((tmp_path / "again").iterdir()) == digest((tmp_path / "out").iterdir())

    result = invoke("revert", tmp_path / "out", "-o", tmp_path / "reverted", *FAST, "--labels", "couple")
    assert result.exit_code == 0, result.output
    for path in (tmp_path / "out").iterdir():
        delta = read_image(tmp_path / "reverted" / path.name).pixels.astype(int) - read_image(path).pixels
        assert np.abs(delta).max() <= BUDGET


def test_the_progress_bar_advances_by_whole_batches(tmp_path, cifar10, embedded_models):
    """The bar is given each batch's images at once when they are written, so its rate and ETA
    follow the work (one image counted after a whole batch's time made a 6-image ETA of minutes).
    tqdm prints every update here (TQDM_MININTERVAL=0)."""
    (tmp_path / "in").mkdir()
    for k, image in enumerate(cifar10[0][:6]):
        Image.fromarray(image).save(tmp_path / "in" / f"{k}.png")
    command = [str(Path(sys.executable).with_name("mspd-edge")), "protect", str(tmp_path / "in"), "-o",
               str(tmp_path / "out"), *EMBEDDED, *FAST, "--seed", "0", "--batch-size", "3"]
    env = {**os.environ, "TQDM_MININTERVAL": "0", "TQDM_MINITERS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=COMMAND_SECONDS)
    assert result.returncode == 0, result.stderr
    shown = {int(n) for n in re.findall(r"protecting:.*?\| (\d+)/6 \[", result.stderr)}
    assert 3 in shown and shown <= {0, 3, 6}, result.stderr
