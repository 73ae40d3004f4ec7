"""protect_files: planning, reading, labels, writing and the summary (fake and tiny torch backends)."""
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from mspd_edge import protect
from mspd_edge.io import read_image
from mspd_edge.labels import label_source
from mspd_edge.pipeline import Settings
from mspd_edge.protect import NoInputError, protect_files

BUDGET = 8


def _quiet(line, error):
    pass


def _save(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def _inputs(root, cifar10):
    images = cifar10[0]
    gray = images[1].mean(axis=2).astype(np.uint8)
    rgba = np.dstack([images[2], np.arange(32 * 32, dtype=np.uint8).reshape(32, 32)])
    big = np.asarray(Image.fromarray(images[3]).resize((100, 75)))
    paths = [_save(root / "rgb.png", images[0]), _save(root / "gray.png", gray),
             _save(root / "rgba.png", rgba), _save(root / "big.png", big)]
    return {p: np.asarray(Image.open(p)) for p in paths}


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


def test_results_do_not_depend_on_batching_or_the_read_cache(tmp_path, cifar10, fake_backend,
                                                             monkeypatch):
    for k, image in enumerate(cifar10[0][:5]):
        _save(tmp_path / "in" / f"{k}.png", image)
    protect_files([tmp_path / "in"], tmp_path / "a", fake_backend, Settings(seed=5, batch_size=1), log=_quiet)
    monkeypatch.setattr(protect.defaults, "READ_CACHE_BYTES", 2 * 32 * 32 * 3)   # the rest is re-read
    summary = protect_files([tmp_path / "in"], tmp_path / "b", fake_backend,
                            Settings(seed=5, batch_size=2), log=_quiet)
    assert [len(call) for call in fake_backend.calls] == [1] * 5 + [2, 2, 1]
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
                               "error": f"output {tmp_path / 'out' / 'a.png'} is already used by {first}"}]
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
                            labels=label_source("folder", classes), classes=classes,
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


def test_bad_files_are_left_out_before_the_model_runs(tmp_path, cifar10, fake_backend):
    good = _save(tmp_path / "good.png", cifar10[0][0])
    (tmp_path / "bad.png").write_bytes(good.read_bytes()[:100])
    summary = protect_files([tmp_path / "bad.png", good, tmp_path / "gone.png"], tmp_path / "out",
                            fake_backend, Settings(), log=_quiet)
    assert [e["error"] for e in summary.errors] == ["no such file or directory", "truncated image"]
    assert fake_backend.calls and (tmp_path / "out" / "good.png").exists()
    assert not (tmp_path / "out" / "bad.png").exists()


def test_no_inputs_and_label_mode_mismatch(tmp_path, fake_backend):
    with pytest.raises(NoInputError):
        protect_files([tmp_path / "nothing.png", tmp_path], tmp_path / "out", fake_backend, Settings(),
                      log=_quiet)
    with pytest.raises(ValueError, match="label mode"):
        protect_files([tmp_path], tmp_path / "out", fake_backend, Settings(label_mode="gt"), log=_quiet)


def test_tiny_torch_backbone_protects_and_reverts(tmp_path, cifar10):
    torch = pytest.importorskip("torch")
    from mspd_edge.torch_backend import TorchBackend
    from mspd_edge.zoo.dm_resnet import DMPreActResNet

    torch.manual_seed(0)
    backbone = DMPreActResNet(base_width=4)
    backbone.info = SimpleNamespace(input_size=(3, 32, 32), eps=BUDGET / 255)
    backend = TorchBackend(backbone, DMPreActResNet(base_width=4))
    for k, image in enumerate(cifar10[0][:3]):
        _save(tmp_path / "in" / f"{k}.png", image)
    settings = Settings(n_samples=2, seed=1)
    for reverse, command in ((False, "protect"), (True, "revert")):
        summary = protect_files([tmp_path / "in"], tmp_path / command, backend, settings,
                                reverse=reverse, classes=cifar10[2], log=_quiet)
        report = summary.report()
        assert report["settings"]["command"] == command and report["counts"]["written"] == 3
        assert all(r["linf_255"] <= BUDGET and 0 <= r["label"]["index"] < 10 for r in report["images"])
