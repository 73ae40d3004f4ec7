"""The paper's ImageNet pair at its real size (random weights): export, parity, speed, memory.

    python benchmarks/imagenet_pair.py [--models DIR] [--work DIR] [--threads 2] [--rounds 2]
                                       [--json benchmarks/results/imagenet-pair.json]

Backbone Singh2023Revisiting_ViT-S-ConvStem, classifier Tian2022Deeper_DeiT-B, fp32, with the
random checkpoints of ``scripts/make_random_imagenet_pair.py`` in ``--models`` (written there
when missing) as ``$MSPD_EDGE_MODELS``; real photos from scikit-image (astronaut, chelsea,
coffee, rocket); the paper's settings (eps 4/255, N=20, "FB"). Every step is a fresh
``mspd-edge`` process whose wall time, CPU time and peak resident memory (``os.wait4``: the
kernel's rusage of that child) are recorded, with the 1-minute load average before it (on a
shared machine, other jobs slow the wall times down):

1. ``export`` (+ ``check``, TensorRT operator check) of the pair into ``--work``;
2. ``parity``: torch vs ORT on the photos (gradient cosine and error, protected pixels);
3. ``protect`` of the photos with torch and ORT at fp32, alternating, for ``--rounds`` rounds:
   seconds per photo from each report (reading, labels, cascade, writing);
4. ``bench`` (steady state after a warm-up photo) of torch fp32, torch bf16 (its ``--precision
   auto`` on a CPU with native bf16), ORT fp32 and ORT fp32 by the backbone_grad route.

Resumable: finished steps are kept in ``--work``/steps.json and skipped on a rerun.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from mspd_edge.defaults import PHOTO_BACKBONE as BACKBONE, PHOTO_CLASSIFIER as CLASSIFIER

REPO = Path(__file__).resolve().parents[1]
PAIR = ["--backbone", BACKBONE, "--classifier", CLASSIFIER]
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")
RUNS = (("torch", "fp32"), ("ort", "fp32"))   # protect: backend, --precision
BENCH_SPECS = "torch@fp32,torch@bf16,ort@fp32,ort@fp32:grad"
SEED = 0


def measured(argv, log, env):
    """Run ``argv``; its wall and CPU seconds and peak RSS in MiB (exit status non-zero: stop)."""
    start = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - start
    if proc.returncode:
        tail = Path(log).read_text().strip().splitlines()[-3:]
        raise SystemExit(f"{' '.join(argv[:4])} ...: exit {proc.returncode}: {' | '.join(tail)}")
    return {"seconds": round(seconds, 2), "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
            "peak_rss_mib": round(usage.ru_maxrss / 1024)}


def mspd(*args):
    return [sys.executable, "-m", "mspd_edge.cli", *map(str, args)]


def write_photos(folder):
    from PIL import Image
    from skimage import data

    folder.mkdir(parents=True, exist_ok=True)
    sizes = {}
    for name in PHOTOS:
        pixels = getattr(data, name)()
        Image.fromarray(pixels).save(folder / f"{name}.png")
        sizes[name] = list(pixels.shape)
    return {"shapes": sizes}


def export_step(work, env):
    export = measured(mspd("export", "--model", BACKBONE, "--classifier", CLASSIFIER, "-o", work / "export"),
                      work / "export.log", env)
    check = measured(mspd("check", work / "export"), work / "check.log", env)
    manifest = json.loads((work / "export" / "manifest.json").read_text())
    files = {g: round((work / "export" / f).stat().st_size / 2**20, 1)
             for g, f in manifest.items() if isinstance(f, str) and f.endswith(".onnx")}
    return {"export": export, "check": check, "check_output": (work / "check.log").read_text().splitlines(),
            "file_mib": files, "verification": manifest.get("verification"), "tensorrt": manifest["tensorrt"],
            "nodes": {g: v["nodes"] for g, v in manifest["graphs"].items()}}


def parity_step(work, env, threads):
    report = work / "parity.json"
    run = measured(mspd("parity", work / "photos", *PAIR, "--model-dir", work / "export", "--backends",
                        "torch,ort", "--precision", "fp32", "--threads", threads, "--json", report),
                   work / "parity.log", env)
    return {**run, **json.loads(report.read_text())}


def protect_step(work, env, threads, backend, precision, round_):
    key = f"protect-{backend}-{precision}-{round_}"
    out, report = work / f"out-{key}", work / f"{key}.json"
    extra = ["--model-dir", work / "export"] if backend == "ort" else []
    run = measured(mspd("protect", work / "photos", "-o", out, "--backend", backend, *extra, *PAIR,
                        "--precision", precision, "--threads", threads, "--seed", SEED, "--overwrite", "-q",
                        "--report", report),
                   work / f"{key}.log", env)
    images = json.loads(report.read_text())["images"]
    per_photo = {Path(i["input"]).stem: round(i["seconds"], 3) for i in images}
    return {**run, "seconds_per_photo": per_photo, "linf_255": max(i["linf_255"] for i in images)}


def bench_step(work, env, threads):
    """``mspd-edge bench`` of ``BENCH_SPECS``: steady-state seconds per photo after a warm-up photo,
    each in a fresh process (its own peak memory)."""
    report = work / "bench.json"
    run = measured(mspd("bench", "--backends", BENCH_SPECS, "--batch-sizes", 1, "--images", len(PHOTOS),
                        "--data", work / "photos", *PAIR, "--model-dir", work / "export", "--threads", threads,
                        "--json", report), work / "bench.log", env)
    return {**run, "records": json.loads(report.read_text())["records"]}


def summary(steps, rounds):
    rows = {}
    for backend, precision in RUNS:
        runs = [steps[f"protect-{backend}-{precision}-{r}"] for r in range(rounds)]
        times = [t for run in runs for t in run["seconds_per_photo"].values()]
        rows[f"{backend} {precision}"] = {"median_s_per_photo": round(statistics.median(times), 2),
                         "min_s_per_photo": round(min(times), 2), "max_s_per_photo": round(max(times), 2),
                         "process_peak_rss_mib": max(run["peak_rss_mib"] for run in runs),
                         "process_seconds": [run["seconds"] for run in runs],
                         "process_cpu_seconds": [run["cpu_seconds"] for run in runs]}
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, default=Path("/tmp/mspd-imagenet-pair"))
    parser.add_argument("--work", type=Path, default=Path("/tmp/mspd-imagenet-bench"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", type=Path, default=REPO / "benchmarks" / "results" / "imagenet-pair.json")
    args = parser.parse_args(argv)
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, MSPD_EDGE_MODELS=str(args.models), MSPD_EDGE_CACHE=str(work / "cache"),
               OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    state = work / "steps.json"
    steps = json.loads(state.read_text()) if state.is_file() else {}
    plan = [("models", lambda: measured([sys.executable, REPO / "scripts" / "make_random_imagenet_pair.py",
                                         args.models], work / "models.log", env)),
            ("photos", lambda: write_photos(work / "photos")),
            ("export", lambda: export_step(work, env)),
            ("parity", lambda: parity_step(work, env, args.threads))]
    for r in range(args.rounds):
        for backend, precision in RUNS:
            plan.append((f"protect-{backend}-{precision}-{r}",
                         lambda b=backend, p=precision, r=r: protect_step(work, env, args.threads, b, p, r)))
    plan.append(("bench", lambda: bench_step(work, env, args.threads)))
    for key, step in plan:
        if key in steps or (key == "models" and (args.models / "imagenet").is_dir()):
            continue
        print(f"{key} ...", file=sys.stderr, flush=True)
        steps[key] = {"load_before": os.getloadavg()[0], **step()}
        state.write_text(json.dumps(steps, indent=2))
    result = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
              "settings": {"backbone": BACKBONE, "classifier": CLASSIFIER, "weights": "random (RobustBench layout)",
                           "eps_255": 4, "n_samples": 20, "epochs": "FB", "seed": SEED, "threads": args.threads,
                           "rounds": args.rounds, "protect_runs": RUNS, "bench_specs": BENCH_SPECS,
                           "photos": steps["photos"]["shapes"]},
              "summary": summary(steps, args.rounds), "steps": steps}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["summary"], indent=2))


if __name__ == "__main__":
    main()
