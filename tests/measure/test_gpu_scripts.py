"""The GPU scripts (benchmarks/gpu.sh, gpu_train.sh) on this machine: a clean refusal without
CUDA, and gpu_train.sh's whole path as a CPU smoke run (real training, real evaluate)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]


def _run(script, tmp_path, **env):
    env = {**os.environ, "OUT": str(tmp_path / "out"), "PYTHON": sys.executable,
           "MSPD_EDGE_CACHE": str(tmp_path / "cache"), "OMP_WAIT_POLICY": "PASSIVE", **env}
    return subprocess.run(["bash", f"benchmarks/{script}"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA GPU is present: the script would run")
@pytest.mark.parametrize("script", ["gpu.sh", "gpu_train.sh"])
def test_gpu_scripts_refuse_without_cuda(script, tmp_path):
    result = _run(script, tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: no CUDA here: torch sees no CUDA device (this script needs a GPU and torch with CUDA)"]


@pytest.mark.slow
def test_gpu_train_smoke_run_on_the_cpu(cifar10_dir, tmp_path):
    result = _run("gpu_train.sh", tmp_path, DEVICE="cpu", DATA=str(cifar10_dir), LIMIT="512", IMAGES="10",
                  TEST_IMAGES="100", BACKBONES="8:1", CLASSIFIER="cifar10-classifier", CLASSIFIER_EPOCHS="1")
    assert result.returncode == 0, result.stdout + result.stderr
    out = tmp_path / "out"
    summary = json.loads((out / "summary.json").read_text())
    assert [s["step"] for s in summary["steps"]] == ["classifier", "backbone-w8-e1"]
    assert summary["classifier"]["test_images"] == 100
    manifest = json.loads((out / "weights" / "cifar10-classifier.json").read_text())
    assert manifest["recipe"]["epochs"] == 1 and manifest["recipe"]["limit"] == 512
    backbone = summary["backbones"]["backbone-w8-e1"]
    assert set(backbone["gain"]["per_target"]) == {"cifar10-target-resnet18", "cifar10-target-preact",
                                                   "cifar10-target-wrn"}
    assert "| backbone-w8-e1 |" in result.stdout
