"""Backbone recipes compared by the protection they give (issue: a stronger default backbone).

    python scripts/compare_recipes.py [--width 16] [--epochs 6] [--recipes fgsm-rs,n-fgsm,fast-bat,fast-ls]
                                      [--precision fp32|bf16] [--images 500] [--out runs/recipes]
                                      [--data ../shared/data/cifar10] [--device cpu|cuda]

Per recipe: a DM PreActResNet-18 (Swish, the shipped backbone's architecture) of ``--width`` is
trained for ``--epochs`` into ``OUT/<recipe>-w<width>/`` (resumable: run again to continue),
with a manifest beside its weights so that every command takes it as ``--backbone``; then
``mspd-edge evaluate`` protects the last ``--images`` images of the training split (held out
from training: the training loop keeps its last 1,000 out) with it and ``CLASSIFIER``,
and attacks the three robust targets with PGD-10 L-inf (conditions none and mspd). Printed and
written to ``OUT/recipes.json``: the backbone's own held-out clean / PGD-10 accuracy, training
time, and the robust and clean gain (mspd - none) per target and on average; last, a markdown
table of them all. Heavy: run it alone.
"""
import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from mspd_edge.zoo.embedded import CIFAR10, CIFAR10_NORM, EMBEDDED

TARGETS = ("cifar10-target-resnet18", "cifar10-target-preact", "cifar10-target-wrn")
# The label classifier of the comparison (the recorded runs had its 20-epoch version: docs/models.md).
CLASSIFIER = "cifar10-classifier-large"
# The recipes of the issue, at the shipped backbone's schedule settings (cyclic, lr 0.2).
RECIPES = {
    "fgsm-rs": {"recipe": "fgsm-rs"},                                     # Wong et al. 2020
    "n-fgsm": {"recipe": "n-fgsm", "alpha": 8 / 255},                     # de Jorge et al. 2022
    "fast-bat": {"recipe": "fast-bat"},                                   # Zhang et al. 2022
    "fast-ls": {"recipe": "fgsm-rs", "label_smoothing": 0.2, "trades_beta": 3.0},   # Fast-LS
    "fgsm-rs-ema": {"recipe": "fgsm-rs", "ema_decay": 0.998},            # FGSM-RS, kept as its weights' EMA
    "fgsm-rs-eps12": {"recipe": "fgsm-rs", "eps": 12 / 255, "alpha": 15 / 255},   # a wider training budget
}


def holdout_npz(data, count, path):
    """The last ``count`` images of ``data/train.npz`` as an npz of the same layout."""
    if path.exists():
        return path
    with np.load(Path(data) / "train.npz", allow_pickle=False) as z:
        jpeg, offsets, y, classes = z["jpeg"], z["offsets"], z["y"], z["classes"]
    first = len(y) - count
    part = jpeg[offsets[first]:offsets[-1]]
    np.savez(path, jpeg=part, offsets=offsets[first:] - offsets[first], y=y[first:], classes=classes)
    return path


def train_backbone(name, recipe, width, epochs, data, out, limit=0, precision="fp32", device="cpu"):
    """Train (or resume) one backbone; returns its manifest path."""
    import torch

    from mspd_edge.train import TrainConfig, train
    from mspd_edge.zoo import save_weights

    arch_kwargs = {**EMBEDDED["cifar10-backbone"]["arch_kwargs"], "base_width": width}
    cfg = TrainConfig(arch="dm_preact_resnet", arch_kwargs=arch_kwargs, data=str(data), out=str(out),
                      epochs=epochs, lr_max=0.2, schedule="cyclic", seed=0, limit=limit, precision=precision,
                      device=device, **recipe)
    report = train(cfg, log=lambda line: print(f"[{name}] {line}", flush=True))
    state = torch.load(out / "best.pt", weights_only=True)
    save_weights(state, out / "model.pt")
    manifest = {"name": name, "role": "backbone", "arch": "dm_preact_resnet", "arch_kwargs": arch_kwargs,
                **CIFAR10, "classes": report["classes"], "pair": CLASSIFIER,
                "recipe": report["config"], "best_epoch": report["best_epoch"],
                "train_seconds": round(report["train_seconds"]),
                "training_check": {"test_images": report["test_images"], "clean": report["test_clean"],
                                   "pgd10": report["test_pgd10"]}}
    (out / "model.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return out / "model.json", manifest


def protection(manifest, holdout, images, out, device="cpu"):
    """Robust and clean gain of ``manifest`` as the backbone (evaluate's results.json)."""
    subprocess.run([sys.executable, "-m", "mspd_edge.cli", "evaluate", "--data", str(holdout),
                    "--images", str(images), "-o", str(out), "--backbone", str(manifest),
                    "--classifier", CLASSIFIER, "--targets", ",".join(TARGETS),
                    "--attacks", "pgd-linf", "--conditions", "none,mspd", "--seed", "0",
                    "--threads", "2", "--device", device, "-q"], check=True)
    results = json.loads((out / "results.json").read_text())["results"]
    gains = {t: {"robust": results[t]["mspd"]["robust"]["pgd-linf"] - results[t]["none"]["robust"]["pgd-linf"],
                 "clean": results[t]["mspd"]["clean"] - results[t]["none"]["clean"]} for t in TARGETS}
    mean = {k: sum(g[k] for g in gains.values()) / len(gains) for k in ("robust", "clean")}
    return {"per_target": gains, "mean": mean}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--recipes", default="fgsm-rs,n-fgsm,fast-bat,fast-ls", help=f"of {', '.join(RECIPES)}")
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--out", type=Path, default=Path("runs/recipes"))
    parser.add_argument("--data", type=Path, default=Path("../shared/data/cifar10"))
    parser.add_argument("--limit", type=int, default=0, help="train on the first LIMIT images (smoke runs)")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                        help="CPU training passes (bf16: 1.8x faster where bf16 is native)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="training and evaluation (CUDA trains in fp16 autocast)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    holdout = holdout_npz(args.data, args.images, args.out / f"holdout{args.images}.npz")
    table = {}
    for recipe in args.recipes.split(","):
        name = f"{recipe}-w{args.width}"
        manifest_path, manifest = train_backbone(name, RECIPES[recipe], args.width, args.epochs,
                                                 args.data, args.out / name, args.limit,
                                                 args.precision, args.device)
        gain = protection(manifest_path, holdout, args.images, args.out / name / "evaluate", args.device)
        table[name] = {"train_seconds": manifest["train_seconds"], "backbone": manifest["training_check"],
                       "gain": gain}
        print(json.dumps({name: table[name]}), flush=True)
        (args.out / "recipes.json").write_text(json.dumps(table, indent=2) + "\n")
    print(markdown(table))


def markdown(table):
    """The comparison as a markdown table (points; gains are mspd - none, mean of the targets)."""
    lines = ["| recipe | train time | backbone clean / PGD-10 (first 1,000 test) | robust gain "
             + " / ".join(t.removeprefix("cifar10-target-") for t in TARGETS) + " | mean robust gain | mean clean gain |",
             "|---|---|---|---|---|---|"]
    for name, row in table.items():
        per, mean = row["gain"]["per_target"], row["gain"]["mean"]
        lines.append(f"| {name} | {row['train_seconds'] / 60:.0f} min | {100 * row['backbone']['clean']:.1f} / "
                     f"{100 * row['backbone']['pgd10']:.1f} | "
                     + " / ".join(f"{100 * per[t]['robust']:+.1f}" for t in TARGETS)
                     + f" | {100 * mean['robust']:+.1f} | {100 * mean['clean']:+.1f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
