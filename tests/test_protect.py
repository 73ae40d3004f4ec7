"""protect_files / protect_file: planning, reading, labels, writing, stopping and the summary."""
import threading
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from PIL import ExifTags, Image

from mspd_edge import protect
from mspd_edge.io import ImageError, read_image
from mspd_edge.labels import label_source
from mspd_edge.pipeline import Settings
from mspd_edge.protect import FileOptions, NoInputError, OutputError, protect_file, protect_files

BUDGET = 8


def _quiet(line, error):
    pass


def _save(path, array, **kwargs):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, **kwargs)
    return path


def _inputs(root, cifar10):
    images = cifar10[0]
    gray = images[1].mean(axis=2).astype(np.uint8)
    rgba = np.dstack([images[2], np.arange(32 * 32, dtype=np.uint8).reshape(32, 32)])
    big = np.asarray(Image.fromarray(images[3]).resize((100, 75)))
    paths = [_save(root / "rgb.png", images[0]), _save(root / "gray.png", gray),
             _save(root / "rgba.png", rgba), _save(root / "big.png", big)]
    return {p: np.asarray(Image.open(p)) for p in paths}


def _names(folder):
    return sorted(p.name for p in Path(folder).iterdir())


def test_outputs_keep_shape_alpha_and_budget(tmp_path, cifar10, fake_backend):
    originals = _inputs(tmp_path / "in", cifar10)
    summary = protect_files([tmp_path / "in"], tmp_path / "out", fake_backend, Settings(), log=_quiet)
    assert not summary.errors and len(summary.images) == 4 and summary.settings.seed is not None
    for path, original in originals.items():
        out = read_image(tmp_path / "out" / path.name).pixels
        assert out.shape == original.shape and out.dtype == np.uint8
        assert np.abs(out.astype(int) - original).max() == BUDGET
        if out.shape[-1:] == (4,):
            assert np.array_equal(out[..., 3], original[..., 3])
    record = {Path(r["input"]).name: r for r in summary.images}
    assert record["big.png"]["resized"] and record["big.png"]["size"] == [100, 75]
    assert record["gray.png"]["channels"] == 1 and record["rgba.png"]["channels"] == 4
    assert record["rgb.png"]["linf_255"] == BUDGET and record["rgb.png"]["linf"] == BUDGET / 255
    assert 0 < record["rgb.png"]["ssim"] < 1 and record["rgb.png"]["label"]["name"] is None
    assert summary.report()["interrupted"] is False and not summary.pending


def test_results_do_not_depend_on_batching_or_the_batch_memory(tmp_path, cifar10, fake_backend,
                                                                monkeypatch):
    for k, image in enumerate(cifar10[0][:5]):
        _save(tmp_path / "in" / f"{k}.png", image)
    protect_files([tmp_path / "in"], tmp_path / "a", fake_backend, Settings(seed=5, batch_size=4), log=_quiet)
    monkeypatch.setattr(protect.defaults, "BATCH_BYTES", 2 * 32 * 32 * 3)   # two images a batch
    summary = protect_files([tmp_path / "in"], tmp_path / "b", fake_backend,
                            Settings(seed=5, batch_size=4), log=_quiet)
    assert [len(call) for call in fake_backend.calls] == [4, 1, 2, 2, 1]
    for k in range(5):
        assert (tmp_path / "a" / f"{k}.png").read_bytes() == (tmp_path / "b" / f"{k}.png").read_bytes()
    assert [r["seconds"] > 0 for r in summary.images] == [True] * 5


def test_collisions_existing_outputs_and_self_overwrite(tmp_path, cifar10, fake_backend):
    image = cifar10[0][0]
    first = _save(tmp_path / "in" / "a.jpg", image)
    _save(tmp_path / "in" / "a.png", image)
    _save(tmp_path / "in" / "x" / "b.png", image)
    _save(tmp_path / "in" / "y" / "b.png", image)
    kept = _save(tmp_path / "out" / "x" / "b.png", image).read_bytes()
    lines = []
    summary = protect_files([tmp_path / "in"], tmp_path / "out", fake_backend, Settings(),
                            recursive=True, log=lambda line, error: lines.append((error, line)))
    assert [r["input"] for r in summary.images] == [str(first), str(tmp_path / "in" / "y" / "b.png")]
    assert summary.errors == [{"input": str(tmp_path / "in" / "a.png"),
                               "error": f"its output {tmp_path / 'out' / 'a.png'} is also that of "
                                        f"{first} (same name but for the suffix or case): rename one of them"}]
    assert summary.skipped[0]["input"] == str(tmp_path / "in" / "x" / "b.png")
    assert (tmp_path / "out" / "x" / "b.png").read_bytes() == kept
    assert lines[1] == (False, f"skipped: {tmp_path / 'in' / 'x' / 'b.png'}: "
                               f"{tmp_path / 'out' / 'x' / 'b.png'} exists (use --overwrite)")

    summary = protect_files([tmp_path / "out" / "a.png"], tmp_path / "out", fake_backend, Settings(),
                            overwrite=True, log=_quiet)
    assert summary.errors[0]["error"] == "the output would replace the input"


def test_ground_truth_labels_from_folders_and_csv(tmp_path, cifar10, fake_backend):
    image, classes = cifar10[0][0], cifar10[2]
    _save(tmp_path / "Cat" / "1.png", image)
    _save(tmp_path / "ship" / "2.png", image)
    _save(tmp_path / "unknown" / "3.png", image)
    settings = Settings(label_mode="gt")
    summary = protect_files([tmp_path / "*" / "*.png"], tmp_path / "out" / "folder", fake_backend, settings,
                            labels=label_source("folder", classes), options=FileOptions(classes=classes),
                            log=_quiet)
    assert fake_backend.calls == [[3, 8]]
    assert [r["label"] for r in summary.images] == [{"index": 3, "name": "cat"}, {"index": 8, "name": "ship"}]
    assert summary.errors == [{"input": str(tmp_path / "unknown" / "3.png"),
                               "error": "'unknown' is not a class of the model"}]

    csv = tmp_path / "labels.csv"
    csv.write_text("file,label\nCat/1.png,9\nship/2.png,frog\n")
    summary = protect_files([tmp_path / "*" / "*.png"], tmp_path / "out" / "csv", fake_backend, settings,
                            labels=label_source(str(csv), classes), log=_quiet)
    assert fake_backend.calls[-1] == [9, 6] and summary.errors[0]["error"] == f"no row in {csv}"


def test_bad_files_fail_alone(tmp_path, cifar10, fake_backend):
    good = _save(tmp_path / "good.png", cifar10[0][0])
    (tmp_path / "bad.png").write_bytes(good.read_bytes()[:100])     # the header reads, the pixels not
    (tmp_path / "text.png").write_text("not an image")              # found before any model runs
    summary = protect_files([tmp_path / "bad.png", tmp_path / "text.png", good, tmp_path / "gone.png"],
                            tmp_path / "out", fake_backend, Settings(), log=_quiet)
    assert [e["error"] for e in summary.errors] == [
        "no such file or directory", "not an image, or not one of PNG, JPEG, WEBP, BMP, TIFF",
        "truncated image"]
    assert fake_backend.calls and _names(tmp_path / "out") == ["good.png"]


def test_unsupported_files_of_a_folder_are_skipped_and_reported(tmp_path, cifar10, fake_backend):
    frames = [Image.fromarray(image) for image in cifar10[0][:3]]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    (tmp_path / "notes.txt").write_text("shot list")
    _save(tmp_path / "photo.png", cifar10[0][0])
    lines = []
    summary = protect_files([tmp_path], tmp_path / "out", fake_backend, Settings(),
                            log=lambda line, error: lines.append((error, line)))
    reasons = {Path(s["input"]).name: (s["reason"], s["why"]) for s in summary.skipped}
    assert reasons == {"anim.gif": ("unsupported", "not a supported image file (.gif; supported: PNG, "
                                                   "JPEG, WEBP, BMP, TIFF)"),
                       "notes.txt": ("unsupported", "not a supported image file (.txt; supported: PNG, "
                                                    "JPEG, WEBP, BMP, TIFF)")}
    assert (False, f"skipped: {tmp_path / 'anim.gif'}: {reasons['anim.gif'][1]}") in lines
    assert summary.report()["counts"] == {"written": 1, "skipped": 2, "failed": 0, "pending": 0}
    summary = protect_files([tmp_path / "anim.gif"], tmp_path / "out", fake_backend, Settings(), log=_quiet)
    assert summary.errors == [{"input": str(tmp_path / "anim.gif"),
                               "error": "not an image, or not one of PNG, JPEG, WEBP, BMP, TIFF"}]


def test_an_unwritable_output_folder_is_found_before_any_computation(tmp_path, cifar10, fake_backend):
    _save(tmp_path / "in.png", cifar10[0][0])
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match=f"^{tmp_path / 'file' / 'out'}: cannot write into this folder"):
        protect_files([tmp_path / "in.png"], tmp_path / "file" / "out", fake_backend, Settings(), log=_quiet)
    assert fake_backend.calls == []


class _StopsAfter:
    """A backend that sets ``stop`` (or presses Ctrl-C) once ``backend`` has run ``calls`` batches."""

    def __init__(self, backend, calls, stop=None):
        self.backend, self.limit, self.stop = backend, calls, stop
        self.input_size, self.default_eps, self.predict = backend.input_size, backend.default_eps, backend.predict

    def run(self, x, labels, noise, settings):
        if self.stop is None and len(self.backend.calls) == self.limit:
            raise KeyboardInterrupt
        out = self.backend.run(x, labels, noise, settings)
        if self.stop is not None and len(self.backend.calls) == self.limit:
            self.stop.set()
        return out


@pytest.mark.parametrize("how", ["event", "ctrl-c"])
def test_a_stopped_job_says_what_finished_and_resumes_to_the_same_bytes(tmp_path, cifar10, fake_backend, how):
    for k, image in enumerate(cifar10[0][:7]):
        _save(tmp_path / "in" / f"{k}.png", image)
    stop = threading.Event() if how == "event" else None
    settings = Settings(seed=11, batch_size=2)
    summary = protect_files([tmp_path / "in"], tmp_path / "out", _StopsAfter(fake_backend, 2, stop), settings,
                            log=_quiet, stop=stop)
    report = summary.report()
    assert report["interrupted"] and report["counts"]["written"] == 4 and len(report["pending"]) == 3
    assert _names(tmp_path / "out") == [f"{k}.png" for k in range(4)]   # no temporary file left
    assert report["pending"] == [str(tmp_path / "in" / f"{k}.png") for k in range(4, 7)]

    summary = protect_files([tmp_path / "in"], tmp_path / "out", fake_backend, settings, log=_quiet)
    assert len(summary.images) == 3 and len(summary.skipped) == 4 and not summary.interrupted
    protect_files([tmp_path / "in"], tmp_path / "whole", fake_backend, settings, log=_quiet)
    for k in range(7):
        assert (tmp_path / "out" / f"{k}.png").read_bytes() == (tmp_path / "whole" / f"{k}.png").read_bytes()


def test_protect_file_and_its_errors(tmp_path, fake_backend):
    photo = skimage.data.astronaut()
    exif = Image.Exif()
    exif[ExifTags.Base.Artist], exif[ExifTags.Base.Orientation] = "NASA", 3   # turned 180 degrees
    source = _save(tmp_path / "astronaut.jpg", photo, exif=exif, quality=90)
    record = protect_file(source, tmp_path / "out" / "astronaut.webp", fake_backend, Settings(seed=1),
                          options=FileOptions(format="webp"))
    written = read_image(tmp_path / "out" / "astronaut.webp")
    original = read_image(source).pixels
    assert written.pixels.shape == (512, 512, 3) and record["linf_255"] == BUDGET
    assert np.abs(written.pixels.astype(int) - original).max() == BUDGET
    assert record["metadata"] == ["exif"] and record["resized"] and record["size"] == [512, 512]
    with pytest.raises(ImageError, match="empty file"):
        (tmp_path / "empty.jpg").write_bytes(b"")
        protect_file(tmp_path / "empty.jpg", tmp_path / "out" / "empty.png", fake_backend, Settings())
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="cannot write"):
        protect_file(source, tmp_path / "file" / "a.png", fake_backend, Settings())


def test_no_inputs_label_mode_mismatch_and_a_zero_level_budget(tmp_path, fake_backend, cifar10):
    with pytest.raises(NoInputError):
        protect_files([tmp_path / "nothing.png", tmp_path], tmp_path / "out", fake_backend, Settings(),
                      log=_quiet)
    with pytest.raises(ValueError, match="label mode"):
        protect_files([tmp_path], tmp_path / "out", fake_backend, Settings(label_mode="gt"), log=_quiet)
    _save(tmp_path / "a.png", cifar10[0][0])
    with pytest.raises(ValueError, match="rounds to 0 levels"):
        protect_files([tmp_path / "a.png"], tmp_path / "out", fake_backend, Settings(eps=0.4 / 255), log=_quiet)


def test_tiny_torch_backbone_protects_and_reverts(tmp_path, cifar10, tiny_backend):
    for k, image in enumerate(cifar10[0][:3]):
        _save(tmp_path / "in" / f"{k}.png", image)
    settings = Settings(n_samples=2, seed=1)
    for reverse, command in ((False, "protect"), (True, "revert")):
        summary = protect_files([tmp_path / "in"], tmp_path / command, tiny_backend, settings,
                                reverse=reverse, options=FileOptions(classes=cifar10[2]), log=_quiet)
        report = summary.report()
        assert report["settings"]["command"] == command and report["counts"]["written"] == 3
        assert all(r["linf_255"] <= BUDGET and 0 <= r["label"]["index"] < 10 for r in report["images"])
