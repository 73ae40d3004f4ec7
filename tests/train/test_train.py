"""The training command runs a tiny budget end to end, and resumes."""
import json

import pytest
import torch
from click.testing import CliRunner

from mspd_edge.backends.precision import cpu_reason
from mspd_edge.train import TrainConfig, train
from mspd_edge.cli.train import train_command
from mspd_edge.train.loop import _lr_at

TINY = {"arch_kwargs": {"base_width": 4}, "epochs": 1, "limit": 256, "holdout": 128,
        "test_images": 64, "batch_size": 64}


@pytest.mark.parametrize("recipe,extra", [("standard", {"label_smoothing": 0.1}), ("fgsm-rs", {}),
                                          ("fgsm-rs", {"trades_beta": 1.0}), ("n-fgsm", {}), ("fast-bat", {})])
def test_recipes_run_end_to_end(cifar10_dir, tmp_path, recipe, extra):
    cfg = TrainConfig(recipe=recipe, data=str(cifar10_dir), out=str(tmp_path), **TINY, **extra)
    report = train(cfg, log=lambda _: None)
    assert 0 <= report["test_clean"] <= 1 and report["test_images"] == 64
    assert (report["test_pgd10"] is None) == (recipe == "standard")
    assert (tmp_path / "best.pt").exists() and json.loads((tmp_path / "report.json").read_text())


@pytest.mark.parametrize("recipe,extra,metric", [("gaussian", {"noise_sigma": 0.25}, "noisy"),
                                                 ("fast-ls-l0", {"l0_pixels": 10, "trades_beta": 3.0,
                                                                 "label_smoothing": 0.2}, "l0")])
def test_threat_recipes_run_end_to_end(cifar10_dir, tmp_path, recipe, extra, metric):
    cfg = TrainConfig(recipe=recipe, data=str(cifar10_dir), out=str(tmp_path), **TINY, **extra)
    report = train(cfg, log=lambda _: None)
    assert 0 <= report[f"test_{metric}"] <= 1 and "test_pgd10" not in report
    assert f"held_{metric}" in report["history"][0]


def test_gaussian_recipe_needs_a_sigma(cifar10_dir, tmp_path):
    with pytest.raises(ValueError, match="noise_sigma"):
        train(TrainConfig(recipe="gaussian", data=str(cifar10_dir), out=str(tmp_path), **TINY), log=lambda _: None)


def test_resume_continues_from_checkpoint(cifar10_dir, tmp_path):
    cfg = TrainConfig(recipe="standard", data=str(cifar10_dir), out=str(tmp_path), **TINY)
    train(cfg, log=lambda _: None)
    lines = []
    cfg.epochs = 2
    report = train(cfg, log=lines.append)
    assert lines[0].startswith("resumed") and [h["epoch"] for h in report["history"]] == [1, 2]
    assert torch.load(tmp_path / "last.pt", weights_only=False)["epoch"] == 2


def test_schedules():
    cfg = TrainConfig(lr_max=0.2)
    assert _lr_at(cfg, 0) == 0 and _lr_at(cfg, 0.4) == pytest.approx(0.2) and _lr_at(cfg, 1) == 0
    cfg.schedule = "onecycle"
    assert _lr_at(cfg, 0.25) == pytest.approx(0.2) and _lr_at(cfg, 1) == pytest.approx(0)


def test_cli(cifar10_dir, tmp_path):
    result = CliRunner().invoke(train_command, [
        "--recipe", "standard", "--data", str(cifar10_dir), "-o", str(tmp_path), "--epochs", "1",
        "--limit", "128", "--test-images", "32", "--batch-size", "64", "--arch-kwargs", '{"base_width": 4}'])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["test_images"] == 32


@pytest.mark.skipif(cpu_reason("bf16") is not None, reason="this CPU has no native bf16")
def test_bf16_autocast_trains_the_cpu_passes_in_bf16(cifar10_dir, tmp_path, monkeypatch):
    seen = []
    original = torch.nn.functional.conv2d

    def conv2d(*args, **kwargs):
        out = original(*args, **kwargs)
        seen.append(out.dtype)
        return out

    monkeypatch.setattr(torch.nn.functional, "conv2d", conv2d)   # records, computes the same
    cfg = TrainConfig(recipe="fgsm-rs", data=str(cifar10_dir), out=str(tmp_path), precision="bf16", **TINY)
    report = train(cfg, log=lambda _: None)
    assert torch.bfloat16 in seen and 0 <= report["test_clean"] <= 1
    weights = torch.load(tmp_path / "best.pt", weights_only=True)
    assert all(v.dtype == torch.float32 for v in weights.values() if v.is_floating_point())


@pytest.mark.skipif(cpu_reason("bf16") is None, reason="this CPU has native bf16")
def test_bf16_training_is_refused_where_it_would_be_emulated(tmp_path):
    result = CliRunner().invoke(train_command, ["--precision", "bf16", "-o", str(tmp_path)])
    assert result.exit_code == 2 and "AVX512_BF16 or AMX-BF16" in result.output
