"""The training loop: every recipe of ``recipes.py``, resumable, with an overfit guard on the
recipe's own robustness check (PGD-10; noisy accuracy for gaussian; sparse-L0 for fast-ls-l0).
The airbench recipe brings its own preparation, optimiser and epoch (``airbench.py``)."""
import json
import time
from contextlib import nullcontext
from dataclasses import asdict
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm import tqdm

from ..data import load_npz
from ..defaults import SPARSE_K
from ..util import write_atomic
from ..zoo.registry import build
from . import airbench
from .augment import random_crop_flip
from .config import CLEAN_RECIPES, LAST_EPOCH_RECIPES, ROBUST_METRIC, TrainConfig
from .evaluate import accuracy
from .recipes import RECIPES

L0_CHECK_STEPS = 20   # sparse-l0 iterations of fast-ls-l0's held-out and test check (k = SPARSE_K)
# Model and batches in channels-last layout: 1.2x (backbone, FGSM) to 1.6x (label classifier) faster
# CPU training steps in bf16 (benchmarks/train_speed.py --layouts nchw,nhwc; docs/models.md); but
# Fast-BAT's double backward runs 1.4x slower channels-last, so it keeps the contiguous layout.
CONTIGUOUS_RECIPES = ("fast-bat",)


def _layout(cfg):
    return torch.contiguous_format if cfg.recipe in CONTIGUOUS_RECIPES else torch.channels_last


def _lr_at(cfg, progress):
    """Learning rate at ``progress`` in [0, 1] of the run."""
    if cfg.schedule == "cyclic":
        return float(np.interp(progress, [0, 0.4, 1], [0, cfg.lr_max, 0]))
    if cfg.schedule == "onecycle":
        warm = 0.25
        if progress < warm:
            return cfg.lr_max * progress / warm
        return cfg.lr_max * 0.5 * (1 + np.cos(np.pi * (progress - warm) / (1 - warm)))
    if cfg.schedule == "triangle":
        return float(np.interp(progress, [0, 0.23, 1], [0.2 * cfg.lr_max, cfg.lr_max, 0.07 * cfg.lr_max]))
    raise ValueError(f"unknown schedule {cfg.schedule!r}")


def _tensors(split):
    images, labels, _ = split
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(labels)


def _load_splits(cfg):
    """(fit, held-out, test) uint8 tensors; held-out = the last ``holdout`` train images."""
    data = Path(cfg.data)
    with np.load(data / "train.npz", allow_pickle=False) as z:
        n_train = len(z["y"])
    n_fit = n_train - cfg.holdout
    fit = load_npz(data / "train.npz", limit=min(cfg.limit or n_fit, n_fit))
    held = load_npz(data / "train.npz", start=n_fit, limit=cfg.holdout)
    test = load_npz(data / "test.npz", limit=cfg.test_images)
    return _tensors(fit), _tensors(held), _tensors(test), fit[2]


def _state(model, opt, epoch, history, best, rng, average):
    return {"model": model.state_dict(), "opt": opt.state_dict(), "epoch": epoch,
            "history": history, "best": best, "rng": rng.get_state(),
            "torch_rng": torch.get_rng_state(), "average": None if average is None else average.state_dict()}


def _average(model, cfg):
    """The EMA of weights and BN statistics for ``cfg.ema_decay > 0`` (torch's AveragedModel), else None."""
    if cfg.ema_decay <= 0:
        return None
    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema_decay), use_buffers=True)


def _averaged(step_fn, average):
    """``step_fn`` followed by an update of ``average`` from the stepped model."""
    def step(model, *args):
        result = step_fn(model, *args)
        average.update_parameters(model)
        return result
    return step


def _metric(cfg):
    """The name of the recipe's robustness check (None for the clean recipes)."""
    return None if cfg.recipe in CLEAN_RECIPES else ROBUST_METRIC.get(cfg.recipe, "pgd10")


def _check(model, split, cfg, device):
    """Clean and robust accuracy (the recipe's check, None for standard) on ``split``."""
    clean, metric = accuracy(model, *split, device=device), _metric(cfg)
    options = {"pgd10": {"eps": cfg.eps, "steps": 10}, "noisy": {"noise_sigma": cfg.noise_sigma, "seed": cfg.seed},
               "l0": {"l0_pixels": SPARSE_K, "steps": L0_CHECK_STEPS, "seed": cfg.seed}}.get(metric)
    return clean, None if metric is None else accuracy(model, *split, device=device, **options)


def _cpu_autocast(cfg, device):
    """bf16 autocast for ``cfg.precision == "bf16"`` on the CPU (weights and optimizer stay fp32)."""
    enabled = device.type == "cpu" and cfg.precision == "bf16"
    return torch.autocast("cpu", dtype=torch.bfloat16) if enabled else nullcontext()


def _run_epoch(model, opt, step_fn, fit, cfg, epoch, gen, device, scaler):
    model.train()
    n = len(fit[1])
    order = torch.randperm(n, generator=gen)
    steps = n // cfg.batch_size
    total_loss = total_correct = seen = 0
    bar = tqdm(range(steps), desc=f"epoch {epoch + 1}/{cfg.epochs}", leave=False, mininterval=2)
    for i in bar:
        idx = order[i * cfg.batch_size:(i + 1) * cfg.batch_size]
        x = random_crop_flip(fit[0][idx].float().div_(255), gen).to(device).contiguous(memory_format=_layout(cfg))
        y = fit[1][idx].to(device)
        for group in opt.param_groups:
            group["lr"] = _lr_at(cfg, (epoch + i / steps) / cfg.epochs)
        with _cpu_autocast(cfg, device):
            loss, logits = step_fn(model, opt, x, y, cfg, scaler)
        total_loss += loss * len(y)
        total_correct += (logits.argmax(1) == y).sum().item()
        seen += len(y)
        bar.set_postfix(loss=f"{total_loss / seen:.3f}", acc=f"{total_correct / seen:.3f}")
    return total_loss / seen, total_correct / seen


def _optimizer(model, cfg):
    if cfg.recipe == "airbench":
        return airbench.optimizer(model, cfg)
    return torch.optim.SGD(model.parameters(), lr=0.0, momentum=cfg.momentum, nesterov=True,
                           weight_decay=cfg.weight_decay)


def _epoch_fn(cfg, device):
    if cfg.recipe == "airbench":
        return partial(airbench.run_epoch, lr_at=partial(_lr_at, cfg), autocast=lambda: _cpu_autocast(cfg, device))
    return _run_epoch


def train(cfg: TrainConfig, resume=True, log=print):
    """Train ``cfg.arch`` with ``cfg.recipe``; returns a report dict (also saved as report.json).

    Checkpoints after every epoch to ``cfg.out/last.pt``; ``resume`` continues from it.
    The weights kept are those with the best held-out PGD accuracy (clean for the clean recipes;
    the last epoch's for ``LAST_EPOCH_RECIPES``); with ``cfg.ema_decay`` the EMA's, checked in its place.
    """
    if cfg.recipe not in RECIPES:
        raise ValueError(f"unknown recipe {cfg.recipe!r}; known: {tuple(RECIPES)}")
    if cfg.ema_decay > 0 and cfg.recipe in LAST_EPOCH_RECIPES:
        raise ValueError(f"ema_decay: the {cfg.recipe} recipe keeps its own weight average (Lookahead)")
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    rng = torch.Generator().manual_seed(cfg.seed)
    device = torch.device(cfg.device)
    fit, held, test, classes = _load_splits(cfg)
    model = build(cfg.arch, **cfg.arch_kwargs)
    if cfg.recipe == "airbench":
        airbench.prepare(model, fit[0])
    model = model.to(device, memory_format=_layout(cfg))
    opt = _optimizer(model, cfg)
    average = _average(model, cfg)
    kept = model if average is None else average.module
    scaler = torch.amp.GradScaler("cuda") if device.type == "cuda" else None
    history, best, start = [], None, 0
    ckpt = out / "last.pt"
    if resume and ckpt.exists():
        state = torch.load(ckpt, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        if average is not None:
            average.load_state_dict(state["average"])
        rng.set_state(state["rng"])
        torch.set_rng_state(state["torch_rng"])
        history, best, start = state["history"], state["best"], state["epoch"]
        log(f"resumed {ckpt} at epoch {start}")
    (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2))
    step_fn, run_epoch = RECIPES[cfg.recipe], _epoch_fn(cfg, device)
    if average is not None:
        step_fn = _averaged(step_fn, average)
    for epoch in range(start, cfg.epochs):
        t0 = time.time()
        loss, acc = run_epoch(model, opt, step_fn, fit, cfg, epoch, rng, device, scaler)
        clean, robust = _check(kept, held, cfg, device)
        score = clean if robust is None else robust
        history.append({"epoch": epoch + 1, "loss": loss, "train_acc": acc, "held_clean": clean,
                        f"held_{_metric(cfg) or 'pgd10'}": robust, "seconds": time.time() - t0})
        log(f"epoch {epoch + 1}: loss {loss:.3f} train acc {acc:.3f} held-out clean {clean:.3f}"
            + ("" if robust is None else f" {_metric(cfg)} {robust:.3f}") + f" ({time.time() - t0:.0f} s)")
        if best is None or score > best["score"] or cfg.recipe in LAST_EPOCH_RECIPES:
            best = {"score": score, "epoch": epoch + 1,
                    "state": {k: v.detach().cpu().clone() for k, v in kept.state_dict().items()}}
        state = _state(model, opt, epoch + 1, history, best, rng, average)
        write_atomic(ckpt, lambda out: torch.save(state, out))
        if robust is not None and robust < best["score"] - cfg.overfit_drop:
            log(f"catastrophic overfitting at epoch {epoch + 1}: {_metric(cfg)} {robust:.3f} "
                f"< best {best['score']:.3f}; stopping, keeping epoch {best['epoch']}")
            break
    kept.load_state_dict(best["state"])
    torch.save(best["state"], out / "best.pt")
    report = _report(kept, test, cfg, history, best, classes, device)
    (out / "report.json").write_text(json.dumps(report, indent=2))
    robust = report[f"test_{_metric(cfg) or 'pgd10'}"]
    log(f"test ({report['test_images']} images): clean {report['test_clean']:.3f}"
        + ("" if robust is None else f" {_metric(cfg)} {robust:.3f}"))
    return report


def _report(model, test, cfg, history, best, classes, device):
    """The run's report; ``test_<metric>`` holds the recipe's robustness check (``test_pgd10``:
    None for standard)."""
    clean, robust = _check(model, test, cfg, device)
    return {"config": asdict(cfg), "best_epoch": best["epoch"], "history": history,
            "train_seconds": sum(h["seconds"] for h in history), "classes": classes,
            "test_images": len(test[1]), "test_clean": clean, f"test_{_metric(cfg) or 'pgd10'}": robust}
