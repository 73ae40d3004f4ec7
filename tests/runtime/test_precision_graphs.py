"""Reduced-precision bundles in the runtime: the manifest's precision, the export cache per
precision, the engine cache key, and ``--precision`` through ``protect``, ``bench``, ``parity``."""
import json

import numpy as np
import pytest
from click.testing import CliRunner

from mspd_edge import cli
from mspd_edge.backends import BackendError, BackendOptions
from mspd_edge.backends.exports import runtime_bundle
from mspd_edge.backends.precision import cpu_reason
from mspd_edge.bundle import Bundle
from mspd_edge.runtime.cascade import OrtBackend
from mspd_edge.runtime.engine_cache import EngineCache, EngineKey

FAST = ["--n-samples", "2", "--seed", "3", "--threads", "1"]


def invoke(*args):
    return CliRunner().invoke(cli.main, [str(a) for a in args])


@pytest.fixture(scope="module")
def tiny_reduced(tiny_bundle, cifar10_dir, tmp_path_factory):
    """The tiny pair's int8 bundle, calibrated on 2 CIFAR-10 training images."""
    from mspd_edge.calibration.bundle import reduce_bundle
    from mspd_edge.data import load_npz

    out = tmp_path_factory.mktemp("tiny-int8")
    reduce_bundle(tiny_bundle, out, "int8", list(load_npz(cifar10_dir / "train.npz", limit=2)[0]),
                  image_set="train.npz[:2]")
    return out


def test_engine_key_and_cache_carry_the_precision(tmp_path):
    keys = {p: EngineKey("sha", "11.0", "GPU", "8.7", (), precision=p) for p in ("fp32", "fp16", "int8")}
    assert len({k.digest() for k in keys.values()}) == 3
    cache = EngineCache(tmp_path)
    cache.store("backbone_grad", keys["fp16"], b"fp16 engine")
    assert cache.load("backbone_grad", keys["fp16"]) == b"fp16 engine"
    assert cache.load("backbone_grad", keys["int8"]) is None
    sidecar = json.loads(cache.paths("backbone_grad", keys["fp16"])[1].read_text())
    assert sidecar["key"]["precision"] == "fp16"


def test_bundle_precision(tiny_bundle, tiny_reduced, cifar_images):
    assert Bundle(tiny_bundle).precision == "fp32"
    bundle = Bundle(tiny_reduced)
    assert bundle.precision == "int8" and bundle.path("backbone_grad").name == "backbone_grad.int8.onnx"
    assert bundle.path("classifier").name == "classifier.onnx"
    manifest = bundle.manifest
    assert manifest["graphs"]["classifier"]["precision"] == "fp32"
    assert manifest["graphs"]["mcgs_step"]["precision"] == "int8"
    assert manifest["calibration"]["images"] == "train.npz[:2]" and manifest["calibration"]["size"] == 2
    assert manifest["source"]["backbone_grad_sha256"] == Bundle(tiny_bundle).sha256("backbone_grad")
    from mspd_edge.pipeline import Settings
    from mspd_edge.imaging import model_inputs
    from mspd_edge.measure.compare import protect_all

    images = list(cifar_images[0][:2])
    with OrtBackend(tiny_reduced, threads=1) as backend:
        assert backend.precision == "int8"
        settings = Settings(seed=0, n_samples=2).resolved(backend)
        labels = backend.predict(model_inputs(images, backend.input_size), "classifier")
        out = protect_all(backend, images, settings, labels)
    diff = np.abs(np.stack(out).astype(int) - np.stack(images).astype(int))
    assert diff.max() <= 8 and diff.max() > 0


def test_model_dir_of_another_precision_is_refused(tiny_bundle, tiny_reduced):
    with pytest.raises(BackendError, match="holds fp32 graphs, not int8"):
        runtime_bundle(BackendOptions(model_dir=tiny_bundle, precision="int8"), True)
    assert runtime_bundle(BackendOptions(model_dir=tiny_reduced, precision="int8"), True).precision == "int8"


def test_reduced_export_is_cached_once(tiny_zoo, cifar10_dir, tmp_path, monkeypatch, cifar_images):
    import cv2

    monkeypatch.setenv("MSPD_EDGE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MSPD_EDGE_CALIBRATION_DATA", str(cifar10_dir / "train.npz"))
    cv2.imwrite(str(tmp_path / "img.png"), cifar_images[0][0][:, :, ::-1])
    args = ["protect", tmp_path / "img.png", "-o", tmp_path / "out", "--backend", "ort", "--overwrite",
            "--precision", "int8", "--backbone", tiny_zoo["tiny-back"], "--classifier",
            tiny_zoo["tiny-cls"], "--report", tmp_path / "r.json", "-q", *FAST]
    first = invoke(*args)
    assert first.exit_code == 0, first.output
    assert "making int8 graphs" in first.stderr
    folders = sorted(p.name for p in (tmp_path / "cache" / "exports").iterdir())
    assert len(folders) == 2 and folders[1] == folders[0] + "-int8"
    report = json.loads((tmp_path / "r.json").read_text())["settings"]
    assert report["precision"] == "int8" and report["model_dir"].endswith("-int8")

    def no_reduce(*a, **k):
        raise AssertionError("made again")

    monkeypatch.setattr("mspd_edge.calibration.bundle.reduce_bundle", no_reduce)
    again = invoke(*args)
    assert again.exit_code == 0, again.output
    assert "making" not in again.stderr


@pytest.mark.skipif(cpu_reason("bf16") is not None, reason="this CPU has no native bf16")
def test_bench_and_parity_side_by_side(cifar10_dir, tiny_bundle, tiny_zoo, tmp_path):
    models = ["--backbone", tiny_zoo["tiny-back"], "--classifier", tiny_zoo["tiny-cls"]]
    bench = invoke("bench", "--backends", "torch@fp32,torch@bf16", "--no-isolate", "--batch-sizes", "1",
                   "--images", "1", "--data", cifar10_dir / "test.npz", "--json", tmp_path / "b.json",
                   *models, *FAST)
    assert bench.exit_code == 0, bench.output
    records = json.loads((tmp_path / "b.json").read_text())["records"]
    assert [(r["backend"], r["precision"]) for r in records] == [("torch@fp32", "fp32"), ("torch@bf16", "bf16")]
    assert records[0]["ratio_vs_torch"] == 1.0 and records[1]["ratio_vs_torch"] > 0
    assert "| torch@bf16 | bf16 | 1 |" in bench.stdout
    parity = invoke("parity", cifar10_dir / "test.npz", "--limit", "2", "--backends", "torch@bf16,ort",
                    "--model-dir", tiny_bundle, "--json", tmp_path / "p.json", *models, *FAST)
    assert parity.exit_code == 0, parity.output
    report = json.loads((tmp_path / "p.json").read_text())
    assert [r["backend"] for r in report["records"]] == ["torch@fp32", "torch@bf16", "ort"]
    assert report["records"][1]["precision"] == "bf16" and report["records"][2]["precision"] == "fp32"
    assert report["settings"]["tolerances"]["torch@bf16"]["min_sign_agreement"] == 0.99
    assert report["settings"]["tolerances"]["ort"]["min_cosine"] == 0.9999
