"""Seconds per training epoch by model width, recipe and CPU precision (plan the compute first).

    python benchmarks/train_speed.py [--model cifar10-backbone] [--scales 1,1.5,2] [--recipes fgsm-rs]
                                     [--precisions fp32,bf16] [--layouts nchw] [--batch 128] [--steps 12]
                                     [--json benchmarks/results/train-speed.json]

Times ``--steps`` training steps (after 2 warm-up steps) of an embedded model's architecture
(``--model``: its spec in ``mspd_edge.zoo.embedded``, every width in it multiplied by each of
``--scales``: the backbone's base width 16 becomes 24 and 32 at 1.5 and 2) on real CIFAR-10
images, each configuration in the same process one after the other, and projects one epoch of
the 49,000 training images. ``--layouts nchw,nhwc`` also times torch's channels-last memory
format (model and batches). Run it alone: nothing else heavy beside it.
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

WARMUP_STEPS = 2
FIT_IMAGES = 49_000       # the training split less the 1,000 held out
WIDTH_KEYS = ("base_width", "widths", "stem")


def scaled(arch_kwargs, scale):
    """``arch_kwargs`` with every width (WIDTH_KEYS) multiplied by ``scale``."""
    def times(value):
        return [round(v * scale) for v in value] if isinstance(value, list) else round(value * scale)
    return {k: times(v) if k in WIDTH_KEYS else v for k, v in arch_kwargs.items()}


LAYOUTS = {"nchw": torch.contiguous_format, "nhwc": torch.channels_last}


def seconds_per_step(spec, arch_kwargs, recipe, precision, layout, images, labels, steps, batch):
    """Median seconds of one training step."""
    model = build(spec["arch"], **arch_kwargs).train().to(memory_format=LAYOUTS[layout])
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)
    cfg = TrainConfig(recipe=recipe, precision=precision)
    step_fn, gen, times = RECIPES[recipe], torch.Generator().manual_seed(0), []
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16")
    for i in range(WARMUP_STEPS + steps):
        first = (i * batch) % (len(labels) - batch)
        x = random_crop_flip(images[first:first + batch].float().div_(255), gen)
        x = x.contiguous(memory_format=LAYOUTS[layout])
        start = time.perf_counter()
        with autocast:
            step_fn(model, opt, x, labels[first:first + batch], cfg, None)
        times.append(time.perf_counter() - start)
    return sorted(times[WARMUP_STEPS:])[steps // 2]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="cifar10-backbone", choices=sorted(EMBEDDED))
    parser.add_argument("--scales", default="1,1.5,2")
    parser.add_argument("--recipes", default="fgsm-rs")
    parser.add_argument("--precisions", default="fp32,bf16")
    parser.add_argument("--layouts", default="nchw", help="nchw, nhwc (channels last) or both")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--data", default="../shared/data/cifar10/train.npz")
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    raw, y, _ = load_npz(args.data, limit=args.batch * (WARMUP_STEPS + args.steps + 1))
    images, labels = torch.from_numpy(raw).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(y).long()
    spec, rows = EMBEDDED[args.model], []
    for recipe in args.recipes.split(","):
        for scale in map(float, args.scales.split(",")):
            arch_kwargs = scaled(spec["arch_kwargs"], scale)
            widths = {k: arch_kwargs[k] for k in WIDTH_KEYS if k in arch_kwargs}
            for precision in args.precisions.split(","):
                for layout in args.layouts.split(","):
                    step = seconds_per_step(spec, arch_kwargs, recipe, precision, layout, images, labels,
                                            args.steps, args.batch)
                    rows.append({"recipe": recipe, "scale": scale, **widths, "precision": precision,
                                 "layout": layout, "s_per_step": step,
                                 "epoch_minutes": step * FIT_IMAGES / args.batch / 60})
                    print(f"{recipe:8s} {widths} {precision} {layout}: {step:.3f} s/step, "
                          f"{rows[-1]['epoch_minutes']:.1f} min/epoch", flush=True)
    if args.json:
        machine = f"{platform.machine()} {platform.processor()}, {torch.get_num_threads()} threads, torch {torch.__version__}"
        with open(args.json, "w") as out:
            json.dump({"machine": machine, "model": args.model, "batch": args.batch, "rows": rows}, out, indent=2)


if __name__ == "__main__":
    main()
