"""``mspd-edge verify`` as a user runs it: protect with --report, publish (Pillow, OpenCV),
verify with --settings; exit codes 0/1/2, the table, the JSON and markdown reports, --simulate,
and the robust accuracy (PGD-10, the shipped targets) once."""
import json

import cv2
import pytest
import skimage.data
from PIL import Image

from cli_helpers import FAST, error_lines, invoke
from mspd_edge.data import load_npz


@pytest.fixture
def protected(tmp_path, embedded_models, cifar10_dir):
    """``(originals, protected, report)``: two CIFAR-10 images at 96x96 and a skimage photo."""
    originals = tmp_path / "originals"
    originals.mkdir()
    images, _, _ = load_npz(cifar10_dir / "test.npz", limit=2)
    for k, image in enumerate(images):
        Image.fromarray(cv2.resize(image, (96, 96), interpolation=cv2.INTER_CUBIC)).save(originals / f"cifar{k}.png")
    Image.fromarray(skimage.data.coffee()[::4, ::4]).save(originals / "coffee.jpg", quality=95)
    report = tmp_path / "protected" / "report.json"
    result = invoke("protect", originals, "-o", tmp_path / "protected", "--report", report, "--seed", 11, *FAST, "-q")
    assert result.exit_code == 0, result.stderr
    return originals, tmp_path / "protected", report


def _site(protected, folder):
    """Published copies: Pillow JPEG 75 at 3/4 size, EXIF and ICC dropped, another extension."""
    folder.mkdir()
    for path in protected.glob("*.png"):
        image = Image.open(path)
        image.resize((image.width * 3 // 4, image.height * 3 // 4), Image.Resampling.LANCZOS) \
            .save(folder / (path.stem + ".jpg"), quality=75)
    return folder


def test_protected_copies_are_kept_exit_0_with_json_and_markdown(protected, tmp_path):
    originals, out, report = protected
    site = _site(out, tmp_path / "site")
    result = invoke("verify", originals, site, "--settings", report, "--no-attack", "--report", tmp_path / "v.json")
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "v.json").read_text())
    assert data["settings"]["seed"] == 11 and data["settings"]["n_samples"] == 2
    assert [e["verdict"] for e in data["images"]] == ["kept"] * 3
    assert all(e["kept_cosine"] > 0.5 and e["kept_energy"] > 0.5 and e["published"].endswith(".jpg")
               for e in data["images"])
    assert "kept" in result.stdout and "cifar1.png" in result.stdout
    assert (tmp_path / "v.md").read_text().count(".jpg | kept | ") == 3


def test_unprotected_copies_and_bad_pairs_exit_1_and_the_others_go_on(protected, tmp_path):
    originals, out, report = protected
    site = tmp_path / "site"
    site.mkdir()
    Image.open(originals / "cifar0.png").save(site / "cifar0.webp", quality=80)   # unprotected
    Image.open(out / "coffee.png").save(site / "coffee.jpg", quality=75)          # protected
    (site / "cifar1.jpg").write_bytes(b"GIF89a nonsense")                         # not an image
    result = invoke("verify", originals, site, "--settings", report, "--no-attack", "--report", tmp_path / "v.json")
    assert result.exit_code == 1
    verdicts = {e["original"].rsplit("/", 1)[1]: e["verdict"] for e in json.loads((tmp_path / "v.json").read_text())["images"]}
    assert verdicts == {"cifar0.png": "gone", "coffee.jpg": "kept"}
    assert len(error_lines(result)) == 1 and "cifar1.jpg" in error_lines(result)[0]
    Image.open(out / "cifar1.png").save(site / "cifar1.jpg", quality=75)
    (site / "cifar0.webp").unlink()                                               # a missing pair
    result = invoke("verify", originals, site, "--settings", report, "--no-attack")
    assert result.exit_code == 1 and len(error_lines(result)) == 1 and "no published copy" in result.stderr


def _cosine(tmp_path, *args):
    result = invoke("verify", *args, "--no-attack", "--report", tmp_path / "v.json")
    assert result.exit_code == 0, result.output
    return json.loads((tmp_path / "v.json").read_text())["images"][0]["kept_cosine"]


def test_options_instead_of_the_report_and_another_seed(protected, tmp_path):
    """The exact settings give the exact protection (a lossless copy: cosine 1); another seed a
    close one (the gradients' direction is mostly the image's), still kept: docs/verify.md."""
    originals, out, report = protected
    copy = originals / "cifar0.png", out / "cifar0.png"
    assert _cosine(tmp_path, *copy, "--seed", 11, *FAST) == pytest.approx(1, abs=1e-12)
    assert _cosine(tmp_path, *copy, "--settings", report) == pytest.approx(1, abs=1e-12)
    assert 0.5 < _cosine(tmp_path, *copy, "--seed", 12, *FAST) < 0.999
    assert 0.5 < _cosine(tmp_path, *copy, "--settings", report, "--seed", 12) < 0.999   # options override it


@pytest.mark.parametrize("args, message", [
    (["{o}/cifar0.png", "{o}/cifar0.png"], "--seed is needed"),
    (["{o}", "--seed", "1"], "PUBLISHED, or --simulate"),
    (["{o}/cifar0.png", "{o}", "--seed", "1"], "files with a file"),
    (["{o}/cifar0.png", "--seed", "1", "--simulate", "jpeg101"], "jpeg takes a value"),
    (["{o}/cifar0.png", "--settings", "{o}/coffee.jpg", "--simulate", "jpeg75"], "not a protect report"),
    (["{o}/cifar0.png", "--seed", "1", "--simulate", "jpeg75", "--report", "{o}/r.md"], "markdown goes beside"),
])
def test_usage_errors_exit_2(protected, args, message):
    originals = protected[0]
    result = invoke("verify", *[a.format(o=originals) for a in args])
    assert result.exit_code == 2 and message in result.stderr, result.stderr


def test_simulate_with_the_robust_accuracy_of_the_shipped_targets(protected, tmp_path):
    from mspd_edge.verify.robust import ROBUST_TARGETS
    from mspd_edge.zoo.locate import WEIGHTS_DIR

    if not all((WEIGHTS_DIR / f"{name}.pt").is_file() for name in ROBUST_TARGETS[32]):
        pytest.skip("shipped targets missing")
    originals, _, report = protected
    result = invoke("verify", originals / "cifar1.png", "--settings", report, "--simulate", "jpeg75,resize0.5+webp80,crop0.8",
                    "--report", tmp_path / "v.json")
    assert result.exit_code == 1, result.output   # the crop is not comparable
    data = json.loads((tmp_path / "v.json").read_text())
    assert [e["verdict"] for e in data["images"]] == ["kept", "kept", "not comparable"]
    assert set(data["images"][0]["robust"]) == set(ROBUST_TARGETS[32]) and data["images"][2]["robust"] is None
    assert set(data["robust_accuracy"]) == {"original", "protected"}
    assert all(0 <= acc <= 1 for acc in data["steps"]["jpeg75"]["robust_accuracy"].values())
    assert data["settings"]["attack"] == {"name": "pgd-linf", "eps": pytest.approx(8 / 255), "steps": 10}
