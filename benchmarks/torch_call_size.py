"""How many images per model call the torch backend should use, per precision (CPU).

The torch backend calls the backbone with a fixed shape (``images_per_call`` images x N copies,
the last chunk padded) so that an image's result does not depend on its batch. A bigger call
amortises per-call overhead but pads small batches. This times ``TorchBackend.run`` (the whole
cascade, N=20, "FB") on 16 real CIFAR-10 test images for each precision and call size, rounds
interleaved so that a busy machine slows every variant alike, and reports the median ms/image
of a 16-image batch and what a 1-image batch costs (one padded call). The precisions run
whether or not the CLI offers them here (fp16 on a CPU without AMX-FP16 shows why it does not).

    python benchmarks/torch_call_size.py --threads 2 --rounds 3 --json benchmarks/results/precision-call-size.json
"""
import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from mspd_edge.data import load_npz
from mspd_edge.noise import batch_noise, image_key
from mspd_edge.pipeline import Settings
from mspd_edge.torch_backend import TorchBackend
from mspd_edge.zoo import load_model

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10" / "test.npz"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sizes", default="1,2,4,8,16")
    parser.add_argument("--precisions", default="fp32,bf16,fp16")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    images = load_npz(args.data, limit=16)[0]
    x = images.transpose(0, 3, 1, 2).astype(np.float32) / 255
    settings = Settings(seed=0).resolved(TorchBackend(load_model("cifar10-backbone")))
    noise = batch_noise(0, [image_key(i) for i in images], settings.n_samples, x.shape[1:], 2)
    labels = np.zeros(len(x), np.int64)
    backbone = load_model("cifar10-backbone")
    variants = [(p, k) for p in args.precisions.split(",") for k in map(int, args.sizes.split(","))]
    backends = {v: TorchBackend(backbone, None, "cpu", images_per_call=v[1], precision=v[0])
                for v in variants}
    times = {v: [] for v in variants}
    for _ in range(args.rounds):
        for v, backend in backends.items():
            backbone.to(memory_format=torch.channels_last if backend.channels_last
                        else torch.contiguous_format)
            backend.run(x[:1], labels[:1], [n[:, :1] for n in noise], settings)   # warm-up
            start = time.perf_counter()
            backend.run(x, labels, noise, settings)
            times[v].append((time.perf_counter() - start) / len(x))
    rows = [{"precision": p, "images_per_call": k,
             "ms_per_image_batch16": round(1000 * float(np.median(times[(p, k)])), 2),
             "ms_batch1": round(1000 * k * float(np.median(times[(p, k)])), 1)}
            for p, k in variants]
    print("| precision | images/call | ms/image (batch 16) | ms for a 1-image batch |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['precision']} | {r['images_per_call']} | {r['ms_per_image_batch16']:.1f} | "
              f"{r['ms_batch1']:.0f} |")
    if args.json:
        args.json.write_text(json.dumps({"threads": args.threads, "rounds": args.rounds,
                                         "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
