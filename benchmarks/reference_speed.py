"""Seconds per image of the PyTorch reference cascade (N=20, "FB") on this machine.

    python benchmarks/reference_speed.py [--model cifar10-backbone] [--batch-sizes 1,16]
                                         [--images 32] [--threads 2] [--json FILE]

Real CIFAR-10 test images, labels from the paired classifier excluded (cascade only), one
warm-up batch per batch size, then the median of per-batch times divided by the batch size.
"""
import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from mspd_edge import defaults
from mspd_edge.data import load_npz
from mspd_edge.reference import mcgs
from mspd_edge.zoo import load_model


def seconds_per_image(backbone, images, labels, batch_size, eps):
    times = []
    for start in range(0, len(labels) - batch_size + 1, batch_size):
        x, y = images[start:start + batch_size], labels[start:start + batch_size]
        t0 = time.perf_counter()
        mcgs(backbone, x, y, eps=eps, seed=start)
        times.append((time.perf_counter() - t0) / batch_size)
    return statistics.median(times[1:] if len(times) > 1 else times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="cifar10-backbone")
    parser.add_argument("--data", default="../shared/data/cifar10")
    parser.add_argument("--batch-sizes", default="1,16")
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    backbone = load_model(args.model)
    images, _, _ = load_npz(Path(args.data) / "test.npz", limit=args.images)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div(255)
    with torch.no_grad():
        y = backbone(x).argmax(1)
    rows = []
    for b in (int(s) for s in args.batch_sizes.split(",")):
        s = seconds_per_image(backbone, x, y, b, backbone.info.eps)
        rows.append({"batch_size": b, "seconds_per_image": round(s, 4)})
        print(f"{args.model} N={defaults.N_SAMPLES} B={b}: {s:.4f} s/image", flush=True)
    result = {"model": args.model, "threads": args.threads, "machine": platform.processor() or platform.machine(),
              "torch": torch.__version__, "rows": rows}
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
