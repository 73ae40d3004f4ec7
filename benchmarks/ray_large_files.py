"""Which images ``--engine ray`` should protect whole in an actor: both routes timed by image size.

    python benchmarks/ray_large_files.py [--sides 64 256 1024 2048] [--formats jpg png]
        [--group-bytes 1048576] [--repeats 1] [--json benchmarks/results/ray-large-files.json]
    # the group sizes: --sides 64 256 1024 2048 --group-bytes 262144 1048576 4194304 --json ...-groups.json

For each side S and format (JPEG q90, PNG), a set of S x S crops of ``skimage.data`` photos
resized as ``ray_throughput.py`` makes its photos (about 30 MP per set, 24 to 300 files), is
protected by ``protect_dataset`` on a 2-CPU Ray cluster started here (2 actors x 1 thread,
ORT, the default models, seed 0, no metrics): every file batched (decode tasks, pixels
through the object store to the actors and on to the write tasks: ``large_pixels=None``,
the default groups),
then every file whole (read, protected and written by its actor: ``large_pixels=0``,
``photo_file_bytes=0``) in groups of at most each ``--group-bytes`` of input
(``ray_job.PHOTO_GROUP_BYTES``, set on this driver, which groups the files). Runs alternate
between the routes. Where the whole route starts to win sets ``stages.LARGE_PIXELS`` (and
``ray_job.PHOTO_FILE_BYTES`` below it); the best group size ``PHOTO_GROUP_BYTES``. Ray's
HOME and temp dir are in the work folder.
"""
import argparse
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from ray_throughput import PHOTOS

from mspd_edge.distributed.ray_job import PHOTO_GROUP_BYTES

SET_PIXELS = 30e6          # pixels per set: ~10 s of the batched route
SET_FILES = (24, 300)      # fewest and most files per set


def image_set(folder, side, fmt):
    """Files of ``side`` x ``side`` pixels in ``folder``; their count and mean bytes."""
    import cv2
    from PIL import Image
    from skimage import data

    count = int(np.clip(SET_PIXELS / side ** 2, *SET_FILES))
    folder.mkdir(parents=True)
    for i in range(count):
        source = getattr(data, PHOTOS[i % len(PHOTOS)])()
        short = min(source.shape[:2])
        square = source[:short, :short]
        image = Image.fromarray(cv2.resize(square, (side, side), interpolation=cv2.INTER_AREA))
        image.save(folder / f"{i:04d}.{fmt}", **({"quality": 90} if fmt == "jpg" else {}))
    sizes = [p.stat().st_size for p in folder.iterdir()]
    return count, round(float(np.mean(sizes)))


def timed_job(source, out, whole, group_bytes):
    from mspd_edge.distributed import protect_dataset, ray_job
    from mspd_edge.pipeline import Settings
    from mspd_edge.job import FileOptions

    shutil.rmtree(out, ignore_errors=True)
    ray_job.PHOTO_GROUP_BYTES = group_bytes
    start = time.perf_counter()
    result = protect_dataset([str(source)], str(out), settings=Settings(seed=0), workers=2,
                             files=FileOptions(metrics=False), large_pixels=0 if whole else None,
                             photo_file_bytes=0 if whole else ray_job.PHOTO_FILE_BYTES,
                             log=lambda line, error: None)
    seconds = time.perf_counter() - start
    assert result.counts["failed"] == 0, result.counts
    return seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sides", type=int, nargs="+", default=[64, 256, 1024, 2048])
    parser.add_argument("--formats", nargs="+", default=["jpg", "png"])
    parser.add_argument("--group-bytes", type=int, nargs="+", default=[PHOTO_GROUP_BYTES])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--json", type=Path,
                        default=Path(__file__).resolve().parent / "results" / "ray-large-files.json")
    args = parser.parse_args(argv)
    from mspd_edge.runtime.engine_cache import cache_root

    work = Path(tempfile.mkdtemp(prefix="mspd-ray-large-"))
    os.environ.setdefault("MSPD_EDGE_CACHE", str(cache_root()))   # before HOME moves
    os.environ.update(HOME=str(work / "home"), RAY_TMPDIR=str(work / "t"))
    try:
        results = bench(work, args)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.json}")


def bench(work, args):
    import ray

    load_before = os.getloadavg()
    ray.init(num_cpus=2, _temp_dir=str(work / "t"), include_dashboard=False, logging_level="error",
             log_to_driver=False)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = context.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    rows = []
    try:
        for fmt in args.formats:
            for side in args.sides:
                source = work / f"{fmt}-{side}"
                count, mean_bytes = image_set(source, side, fmt)
                routes = {"batched": (False, PHOTO_GROUP_BYTES),
                          **{f"whole {g}": (True, g) for g in args.group_bytes}}
                times = {route: [] for route in routes}
                for _ in range(args.repeats):
                    for route, (whole, group_bytes) in routes.items():
                        times[route].append(timed_job(source, work / "out", whole, group_bytes))
                best = {route: min(t) for route, t in times.items()}
                row = {"format": fmt, "side": side, "megapixels": round(side * side / 1e6, 3), "files": count,
                       "mean_file_bytes": mean_bytes,
                       "seconds": {route: [round(t, 2) for t in ts] for route, ts in times.items()},
                       "ms_per_file": {route: round(1000 * t / count, 1) for route, t in best.items()},
                       "batched_over_whole": {route: round(best["batched"] / t, 3)
                                              for route, t in best.items() if route != "batched"},
                       "load_average": round(os.getloadavg()[0], 2)}
                rows.append(row)
                print(json.dumps(row), flush=True)
                shutil.rmtree(source)
    finally:
        ray.shutdown()
    return {"machine": f"{os.cpu_count()} cores", "date": time.strftime("%Y-%m-%d"),
            "load_average_before": [round(v, 2) for v in load_before],
            "load_average_after": [round(v, 2) for v in os.getloadavg()],
            "ray_version": ray.__version__, "runs": rows}


if __name__ == "__main__":
    main()
