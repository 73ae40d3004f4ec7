"""What ``sparse_l0`` costs per image, and what it leaves, at a few iteration budgets.

For each target and budget (iterations of each sparse-PGD variant = Sparse-RS queries) it runs
``mspd_edge.attacks.sparse_l0`` (k = 20 pixels) on the first CIFAR-10 test images and reports
clean and robust accuracy and the seconds per image. The default budget of ``mspd-edge evaluate``
(``mspd_edge.defaults.SPARSE_STEPS``) is chosen from this table: the smallest budget at which the
robust accuracy has levelled off. Timings on a shared machine are approximate.

    python benchmarks/sparse_l0_cost.py --images 100 --steps 50,100,300,1000 --threads 2 \
        --json benchmarks/results/sparse-l0-cost.json
"""
import argparse
import json
import time
from pathlib import Path

import torch

from mspd_edge.attacks import sparse_l0
from mspd_edge.data import load_npz
from mspd_edge.defaults import SPARSE_K
from mspd_edge.zoo import load_model

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10" / "test.npz"
TARGETS = "cifar10-target-nonrobust,cifar10-target-resnet18,cifar10-target-preact,cifar10-target-wrn"


def measure(model, x, y, steps, k):
    """``{"steps", "clean", "robust", "seconds_per_image"}`` of one sparse_l0 run."""
    start = time.perf_counter()
    adv = sparse_l0(model, x, y, k=k, steps=steps)
    seconds = time.perf_counter() - start
    with torch.no_grad():
        clean, robust = model(x).argmax(1) == y, model(adv).argmax(1) == y
    return {"steps": steps, "clean": clean.float().mean().item(), "robust": (clean & robust).float().mean().item(),
            "seconds_per_image": seconds / len(y)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--targets", default=TARGETS)
    parser.add_argument("--steps", default="50,100,300,1000", help="comma list of iteration budgets")
    parser.add_argument("--k", type=int, default=SPARSE_K)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    images, labels, _ = load_npz(args.data, limit=args.images)
    x, y = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255, torch.from_numpy(labels).long()
    rows = []
    print("| target | iterations | clean % | robust % | s/image |\n|---|---|---|---|---|")
    for target in args.targets.split(","):
        model = load_model(target)
        for steps in map(int, args.steps.split(",")):
            row = {"target": target, "k": args.k, "images": len(y), **measure(model, x, y, steps, args.k)}
            rows.append(row)
            print(f"| {target} | {steps} | {100 * row['clean']:.1f} | {100 * row['robust']:.1f} | "
                  f"{row['seconds_per_image']:.3f} |", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"machine": f"{torch.get_num_threads()} threads", "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
