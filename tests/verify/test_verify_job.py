"""verify_pairs / pair_inputs / read_settings on real files: protect writes them, Pillow and
OpenCV publish them (other extension and size, EXIF stripped), and bad pairs go on."""
import json
from dataclasses import replace

import cv2
import numpy as np
import pytest
import skimage.data
from PIL import ExifTags, Image

from mspd_edge.io import read_image
from mspd_edge.labels import label_source
from mspd_edge.pipeline import protect_batch
from mspd_edge.protect import FileOptions, protect_files
from mspd_edge.verify import markdown, pair_inputs, read_settings, verify_pairs

ROTATE_90_CW = 6


@pytest.fixture
def job(tmp_path, photos, models, settings):
    """Originals (PNGs and a camera JPEG turned by EXIF) protected into ``protected/``."""
    originals = tmp_path / "originals"
    (originals / "sub").mkdir(parents=True)
    for k, photo in enumerate(photos[:3]):
        Image.fromarray(photo).save(originals / f"img{k}.png")
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation], exif[ExifTags.Base.Make] = ROTATE_90_CW, "Nikon"
    Image.fromarray(photos[3]).save(originals / "sub" / "camera.jpg", quality=95, exif=exif)
    (originals / "notes.txt").write_text("not an image")
    summary = protect_files([originals], tmp_path / "protected", models.backend, settings,
                            options=FileOptions(metrics=False), recursive=True, log=lambda *a: None)
    assert len(summary.images) == 4
    return originals, tmp_path / "protected"


def _publish(protected, published):
    """The copies a site would serve: JPEG at 3/4 size (OpenCV), WebP (Pillow), EXIF stripped."""
    (published / "sub").mkdir(parents=True)
    for path in sorted(protected.rglob("*.png")):
        relative = path.relative_to(protected)
        pixels = np.asarray(Image.open(path).convert("RGB"))
        if relative.stem == "img1":
            Image.fromarray(pixels).save(published / relative.with_suffix(".webp"), quality=85)
        else:
            h, w = pixels.shape[:2]
            small = cv2.resize(pixels[:, :, ::-1], (w * 3 // 4, h * 3 // 4), interpolation=cv2.INTER_AREA)
            cv2.imwrite(str(published / relative.with_suffix(".jpg")), small, [cv2.IMWRITE_JPEG_QUALITY, 75])


def test_published_copies_of_other_format_size_and_no_exif_keep_the_protection(job, tmp_path, models, settings):
    originals, protected = job
    _publish(protected, tmp_path / "site")
    pairs, problems = pair_inputs(originals, [tmp_path / "site"], recursive=True, log=lambda line: None)
    assert not problems and len(pairs) == 4
    result = verify_pairs(pairs, models.backend, settings, log=lambda line: None)
    report = result.report()
    assert report["all_kept"] and [e["verdict"] for e in report["images"]] == ["kept"] * 4
    camera = next(e for e in report["images"] if "camera" in e["original"])
    assert camera["size"] == [120, 160] and camera["published_size"] == [90, 120]   # turned upright by EXIF
    assert report["steps"][str(tmp_path / "site")]["count"] == 4 and markdown(report).count(".jpg | kept | ") == 3


def test_the_recomputed_protection_is_exactly_what_protect_wrote(job, models, settings):
    originals, protected = job
    sources = [originals / "img0.png", originals / "sub" / "camera.jpg"]
    recomputed = protect_batch([read_image(p).pixels for p in sources], models.backend, settings)
    written = [read_image(protected / "img0.png").pixels, read_image(protected / "sub" / "camera.png").pixels]
    assert all(np.array_equal(a, b) for (a, _), b in zip(recomputed, written))
    pairs, _ = pair_inputs(originals, [protected], recursive=True, log=lambda line: None)
    for batch_size in (1, 3):
        result = verify_pairs(pairs, models.backend, replace(settings, batch_size=batch_size),
                              log=lambda line: None)
        assert [(e["kept_cosine"], e["kept_energy"], e["foreign_energy"]) for e in result.images] == [(1.0, 1.0, 0.0)] * 4


def test_unprotected_copies_are_gone_and_bad_pairs_are_one_line_each(job, tmp_path, models, settings):
    originals, _ = job
    site = tmp_path / "site"
    (site / "sub").mkdir(parents=True)
    Image.open(originals / "img0.png").save(site / "img0.jpg", quality=75)        # the unprotected original
    (site / "img1.jpg").write_text("<html>not found</html>")                      # a non-image
    Image.fromarray(skimage.data.coffee()).save(site / "stray.png")               # no original
    lines = []                                                                    # img2, camera: missing
    pairs, problems = pair_inputs(originals, [site], recursive=True, log=lines.append)
    result = verify_pairs(pairs, models.backend, settings, problems=problems, log=lines.append)
    assert [e["verdict"] for e in result.images] == ["gone"]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == len(result.errors) == 4 and any("notes.txt" in line for line in lines)
    assert any("img1.jpg" in line and "published copy" in line for line in errors)
    assert any("stray.png" in line and "no original" in line for line in errors)
    assert not result.report()["all_kept"]


def test_pairing_refuses_a_file_with_a_folder_and_reports_a_missing_file(job, tmp_path):
    originals, protected = job
    with pytest.raises(ValueError, match="files with a file"):
        pair_inputs(originals / "img0.png", [protected])
    with pytest.raises(ValueError, match="no such file"):
        pair_inputs(tmp_path / "nothing.png", [])
    pairs, problems = pair_inputs(originals / "img0.png", [tmp_path / "gone.jpg", protected / "img0.png"])
    assert len(pairs[0].copies) == 1 and "no such file" in problems[0][2]


def test_simulated_steps_need_no_published_file(job, models, settings):
    originals, _ = job
    pairs, _ = pair_inputs(originals / "img0.png", [])
    result = verify_pairs(pairs, models.backend, settings, scenarios=("jpeg75", "resize0.5", "crop0.8"))
    assert [(e["step"], e["verdict"]) for e in result.images] == [
        ("jpeg75", "kept"), ("resize0.5", "kept"), ("crop0.8", "not comparable")]
    assert result.images[1]["published_size"] == [64, 64]


def test_settings_come_from_the_protect_report(tmp_path):
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"settings": {"command": "protect", "backend": "torch", "precision": "bf16",
                                               "eps": 8 / 255, "seed": 7, "n_samples": 20, "labels": "couple"}}))
    assert read_settings(report) == {"backend": "torch", "precision": "bf16", "eps": pytest.approx(8.0),
                                     "seed": 7, "n_samples": 20, "labels": "couple"}
    report.write_text(json.dumps({"settings": {"command": "revert"}}))
    with pytest.raises(ValueError, match="revert"):
        read_settings(report)
    report.write_text("{")
    with pytest.raises(ValueError, match="not a protect report"):
        read_settings(report)


def test_ground_truth_labels_a_missing_one_is_one_error(job, models, settings):
    originals, _ = job
    (originals / "labels.csv").write_text("file,label\nimg0.png,cat\n")
    labels = label_source(str(originals / "labels.csv"), models.backbone.classes)
    pairs, _ = pair_inputs(originals, [], log=lambda line: None)
    lines = []
    result = verify_pairs(pairs, models.backend, replace(settings, label_mode="gt"), scenarios=("jpeg75",),
                          labels=labels, log=lines.append)
    assert [(e["original"].rsplit("/", 1)[1], e["label"], e["verdict"]) for e in result.images] == [
        ("img0.png", models.backbone.classes.index("cat"), "kept")]
    assert len(result.errors) == 2 and all("no row in" in line for line in lines)
