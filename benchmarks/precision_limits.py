"""Where the torch backend's time goes, and the physical limit, per precision (CPU).

* FLOPs: ``torch.utils.flop_counter`` on one input-gradient pass (forward + backward to the
  input) of the backbone for one noisy copy; an image costs 2 epochs x N copies of it.
* Peaks: the throughput of a large matrix product on this CPU at ``--threads`` (fp32 and bf16;
  bf16 runs on AMX or AVX512_BF16 where the CPU has them): what the convolutions could reach.
* Profile: ``torch.profiler`` over the cascade of ``--images`` real images (N copies, "FB")
  with the torch backend; the self CPU time of the operators, grouped.
* ``--compile``: one gradient call of the backend's shape, eager against ``torch.compile``
  (inductor, which fuses the batch norms, activations and copies that eager runs one by one),
  and the compile time: the lever not taken by default (README "Precision").

    python benchmarks/precision_limits.py --threads 2 --json benchmarks/results/precision-limits.json
"""
import argparse
import json
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode

from mspd_edge import defaults
from mspd_edge.backends.precision import cpu_reason
from mspd_edge.data import load_npz
from mspd_edge.noise import batch_noise, image_key
from mspd_edge.pipeline import Settings
from mspd_edge.reference import input_grad
from mspd_edge.torch_backend import TorchBackend
from mspd_edge.zoo import load_model

PASSES = len(defaults.EPOCHS) * defaults.N_SAMPLES   # gradient passes per image: 2 x 20
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10" / "test.npz"
GROUPS = {"convolution": ("conv", "mkldnn_convolution"), "batch norm": ("batch_norm",),
          "activation (Swish)": ("sigmoid", "silu"), "elementwise": ("mul", "add", "sub", "div",
                                                                     "clamp", "sign", "min", "max",
                                                                     "mean", "where"),
          "layout / dtype copies": ("copy_", "to", "contiguous", "clone", "_to_copy", "empty")}


def peak_gflops(dtype, threads, size=2048, repeats=8):
    a = torch.randn(size, size).to(dtype)
    a @ a
    start = time.perf_counter()
    for _ in range(repeats):
        a @ a
    return 2 * size**3 * repeats / (time.perf_counter() - start) / 1e9


def pass_flops(backbone):
    """FLOPs of one copy's forward and backward to the input (no weight gradients), as
    ``reference.input_grad`` computes it (``backward`` here: the counter rejects ``grad``)."""
    for p in backbone.parameters():
        p.requires_grad_(False)
    x = torch.rand(1, 3, 32, 32, requires_grad=True)
    with FlopCounterMode(display=False) as counter:
        torch.nn.functional.cross_entropy(backbone(x), torch.zeros(1, dtype=torch.long)).backward()
    return counter.get_total_flops()


def profile_groups(backend, x, labels, noise, settings):
    backend.run(x[:1], labels[:1], [n[:, :1] for n in noise], settings)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        backend.run(x, labels, noise, settings)
        wall = time.perf_counter() - start
    totals = defaultdict(float)
    for event in prof.key_averages():
        name = event.key.lower()
        group = next((g for g, keys in GROUPS.items() if any(k in name for k in keys)), "other")
        totals[group] += event.self_cpu_time_total / 1e6
    cpu = sum(totals.values())
    return wall, {g: round(100 * t / cpu, 1) for g, t in sorted(totals.items(), key=lambda kv: -kv[1])}


def compiled_speedup(backend, repeats=15):
    """Eager and ``torch.compile`` ms of one input-gradient call of ``backend``'s shape."""
    n = backend.images_per_call * defaults.N_SAMPLES
    x, y = torch.rand(n, *backend.input_size), torch.zeros(n, dtype=torch.long)
    net = backend.network

    def per_call(model):
        input_grad(model, x, y, **net)
        start = time.perf_counter()
        for _ in range(repeats):
            input_grad(model, x, y, **net)
        return 1000 * (time.perf_counter() - start) / repeats

    eager = per_call(backend.backbone)
    compiled = torch.compile(backend.backbone)
    start = time.perf_counter()
    input_grad(compiled, x, y, **net)
    compile_s = time.perf_counter() - start
    fast = per_call(compiled)
    return {"copies_per_call": n, "eager_ms_per_call": round(eager, 1),
            "compiled_ms_per_call": round(fast, 1), "speedup": round(eager / fast, 2),
            "compile_s": round(compile_s, 1)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--compile", action="store_true", help="also time torch.compile")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    backbone = load_model("cifar10-backbone")
    flops = pass_flops(backbone)
    images = load_npz(args.data, limit=args.images)[0]
    x = images.transpose(0, 3, 1, 2).astype(np.float32) / 255
    labels = np.zeros(len(x), np.int64)
    out = {"threads": args.threads, "flops_per_pass": flops, "passes_per_image": PASSES,
           "gflop_per_image": round(PASSES * flops / 1e9, 3), "precisions": {}}
    for precision, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        if cpu_reason(precision) is not None:
            continue
        backend = TorchBackend(load_model("cifar10-backbone"), precision=precision)
        settings = Settings(seed=0).resolved(backend)
        noise = batch_noise(0, [image_key(i) for i in images], defaults.N_SAMPLES, x.shape[1:],
                            len(defaults.EPOCHS))
        wall, groups = profile_groups(backend, x, labels, noise, settings)
        peak = peak_gflops(dtype, args.threads)
        ms = 1000 * wall / len(x)
        out["precisions"][precision] = {
            "ms_per_image_profiled": round(ms, 1), "matmul_peak_gflops": round(peak, 1),
            "achieved_gflops": round(PASSES * flops / 1e9 / (ms / 1000), 1),
            "limit_ms_per_image": round(1000 * PASSES * flops / 1e9 / peak, 2), "self_cpu_share_%": groups}
        if args.compile:
            out["precisions"][precision]["torch_compile"] = compiled_speedup(backend)
    print(json.dumps(out, indent=2))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
