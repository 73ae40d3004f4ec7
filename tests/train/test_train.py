"""The training command runs a tiny budget end to end, and resumes."""
import json

import pytest
import torch
from click.testing import CliRunner

from mspd_edge.backends.precision import cpu_reason
from mspd_edge.train import TrainConfig, train
from mspd_edge.cli.train import train_command
from mspd_edge.train import airbench
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


def test_ema_is_the_model_checked_kept_and_resumed(cifar10_dir, tmp_path):
    cfg = TrainConfig(recipe="fgsm-rs", data=str(cifar10_dir), out=str(tmp_path), ema_decay=0.5, **TINY)
    train(cfg, log=lambda _: None)
    last, kept = torch.load(tmp_path / "last.pt", weights_only=False), torch.load(tmp_path / "best.pt")
    assert last["average"]["n_averaged"] == 256 // 64                 # one update a step
    average = {k.removeprefix("module."): v for k, v in last["average"].items() if k.startswith("module.")}
    assert kept.keys() == average.keys()
    for name, value in kept.items():
        torch.testing.assert_close(value, average[name])
    assert not torch.equal(kept["conv_2d.weight"], last["model"]["conv_2d.weight"])   # not the raw weights
    cfg.epochs = 2
    train(cfg, log=lambda _: None)
    assert torch.load(tmp_path / "last.pt", weights_only=False)["average"]["n_averaged"] == 2 * 256 // 64


def test_ema_is_refused_beside_lookahead(tmp_path):
    with pytest.raises(ValueError, match="Lookahead"):
        train(TrainConfig(recipe="airbench", out=str(tmp_path), ema_decay=0.9, **TINY), log=lambda _: None)


def test_schedules():
    cfg = TrainConfig(lr_max=0.2)
    assert _lr_at(cfg, 0) == 0 and _lr_at(cfg, 0.4) == pytest.approx(0.2) and _lr_at(cfg, 1) == 0
    cfg.schedule = "onecycle"
    assert _lr_at(cfg, 0.25) == pytest.approx(0.2) and _lr_at(cfg, 1) == pytest.approx(0)
    cfg.schedule = "triangle"
    assert [_lr_at(cfg, p) for p in (0, 0.23, 1)] == pytest.approx([0.04, 0.2, 0.014])


def test_cli_trains_the_airbench_recipe(cifar10_dir, tmp_path):
    result = CliRunner().invoke(train_command, [
        "--recipe", "airbench", "--arch", "cifarnet", "--arch-kwargs", json.dumps(AIRBENCH_NET["arch_kwargs"]),
        "--schedule", "triangle", "--lr-max", "11.5", "--momentum", "0.85", "--weight-decay", "0.0153",
        "--data", str(cifar10_dir), "-o", str(tmp_path), "--epochs", "1", "--limit", "256",
        "--test-images", "32", "--batch-size", "64"])
    assert result.exit_code == 0, result.output
    config = json.loads((tmp_path / "config.json").read_text())
    assert (config["recipe"], config["momentum"], config["weight_decay"]) == ("airbench", 0.85, 0.0153)


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


AIRBENCH_NET = {"arch": "cifarnet", "arch_kwargs": {"widths": [8, 16, 16], "stem": 24, "whiten": 2,
                                                    "bn_eps": 1e-12, "logit_scale": 1 / 9}}


def _airbench_cfg(cifar10_dir, tmp_path, **extra):
    return TrainConfig(recipe="airbench", data=str(cifar10_dir), out=str(tmp_path), lr_max=11.5, momentum=0.85,
                       weight_decay=0.0153, schedule="triangle", label_smoothing=0.2,
                       **{**TINY, "arch_kwargs": AIRBENCH_NET["arch_kwargs"], "epochs": 4}, **extra,
                       arch=AIRBENCH_NET["arch"])


def test_airbench_recipe_runs_and_resumes(cifar10_dir, tmp_path):
    cfg = _airbench_cfg(cifar10_dir, tmp_path)     # 4 epochs: the EMA's (from epoch 3) included
    report = train(cfg, log=lambda _: None)
    assert report["test_pgd10"] is None and 0 <= report["test_clean"] <= 1 and len(report["history"]) == 4
    assert report["best_epoch"] == 4      # the last epoch is kept (the schedule ends on the average)
    weights = torch.load(tmp_path / "best.pt", weights_only=True)
    assert all(torch.equal(weights[f"groups.{g}.norm{i}.weight"], torch.ones(16 if g else 8))
               for g in range(3) for i in (1, 2))     # BN scales stay frozen at 1
    cfg.epochs, lines = 5, []
    report = train(cfg, log=lines.append)
    assert [h["epoch"] for h in report["history"]] == [1, 2, 3, 4, 5] and report["best_epoch"] == 5
    assert lines[0].startswith("resumed")


def test_airbench_whitening_stem_decorrelates_patches(cifar10_dir):
    from mspd_edge.data import load_npz
    from mspd_edge.zoo.registry import build

    images = torch.from_numpy(load_npz(cifar10_dir / "train.npz", limit=512)[0]).permute(0, 3, 1, 2)
    model = build(AIRBENCH_NET["arch"], **AIRBENCH_NET["arch_kwargs"])
    airbench.prepare(model, images)
    stem = model.stem[0]
    with torch.no_grad():
        x = model.normalize(images.float() / 255)
        white = torch.nn.functional.conv2d(x, stem.weight[:12]).permute(1, 0, 2, 3).reshape(12, -1)
    patches = x.unfold(2, 2, 1).unfold(3, 2, 1).permute(0, 2, 3, 1, 4, 5).reshape(-1, 12)
    eigenvalues = torch.linalg.eigvalsh(patches.T @ patches / len(patches)).flip(0)
    # the patches' second moments become diag(lambda / (lambda + eps)): 1 where lambda >> eps
    torch.testing.assert_close(white @ white.T / white.shape[1],
                               torch.diag(eigenvalues / (eigenvalues + airbench.WHITEN_EPS)), atol=1e-3, rtol=0)
    assert not stem.weight.requires_grad and torch.equal(stem.weight[12:], -stem.weight[:12])
    conv = model.groups[1].conv1.weight       # Dirac: an identity on the first 8 of its 16 outputs
    assert conv[:8, :, 1, 1].equal(torch.eye(8)) and conv[:8].abs().sum() == 8


def test_airbench_optimizer_is_decoupled():
    from mspd_edge.zoo.registry import build

    cfg = TrainConfig(recipe="airbench", lr_max=11.5, momentum=0.85, weight_decay=0.0153, batch_size=1024)
    model = build(AIRBENCH_NET["arch"], **AIRBENCH_NET["arch_kwargs"])
    model.stem[0].weight.requires_grad_(False)
    biases, others = airbench.optimizer(model, cfg).param_groups
    assert biases["scale"] == pytest.approx(airbench.BIAS_SCALER * others["scale"])
    # the decay per step (rate x decay) is the same for both groups: decoupled from the rate
    assert biases["scale"] * biases["weight_decay"] == pytest.approx(others["scale"] * others["weight_decay"])
    assert len(biases["params"]) == 6 and not any(p is model.stem[0].weight for p in others["params"])


def test_lookahead_moves_the_average_and_sets_the_weights():
    layer = torch.nn.Linear(2, 2)
    lookahead = airbench.Lookahead(layer)
    start = layer.weight.detach().clone()
    with torch.no_grad():
        layer.weight.add_(1.0)
    lookahead.update(layer, decay=0.75)
    torch.testing.assert_close(layer.weight.detach(), start + 0.25)
    with torch.no_grad():
        layer.weight.add_(5.0)
    lookahead.update(layer, decay=1.0)      # the average holds: the weights go back to it
    torch.testing.assert_close(layer.weight.detach(), start + 0.25)
    assert airbench.Lookahead.decay(0.0) == 0 and airbench.Lookahead.decay(1.0) == pytest.approx(0.95 ** 5)
