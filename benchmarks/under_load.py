"""``mspd-edge protect`` quiet and beside busy processes: the default path, torch and ORT.

    python benchmarks/under_load.py [--images 200] [--rounds 3] [--loads 0,1,2]
                                    [--paths default,torch-fp32,torch-fp32-passive,torch-fp32-spin,ort-fp32]
                                    [--json benchmarks/results/under-load.json]

The first N CIFAR-10 test images (../shared/data/cifar10/test.npz) are written once as PNGs;
each run is one fresh ``mspd-edge protect DIR -o OUT --seed 0 -q --overwrite`` process timed
from outside (start-up included: what a user waits for). A load level of K starts K busy
processes (``while True: pass``, one core each) started and stopped by this script. Runs are
interleaved (round -> load -> path), so that a drift of the machine hits every path alike;
each cell is the median over rounds. Printed: ms/image per path and load, the slowdown
against the same path quiet, and the speed-up against ``torch-fp32`` at the same load.

Paths: ``default`` (no backend options: ``--backend auto``), ``torch-fp32``, ``torch-bf16``
(only where the CPU has native bf16), ``ort-fp32``, and torch fp32 under two other OpenMP wait
settings than mspd-edge's (``GOMP_SPINCOUNT=10000``: a short spin, then sleep):
``torch-fp32-spin`` (``GOMP_SPINCOUNT=300000``, GNU OpenMP's default, torch's own) and
``torch-fp32-passive`` (``OMP_WAIT_POLICY=PASSIVE``: sleep at once). Run it on an otherwise idle
machine: it makes its own load.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CIFAR = REPO.parent / "shared" / "data" / "cifar10" / "test.npz"
MSPD = [sys.executable, "-m", "mspd_edge.cli"]
PATHS = {
    "default": ([], {}),
    "torch-fp32": (["--backend", "torch", "--precision", "fp32"], {}),
    "torch-bf16": (["--backend", "torch", "--precision", "bf16"], {}),
    "ort-fp32": (["--backend", "ort", "--precision", "fp32"], {}),
    "torch-fp32-spin": (["--backend", "torch", "--precision", "fp32"], {"GOMP_SPINCOUNT": "300000"}),
    "torch-fp32-passive": (["--backend", "torch", "--precision", "fp32"], {"OMP_WAIT_POLICY": "PASSIVE"}),
}
BUSY = [sys.executable, "-c", "while True: pass"]
FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "avx512_vnni", "amx_int8")


def machine():
    """CPU model, the flags that decide the default, cores, load average before the run."""
    from mspd_edge.backends.precision import cpu_flags

    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    return {"cpu": model, "flags": sorted(set(FLAGS) & cpu_flags()), "cores": os.cpu_count(),
            "loadavg": os.getloadavg(), "python": platform.python_version()}


def write_images(folder, count):
    from PIL import Image

    from mspd_edge.data import load_npz

    images, _, _ = load_npz(CIFAR, limit=count)
    for i, image in enumerate(images):
        Image.fromarray(image).save(folder / f"{i:05d}.png")


def run_protect(images, out, path):
    """Wall seconds of one protect process on ``images`` with ``path``'s options."""
    args, env = PATHS[path]
    environment = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    started = time.perf_counter()
    subprocess.run([*MSPD, "protect", str(images), "-o", str(out), "--seed", "0", "-q", "--overwrite",
                    *args], check=True, env={**environment, **env})
    return time.perf_counter() - started


class Busy:
    """``count`` busy processes for the duration of the block (ours only, stopped on exit)."""

    def __init__(self, count):
        self.count, self.procs = count, []

    def __enter__(self):
        self.procs = [subprocess.Popen(BUSY) for _ in range(self.count)]
        time.sleep(0.5 if self.count else 0)
        return self

    def __exit__(self, *exc):
        for proc in self.procs:
            proc.kill()
            proc.wait()


def measure(paths, loads, rounds, count, work):
    """``{path: {load: [seconds per round]}}``, interleaved round -> load -> path."""
    images = work / "images"
    images.mkdir()
    write_images(images, count)
    run_protect(images, work / "warm", paths[0])   # the export cache and the OS caches, once
    seconds = {p: {k: [] for k in loads} for p in paths}
    for r in range(rounds):
        for load in loads:
            with Busy(load):
                for path in paths:
                    seconds[path][load].append(run_protect(images, work / f"out-{path}", path))
                    print(f"round {r + 1} load {load} {path}: {seconds[path][load][-1]:.2f} s",
                          file=sys.stderr, flush=True)
    return seconds


def table(seconds, count, loads):
    """Markdown rows: ms/image (slowdown vs quiet; speed-up vs torch-fp32 at that load)."""
    ms = {p: {k: 1000 * statistics.median(v) / count for k, v in by.items()} for p, by in seconds.items()}
    head = "| path | " + " | ".join(f"{k} busy: ms/image (x quiet, vs torch-fp32)" for k in loads) + " |"
    rows = [head, "|" + "---|" * (len(loads) + 1)]
    for path, by in ms.items():
        cells = []
        for k in loads:
            ref = ms.get("torch-fp32", {}).get(k)
            cells.append(f"{by[k]:.1f} ({by[k] / by[loads[0]]:.2f}x"
                         + (f", {ref / by[k]:.2f}x)" if ref else ")"))
        rows.append(f"| {path} | " + " | ".join(cells) + " |")
    return rows, ms


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--loads", default="0,1,2")
    parser.add_argument("--paths", default="default,torch-fp32,torch-fp32-passive,torch-fp32-spin,ort-fp32")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    from mspd_edge.backends import BackendOptions, resolve_backend
    from mspd_edge.backends.precision import cpu_reason

    paths = [p for p in args.paths.split(",") if p != "torch-bf16" or cpu_reason("bf16") is None]
    loads = [int(k) for k in args.loads.split(",")]
    info = machine()
    info["default"] = resolve_backend("auto", BackendOptions(precision="auto"))
    print(json.dumps(info), flush=True)
    with tempfile.TemporaryDirectory(prefix="under-load-") as work:
        seconds = measure(paths, loads, args.rounds, args.images, Path(work))
    rows, ms = table(seconds, args.images, loads)
    print("\n".join(rows))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"machine": info, "images": args.images, "rounds": args.rounds,
                                         "seconds": seconds, "ms_per_image": ms}, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
