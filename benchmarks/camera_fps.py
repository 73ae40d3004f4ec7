"""Frames per second of the camera pipeline (``mspd-edge camera``) on this machine.

    python benchmarks/camera_fps.py [--sizes 320x240,640x480] [--frames 64] [--n-samples 20]
                                    [--backbone cifar10-backbone] [--labels classifier]
                                    [--backend torch] [--device cpu] [--threads 2] [--json FILE]

For each frame size: a test video is written with OpenCV (smooth random content, FFV1 or
MJPG), then protected through the same path as the command: video source -> capture thread
-> protector (default batch size) -> PNG frames written in the consumer. One warm-up stream of
a few frames runs first. Reported per size:

* ``fps``: throughput with the protector always busy (a file, --no-drop), PNG writing
  included, counted after the first batch (when --frames allows two batches): the highest rate
  a live camera can be protected at without dropping frames;
* ``latency``: p50/p95 seconds from capture to written when frames arrive one at a time
  (an idle protector, batches of one): the delay a live viewer sees below that rate.
"""
import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from mspd_edge import defaults
from mspd_edge.camera import PngFolderSink, open_source, protect_stream
from mspd_edge.pipeline import Settings


def test_video(path, size, frames, seed=0):
    """Write ``frames`` smooth random frames of ``size`` (w, h) to ``path``; the path written."""
    w, h = size
    rng = np.random.default_rng(seed)
    for fourcc, suffix in (("FFV1", ".mkv"), ("MJPG", ".avi")):
        target = path.with_suffix(suffix)
        writer = cv2.VideoWriter(str(target), cv2.VideoWriter_fourcc(*fourcc), 30.0, (w, h))
        if writer.isOpened():
            break
    else:
        raise SystemExit("this OpenCV cannot write a test video (FFV1 nor MJPG)")
    for _ in range(frames):
        small = rng.integers(0, 256, (max(2, h // 16), max(2, w // 16), 3), dtype=np.uint8)
        writer.write(cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC))
    writer.release()
    return target


def throughput(video, backend, settings, outdir):
    """Steady frames per second through the whole pipeline, and the number of frames.

    Counted from the end of the first batch (the pipeline is full from then on) when at least
    two batches ran, else from the start of the stream.
    """
    sink = PngFolderSink(outdir, overwrite=True)
    done = []
    with open_source(str(video)) as source:
        stream = protect_stream(source, backend, settings)
        start = time.perf_counter()
        for frame in stream:
            sink.write(frame)
            done.append(time.perf_counter())
    sink.close()
    batch = stream.settings.batch_size
    if len(done) >= 2 * batch + 1:
        return (len(done) - batch) / (done[-1] - done[batch - 1]), len(done)
    return len(done) / (done[-1] - start), len(done)


def idle_latency(video, backend, settings, outdir, count):
    """p50/p95 seconds from capture to written, one frame at a time."""
    sink = PngFolderSink(outdir, overwrite=True)
    latencies = []
    with open_source(str(video)) as source:
        frames = iter(source)
        for _ in range(count):
            frame = next(frames, None)
            if frame is None:
                break
            frame.captured = time.monotonic()
            for out in protect_stream([frame], backend, settings):
                sink.write(out)
                latencies.append(time.monotonic() - out.captured)
    sink.close()
    p50, p95 = np.percentile(latencies, [50, 95])
    return float(p50), float(p95)


def build_backend(args):
    from mspd_edge.backends import BackendOptions, build_backend as build

    options = BackendOptions(backbone=args.backbone, classifier=args.classifier, device=args.device)
    return build(args.backend, options, need_classifier=args.labels == "classifier")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="320x240,640x480")
    parser.add_argument("--frames", type=int, default=64, help="frames per throughput run")
    parser.add_argument("--latency-frames", type=int, default=12)
    parser.add_argument("--n-samples", type=int, default=defaults.N_SAMPLES)
    parser.add_argument("--batch-size", type=int, help="default: the pipeline's automatic size")
    parser.add_argument("--backbone", default=defaults.BACKBONE)
    parser.add_argument("--classifier")
    parser.add_argument("--labels", default="classifier", choices=("classifier", "couple"))
    parser.add_argument("--backend", default="torch")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    if args.backend == "torch":
        import torch
        torch.set_num_threads(args.threads)
    models = build_backend(args)
    backend = models.backend
    settings = Settings(n_samples=args.n_samples, seed=0, label_mode=args.labels,
                        batch_size=args.batch_size).resolved(backend)
    rows = []
    with tempfile.TemporaryDirectory(prefix="mspd-camera-fps-") as folder:
        folder = Path(folder)
        for text in args.sizes.split(","):
            w, h = (int(v) for v in text.lower().split("x"))
            video = test_video(folder / f"clip_{w}x{h}", (w, h), max(args.frames, args.latency_frames))
            warm = test_video(folder / f"warm_{w}x{h}", (w, h), min(4, args.frames))
            throughput(warm, backend, settings, folder / "warm")
            fps, frames = throughput(video, backend, settings, folder / "out")
            p50, p95 = idle_latency(video, backend, settings, folder / "lat", args.latency_frames)
            row = {"size": f"{w}x{h}", "frames": frames, "fps": round(fps, 2),
                   "latency_p50_s": round(p50, 4), "latency_p95_s": round(p95, 4)}
            rows.append(row)
            print(f"{w}x{h}: {fps:.2f} fps ({frames} frames, batch {settings.batch_size}); "
                  f"latency one at a time p50 {p50 * 1000:.0f} ms p95 {p95 * 1000:.0f} ms", flush=True)
    result = {"backbone": models.backbone.name,
              "classifier": None if models.classifier is None else models.classifier.name,
              "backend": args.backend, "device": args.device, "threads": args.threads,
              "n_samples": args.n_samples, "batch_size": settings.batch_size,
              "labels": args.labels, "machine": platform.processor() or platform.machine(),
              "python": sys.version.split()[0], "opencv": cv2.__version__, "rows": rows}
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
