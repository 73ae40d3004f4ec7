"""Cold start: wall time of a fresh ``mspd-edge protect`` process on one image, per backend.

    python benchmarks/cold_start.py [--backends torch,ort] [--repeats 5] [--image IMG]
                                    [--model-dir DIR] [--threads 2] [--json FILE]

Each run is a new process (interpreter start, imports, model load or session creation, the
label pass and the cascade on one image, the PNG write), timed from outside. One untimed run
per backend comes first, so every timed run finds the caches a real second invocation finds
(the automatic ONNX export in ~/.cache/mspd-edge, the OS page cache); the export itself is a
one-time cost and not part of cold start. Runs alternate between backends so that a change in
machine load hits all of them alike. Prints the median (and min/max) per backend and the
ratio of each to the first backend (torch by default).
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def command():
    script = Path(sys.executable).with_name("mspd-edge")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "mspd_edge.cli"]


def run_once(backend, image, out, model_dir, seed, threads):
    argv = command() + ["protect", str(image), "-o", str(out), "--backend", backend, "--seed", str(seed),
                        "--overwrite", "-q"]
    if model_dir and backend != "torch":
        argv += ["--model-dir", str(model_dir)]
    env = dict(os.environ)
    if threads:   # the same thread count for torch (OpenMP) and ONNX Runtime (its own pool)
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{backend}: exit {done.returncode}: {done.stderr.strip()[-500:]}")
    return seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="torch,ort")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--image", default=str(REPO / "samples" / "cifar_00_cat.png"))
    parser.add_argument("--model-dir", help="export folder for ort/trt (default: the cached export)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    out = Path(tempfile.mkdtemp(prefix="mspd-cold-"))
    times = {b: [] for b in backends}
    try:
        for b in backends:   # warm the caches: export (once), page cache
            run_once(b, args.image, out / b, args.model_dir, args.seed, args.threads)
        for _ in range(args.repeats):
            for b in backends:
                times[b].append(run_once(b, args.image, out / b, args.model_dir, args.seed, args.threads))
    finally:
        shutil.rmtree(out, ignore_errors=True)
    first = statistics.median(times[backends[0]])
    rows = []
    print(f"| backend | median s | min s | max s | vs {backends[0]} |\n|---|---|---|---|---|")
    for b in backends:
        med = statistics.median(times[b])
        rows.append({"backend": b, "median_s": round(med, 3), "min_s": round(min(times[b]), 3),
                     "max_s": round(max(times[b]), 3), "runs": [round(t, 3) for t in times[b]],
                     f"ratio_vs_{backends[0]}": round(med / first, 3)})
        print(f"| {b} | {med:.2f} | {min(times[b]):.2f} | {max(times[b]):.2f} | {med / first:.0%} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"image": args.image, "repeats": args.repeats,
                                               "threads": args.threads, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
