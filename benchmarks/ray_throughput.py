"""Throughput of ``mspd-edge protect`` on the local engine and on ``--engine ray``, side by side.

    python benchmarks/ray_throughput.py [--cifar 1000] [--photos 50] [--repeats 1]
                                        [--json benchmarks/results/ray-throughput.json]
    python benchmarks/ray_throughput.py --stages    # per-image stage costs, added to the JSON

Two input sets, written once into a work folder: the first N CIFAR-10 test images as PNGs
(../shared/data/cifar10/test.npz) and M photos of ``skimage.data`` resized to 1-12 MP
(evenly spaced pixel counts, JPEG q90). Each run is one ``mspd-edge protect`` process over a
set with the same backend (ORT, the default models' export), seed and cores: the local engine
with ``--threads 2``, and the Ray engine joining a 2-CPU cluster started here once
(``--workers 2 --threads 1`` and ``--workers 1 --threads 2``), timed from outside. The
cluster's start is timed apart: a long-lived cluster pays it once. CIFAR runs write metrics
(local ``--report``, the Ray manifest); photo runs do not (``--no-metrics``; SSIM takes
seconds per 12 MP photo on one core and would dominate both). Runs alternate so that a change
in machine load hits all alike. Ray's HOME and temp dir are in the work folder.

``--stages`` times each stage of one image in this process, one thread (median of 3): decode
(``read_image``), protection (``protect_batch``, ORT), encode and write (``write_output``) and
SSIM, for a CIFAR-10 image and a 12 MP photo, and the bytes each image puts in Ray's object
store on its route (an image of ``LARGE_PIXELS`` or more stays in its actor: none);
docs/distributed.md works out the scaling from them.
"""
import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CIFAR = REPO.parent / "shared" / "data" / "cifar10" / "test.npz"
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry",
          "retina", "camera", "cat", "colorwheel")
ENGINES = {"local": ["--threads", "2"],
           "ray 2x1": ["--engine", "ray", "--workers", "2", "--threads", "1"],
           "ray 1x2": ["--engine", "ray", "--workers", "1", "--threads", "2"]}


def cifar_set(folder, count):
    from PIL import Image

    from mspd_edge.data import load_npz

    images, _, _ = load_npz(CIFAR, limit=count)
    for i, image in enumerate(images):
        Image.fromarray(image).save(folder / f"{i:05d}.png")
    return {"images": count, "megapixels": round(count * 32 * 32 / 1e6, 3)}


def photo_set(folder, count):
    import cv2
    from PIL import Image
    from skimage import data

    total = 0
    for i, megapixels in enumerate(np.linspace(1, 12, count)):
        source = getattr(data, PHOTOS[i % len(PHOTOS)])()
        h, w = source.shape[:2]
        scale = (megapixels * 1e6 / (h * w)) ** 0.5
        size = (round(w * scale), round(h * scale))
        Image.fromarray(cv2.resize(source, size, interpolation=cv2.INTER_CUBIC)).save(
            folder / f"photo{i:02d}.jpg", quality=90)
        total += size[0] * size[1]
    return {"images": count, "megapixels": round(total / 1e6, 1)}


def command():
    script = Path(sys.executable).with_name("mspd-edge")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "mspd_edge.cli"]


def run(engine, source, out, address, metrics):
    shutil.rmtree(out, ignore_errors=True)
    argv = command() + ["protect", str(source), "-o", str(out), "--backend", "ort", "--seed", "0", "-q",
                        *ENGINES[engine]]
    if engine == "local" and metrics:
        argv += ["--report", str(out.with_suffix(".json"))]
    if engine != "local":
        argv += ["--address", address] + ([] if metrics else ["--no-metrics"])
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{engine}: exit {done.returncode}: {done.stderr.strip()[-800:]}")
    return seconds


def same_outputs(a, b):
    names = sorted(p.name for p in a.glob("*.png"))
    return names == sorted(p.name for p in b.glob("*.png")) and all(
        (a / n).read_bytes() == (b / n).read_bytes() for n in names)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cifar", type=int, default=1000)
    parser.add_argument("--photos", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--workdir", type=Path, help="default: a temporary folder, removed afterwards")
    parser.add_argument("--stages", action="store_true", help="measure the per-image stage costs only")
    parser.add_argument("--json", type=Path, default=REPO / "benchmarks" / "results" / "ray-throughput.json")
    args = parser.parse_args(argv)
    if args.stages:
        results = json.loads(args.json.read_text()) if args.json.is_file() else {}
        results["stage_costs"] = stage_costs()
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        print(json.dumps(results["stage_costs"], indent=2))
        return
    work = args.workdir or Path(tempfile.mkdtemp(prefix="mspd-ray-bench-"))
    from mspd_edge.runtime.engine_cache import cache_root

    os.environ.setdefault("MSPD_EDGE_CACHE", str(cache_root()))   # before HOME moves
    os.environ.update(HOME=str(work / "home"), RAY_TMPDIR=str(work / "t"))
    try:
        results = bench(work, args)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.json}")


def bench(work, args):
    import ray

    sets = {}
    for name, make, count in (("cifar", cifar_set, args.cifar), ("photos", photo_set, args.photos)):
        if not count:
            continue
        folder = work / name
        folder.mkdir(parents=True, exist_ok=True)
        sets[name] = (folder, make(folder, count))
    load_before = os.getloadavg()
    start = time.perf_counter()
    ray.init(num_cpus=2, _temp_dir=str(work / "t"), include_dashboard=False, logging_level="error")
    ray_start = time.perf_counter() - start
    address = ray.get_runtime_context().gcs_address
    runs = {}
    try:
        run("local", next(iter(sets.values()))[0], work / "warm", address, False)   # the export, page cache
        for name, (folder, _) in sets.items():
            for repeat in range(args.repeats):
                for engine in ENGINES:
                    seconds = run(engine, folder, work / f"out-{name}-{engine.replace(' ', '')}", address,
                                  name == "cifar")
                    runs.setdefault(name, {}).setdefault(engine, []).append(seconds)
                    print(f"{name} {engine}: {seconds:.1f} s", flush=True)
            outs = [work / f"out-{name}-{engine.replace(' ', '')}" for engine in ENGINES]
            sets[name][1]["identical_outputs"] = all(same_outputs(outs[0], o) for o in outs[1:])
    finally:
        ray.shutdown()
    return report(sets, runs, ray_start, load_before)


def _median_seconds(function, repeats=3):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return round(sorted(times)[len(times) // 2], 4)


def stage_costs():
    """Seconds per stage of one image (one thread) and the bytes it moves through the object store."""
    from mspd_edge.backends import BackendOptions, build_backend
    from mspd_edge.distributed.ray_job import PHOTO_FILE_BYTES
    from mspd_edge.distributed.stages import LARGE_PIXELS, write_output
    from mspd_edge.distributed.storage import resolve
    from mspd_edge.io import read_image
    from mspd_edge.metrics import ssim
    from mspd_edge.pipeline import Settings, protect_batch

    backend = build_backend("ort", BackendOptions(threads=1)).backend
    settings = Settings(seed=0).resolved(backend)
    work = Path(tempfile.mkdtemp(prefix="mspd-ray-stages-"))
    try:
        cifar_set(work, 1)
        photo_set(work, 1)   # a 1 MP photo: scale it to 12 MP
        from PIL import Image

        photo = Image.open(work / "photo00.jpg")
        photo.resize((4000, 3000), Image.BICUBIC).save(work / "photo12.jpg", quality=90)
        costs = {}
        for name, path in (("cifar", work / "00000.png"), ("photo_12mp", work / "photo12.jpg")):
            decoded = read_image(path)
            protected = protect_batch([decoded.pixels], backend, settings)[0][0]
            output = resolve(work / f"{name}-out.png")
            pixels = decoded.pixels.shape[0] * decoded.pixels.shape[1]
            large = path.stat().st_size >= PHOTO_FILE_BYTES and pixels >= LARGE_PIXELS
            costs[name] = {
                "file_bytes": path.stat().st_size, "route": "whole in its actor" if large else "batched",
                "decode_s": _median_seconds(lambda: read_image(path)),
                "protect_s": _median_seconds(lambda: protect_batch([decoded.pixels], backend, settings)),
                "encode_s": _median_seconds(lambda: write_output(output, protected, decoded, "png")),
                "ssim_s": _median_seconds(lambda: ssim(decoded.pixels, protected), 1),
                "output_bytes": Path(output.path).stat().st_size,
                # batched: decode -> actor the pixels, actor -> writer protected (and original) ones
                "object_store_bytes": 0 if large else 3 * decoded.pixels.nbytes,
                "object_store_bytes_no_metrics": 0 if large else 2 * decoded.pixels.nbytes}
        return costs
    finally:
        shutil.rmtree(work, ignore_errors=True)


def report(sets, runs, ray_start, load_before):
    table = {}
    for name, engines in runs.items():
        count = sets[name][1]["images"]
        local = min(engines["local"])
        table[name] = {**sets[name][1], "engines": {}}
        for engine, times in engines.items():
            best = min(times)
            table[name]["engines"][engine] = {
                "seconds": [round(t, 2) for t in times], "images_per_s": round(count / best, 2),
                "vs_local": round(local / best, 3),
                "overhead_ms_per_image": round(1000 * (best - local) / count, 1)}
    return {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                       "shared with other jobs",
            "load_average_before": [round(v, 2) for v in load_before],
            "load_average_after": [round(v, 2) for v in os.getloadavg()],
            "ray_start_seconds": round(ray_start, 2), "ray_version": __import__("ray").__version__,
            "date": time.strftime("%Y-%m-%d"), "sets": table}


if __name__ == "__main__":
    main()
