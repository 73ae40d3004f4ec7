"""Seconds per training epoch by backbone width, recipe and CPU precision (plan the compute first).

    python benchmarks/train_speed.py [--widths 16,24,32] [--recipes fgsm-rs] [--precisions fp32,bf16]
                                     [--steps 12] [--json benchmarks/results/train-speed.json]

Times ``--steps`` training steps (batch 128, after 2 warm-up steps) of the backbone's architecture
(DM PreActResNet-18, Swish) on real CIFAR-10 images, each configuration in the same process one
after the other, and projects one epoch of the 49,000 training images. Run it alone: nothing else
heavy beside it.
"""
import argparse
import json
import platform
import time

import torch

from mspd_edge.data import load_npz
from mspd_edge.train import TrainConfig
from mspd_edge.train.augment import random_crop_flip
from mspd_edge.train.recipes import RECIPES
from mspd_edge.zoo.embedded import EMBEDDED
from mspd_edge.zoo.registry import build

BATCH = 128
WARMUP_STEPS = 2
FIT_IMAGES = 49_000       # the training split less the 1,000 held out


def seconds_per_step(width, recipe, precision, images, labels, steps):
    """Median seconds of one training step."""
    spec = EMBEDDED["cifar10-backbone"]
    model = build(spec["arch"], **{**spec["arch_kwargs"], "base_width": width}).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)
    cfg = TrainConfig(recipe=recipe, precision=precision)
    step_fn, gen, times = RECIPES[recipe], torch.Generator().manual_seed(0), []
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16")
    for i in range(WARMUP_STEPS + steps):
        first = (i * BATCH) % (len(labels) - BATCH)
        x = random_crop_flip(images[first:first + BATCH].float().div_(255), gen)
        start = time.perf_counter()
        with autocast:
            step_fn(model, opt, x, labels[first:first + BATCH], cfg, None)
        times.append(time.perf_counter() - start)
    return sorted(times[WARMUP_STEPS:])[steps // 2]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", default="16,24,32")
    parser.add_argument("--recipes", default="fgsm-rs")
    parser.add_argument("--precisions", default="fp32,bf16")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--data", default="../shared/data/cifar10/train.npz")
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    raw, y, _ = load_npz(args.data, limit=BATCH * (WARMUP_STEPS + args.steps + 1))
    images, labels = torch.from_numpy(raw).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(y).long()
    rows = []
    for recipe in args.recipes.split(","):
        for width in map(int, args.widths.split(",")):
            for precision in args.precisions.split(","):
                step = seconds_per_step(width, recipe, precision, images, labels, args.steps)
                rows.append({"recipe": recipe, "width": width, "precision": precision, "s_per_step": step,
                             "epoch_minutes": step * FIT_IMAGES / BATCH / 60})
                print(f"{recipe:8s} width {width:2d} {precision}: {step:.3f} s/step, "
                      f"{rows[-1]['epoch_minutes']:.1f} min/epoch", flush=True)
    if args.json:
        machine = f"{platform.machine()} {platform.processor()}, {torch.get_num_threads()} threads, torch {torch.__version__}"
        with open(args.json, "w") as out:
            json.dump({"machine": machine, "batch": BATCH, "rows": rows}, out, indent=2)


if __name__ == "__main__":
    main()
