"""``mspd-edge calibrate --report``: every precision that runs here, one run, same images and noise."""
import json

import pytest
from click.testing import CliRunner

from mspd_edge import cli
from mspd_edge.backends import BackendOptions
from mspd_edge.measure.precision import CANDIDATES, runnable


def test_report_command(cifar10_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("MSPD_EDGE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MSPD_EDGE_CALIBRATION_DATA", str(cifar10_dir / "train.npz"))
    out = tmp_path / "report"
    result = CliRunner().invoke(cli.main, [
        "calibrate", "--report", str(out), "--data", str(cifar10_dir / "test.npz"), "--images", "2",
        "--n-samples", "2", "--batch-sizes", "1,2", "--threads", "1", "--rounds", "1"])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "precision.json").read_text())
    plan = runnable(BackendOptions(threads=1))
    ran = [(r["backend"], r["precision"]) for r in report["rows"]]
    assert ran == [(n, p) for n, p, why in plan if why is None]
    assert {("torch", "fp32"), ("ort", "fp32"), ("ort", "int8"), ("ort", "fp16")} <= set(ran)
    assert len(ran) + len(report["skipped"]) == len(CANDIDATES)
    for row in report["rows"]:
        assert set(row) >= {"grad_cosine", "sign_agreement", "identical", "max_diff_255",
                            "ms_per_image_b1", "ms_per_image_b2", "speedup_b1", "speedup_b2"}
        if row["precision"] == "fp32":
            assert row["grad_cosine"] == pytest.approx(1.0, abs=1e-12)   # a vector's cosine with itself
            assert row["identical"] == 1.0 and row["speedup_b1"] == 1.0
        else:
            assert 0.9 < row["grad_cosine"] <= 1.0 and 0.5 < row["sign_agreement"] <= 1.0
    assert [r["emulated"] for r in report["rows"]].count(True) == 1
    assert "| ort | int8 |" in (out / "precision.md").read_text()
    assert (out / "precision.png").read_bytes()[:4] == b"\x89PNG"
    assert report["settings"]["n_samples"] == 2 and report["settings"]["images"] == 2
