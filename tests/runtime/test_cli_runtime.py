"""``mspd-edge protect --backend ort|trt``, the export cache, ``mspd-edge parity`` and ``bench``."""
import json

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from mspd_edge import cli
from mspd_edge.backends import exports as backend_exports
from mspd_edge.runtime.runners import available_providers
from mspd_edge.runtime.trt import trt_available

FAST = ["--n-samples", "4", "--seed", "3", "-q"]


def invoke(*args):
    return CliRunner().invoke(cli.main, [str(a) for a in args])


@pytest.fixture(scope="module")
def photos(cifar_images, tmp_path_factory):
    root = tmp_path_factory.mktemp("photos")
    for i, image in enumerate(cifar_images[0][:4]):
        cv2.imwrite(str(root / f"img{i}.png"), image[:, :, ::-1])
    return root


def _pixels(folder):
    return {p.name: cv2.imread(str(p)) for p in sorted(folder.glob("*.png"))}


def test_protect_ort_matches_torch(photos, tiny_bundle, tiny_zoo, tmp_path):
    ort = invoke("protect", photos, "-o", tmp_path / "ort", "--backend", "ort", "--model-dir",
                 tiny_bundle, "--report", tmp_path / "ort.json", *FAST)
    assert ort.exit_code == 0, ort.output
    ref = invoke("protect", photos, "-o", tmp_path / "torch", "--backbone", tiny_zoo["tiny-back"],
                 "--classifier", tiny_zoo["tiny-cls"], "--precision", "fp32", *FAST)
    assert ref.exit_code == 0, ref.output
    got, want = _pixels(tmp_path / "ort"), _pixels(tmp_path / "torch")
    assert list(got) == list(want) == [f"img{i}.png" for i in range(4)]
    diff = np.abs(np.stack(list(got.values())).astype(int) - np.stack(list(want.values())).astype(int))
    assert diff.max() <= 2 and (diff == 0).mean() >= 0.99
    settings = json.loads((tmp_path / "ort.json").read_text())["settings"]
    assert settings["backend"] == "ort" and settings["provider"] == "cpu"
    assert settings["model_dir"] == str(tiny_bundle) and settings["backbone"] == "tiny-back"


def test_runtime_option_errors(photos, tiny_bundle, tmp_path):
    result = invoke("protect", photos, "-o", tmp_path, "--backend", "torch", "--model-dir", tiny_bundle)
    assert result.exit_code == 2 and "--model-dir goes with --backend ort or trt" in result.output
    result = invoke("protect", photos, "-o", tmp_path / "auto", "--model-dir", tiny_bundle, *FAST)
    assert result.exit_code == 0, result.output   # --backend auto: an export runs on ort
    if "cuda" not in available_providers():
        result = invoke("protect", photos, "-o", tmp_path, "--backend", "ort", "--provider", "cuda",
                        "--model-dir", tiny_bundle)
        assert result.exit_code == 2 and "onnxruntime-gpu" in result.output
    if not trt_available()[0]:
        result = invoke("protect", photos, "-o", tmp_path, "--backend", "trt", "--model-dir", tiny_bundle)
        assert result.exit_code == 2 and "--backend trt" in result.output
    result = invoke("protect", photos, "-o", tmp_path, "--backend", "ort", "--model-dir", photos)
    assert result.exit_code == 2 and "no manifest" in result.output


def test_export_is_made_once_and_cached(photos, tiny_zoo, tmp_path, monkeypatch):
    monkeypatch.setenv("MSPD_EDGE_CACHE", str(tmp_path / "cache"))
    args = ["protect", photos / "img0.png", "-o", tmp_path / "out", "--backend", "ort", "--overwrite",
            "--backbone", tiny_zoo["tiny-back"], "--classifier", tiny_zoo["tiny-cls"], *FAST]
    first = invoke(*args)
    assert first.exit_code == 0, first.output
    assert "exporting" in first.stderr
    exports = list((tmp_path / "cache" / "exports").iterdir())
    assert len(exports) == 1 and exports[0].name.startswith("tiny-back+tiny-cls-")
    assert (exports[0] / "manifest.json").is_file()

    def no_export(*a, **k):
        raise AssertionError("exported again")

    monkeypatch.setattr(backend_exports, "make_export", no_export)
    again = invoke(*args, "--labels", "couple")     # the cached pair serves every label mode
    assert again.exit_code == 0, again.output
    assert "exporting" not in again.stderr


def test_parity_command(cifar10_dir, tiny_bundle, tiny_zoo, tmp_path):
    common = [cifar10_dir / "test.npz", "--limit", "4", "--n-samples", "2", "--threads", "1",
              "--backends", "torch,ort,ort:grad", "--model-dir", tiny_bundle, "--precision", "fp32",
              "--backbone", tiny_zoo["tiny-back"], "--classifier", tiny_zoo["tiny-cls"]]
    result = invoke("parity", *common, "--json", tmp_path / "parity.json")
    assert result.exit_code == 0, result.output
    assert "| ort |" in result.stdout and "| ort:grad |" in result.stdout
    records = json.loads((tmp_path / "parity.json").read_text())["records"]
    assert [r["backend"] for r in records] == ["torch", "ort", "ort:grad"]
    assert all(r["ok"] for r in records) and records[1]["images"] == 4
    failing = invoke("parity", *common, "--min-cosine", "1.5")
    assert failing.exit_code == 1 and "NO: grad_cosine" in failing.stdout


def test_bench_command(cifar10_dir, tiny_bundle, tiny_zoo, tmp_path):
    common = ["--batch-sizes", "1,2", "--images", "1", "--n-samples", "2", "--threads", "1",
              "--data", cifar10_dir / "test.npz", "--model-dir", tiny_bundle, "--precision", "fp32",
              "--backbone", tiny_zoo["tiny-back"], "--classifier", tiny_zoo["tiny-cls"]]
    result = invoke("bench", "--backends", "torch,ort", "--no-isolate", *common,
                    "--json", tmp_path / "bench.json")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "bench.json").read_text())
    records = report["records"]
    assert [(r["backend"], r["batch_size"]) for r in records] == [
        ("torch", 1), ("torch", 2), ("ort", 1), ("ort", 2)]
    for r in records:
        assert set(cli_keys := ("backend", "batch_size", "images_per_s", "p50_ms", "p95_ms",
                                "peak_rss_mb")) <= set(r), cli_keys
        assert r["images_per_s"] > 0 and r["p95_ms"] >= r["p50_ms"] > 0
        assert r["ratio_vs_torch"] > 0 and r["threads"] == 1
    assert "| ort | fp32 | 1 |" in result.stdout and report["settings"]["threads"] == 1
    isolated = invoke("bench", "--backends", "ort", *common, "--batch-sizes", "1")
    assert isolated.exit_code == 0, isolated.output
    assert "| ort | fp32 | 1 |" in isolated.stdout and "n/a" in isolated.stdout   # no torch row: no ratio


def test_bench_rounds(cifar10_dir, tiny_bundle, tiny_zoo, tmp_path):
    result = invoke("bench", "--backends", "torch,ort", "--no-isolate", "--rounds", "3",
                    "--batch-sizes", "2", "--images", "2", "--n-samples", "2", "--threads", "1",
                    "--data", cifar10_dir / "test.npz", "--model-dir", tiny_bundle,
                    "--precision", "fp32", "--backbone", tiny_zoo["tiny-back"],
                    "--classifier", tiny_zoo["tiny-cls"], "--json", tmp_path / "bench.json")
    assert result.exit_code == 0, result.output
    records = json.loads((tmp_path / "bench.json").read_text())["records"]
    assert [r["backend"] for r in records] == ["torch", "ort"]
    ort = records[1]
    assert ort["rounds"] == 3 and len(ort["images_per_s_rounds"]) == 3
    assert ort["images_per_s"] == sorted(ort["images_per_s_rounds"])[1]
    assert ort["ratio_vs_torch"] == pytest.approx(np.median(ort["ratio_vs_torch_rounds"]), abs=1e-3)
    assert "ort batch 2: rounds " in result.stdout
