"""Protect ms/image by backbone width and backend/precision: what a wider default backbone costs.

    python benchmarks/backbone_width_speed.py [--widths 16,24,32] [--backends ort@fp32,torch@fp32,torch@bf16]
                                              [--pairs BACKBONE+CLASSIFIER,...]
                                              [--images 64] [--rounds 3] [--json benchmarks/results/backbone-width-speed.json]

The shipped backbone's architecture (DM PreActResNet-18, Swish) at each width, random weights
(speed does not depend on them), as a manifest + fp16 weights in a temporary folder, timed by
`mspd-edge bench` with the shipped classifier, batch 1, 2 threads, in one process per width
one after the other. ``--pairs`` times shipped backbone + classifier pairs instead (the old and
the new default side by side). Run it alone: nothing else heavy beside it.
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from mspd_edge.zoo import save_weights
from mspd_edge.zoo.locate import WEIGHTS_DIR
from mspd_edge.zoo.registry import build

BACKBONE = "cifar10-backbone"


def write_backbone(width, folder):
    """A random-weight backbone of ``width`` (manifest + fp16 weights); the manifest's path."""
    manifest = json.loads((WEIGHTS_DIR / f"{BACKBONE}.json").read_text())
    kwargs = {**manifest["arch_kwargs"], "base_width": width}
    manifest = {**manifest, "name": f"{BACKBONE}-w{width}-random", "arch_kwargs": kwargs}
    for key in ("weights_sha256", "training_check", "test", "history"):
        manifest.pop(key, None)
    torch.manual_seed(0)
    state = build(manifest["arch"], **kwargs).state_dict()
    path = folder / f"w{width}.json"
    save_weights(state, path.with_suffix(".pt"))
    path.write_text(json.dumps(manifest, indent=2))
    return path


def bench(backbone, classifier, args, folder, out):
    """`mspd-edge bench` records of one backbone + classifier pair (batch 1, 2 threads)."""
    subprocess.run([sys.executable, "-m", "mspd_edge.cli", "bench", "--backbone", backbone,
                    "--classifier", classifier, "--backends", args.backends, "--batch-sizes", "1",
                    "--images", str(args.images), "--rounds", str(args.rounds), "--threads", "2",
                    "--json", str(out)], check=True, env={**os.environ, "MSPD_EDGE_CACHE": str(folder / "cache")})
    return json.loads(out.read_text())["records"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", default="16,24,32")
    parser.add_argument("--pairs", help="comma-separated BACKBONE+CLASSIFIER (shipped models) instead of --widths")
    parser.add_argument("--backends", default="ort@fp32,torch@fp32,torch@bf16")
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if args.pairs:
            runs = [({"backbone": b, "classifier": c}, b, c) for b, c in (p.split("+") for p in args.pairs.split(","))]
        else:
            runs = [({"width": w}, str(write_backbone(w, folder)), "cifar10-classifier")
                    for w in map(int, args.widths.split(","))]
        for i, (label, backbone, classifier) in enumerate(runs):
            for record in bench(backbone, classifier, args, folder, folder / f"bench-{i}.json"):
                rows.append({**label, **record})
                print(f"{label} {record['backend']}: {record['ms_per_image']:.1f} ms/image", flush=True)
    if args.json:
        machine = f"{platform.machine()} {platform.processor()}, torch {torch.__version__}"
        Path(args.json).write_text(json.dumps({"machine": machine, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
