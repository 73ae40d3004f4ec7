"""Peak memory and time of ``mspd-edge protect`` on a large photo, per output format; encoder costs.

Makes a JPEG of ``--megapixels`` (default 48, 8000x6000) from scikit-image's ``coffee`` photo
(upscaled, with sensor-like noise so that it compresses like a real photo, plus camera EXIF and
an sRGB ICC profile), runs ``mspd-edge protect PHOTO -o OUT --format F --report R`` in a fresh
subprocess per format and reads that child's peak RSS (``os.wait4``) and wall time, next to a
run on a 32x32 image (the fixed cost: Python, torch, the models) and a PNG run without
``--report`` (no distances or SSIM). ``--encoders`` then times the candidate lossless encoders
in-process on a crop of the protected output. Each line gives the load average it ran under.

    python benchmarks/large_photo.py                       # 48 MP, png and webp, then the encoders
    python benchmarks/large_photo.py --megapixels 12 --formats png --no-encoders --json out.json
"""
import argparse
import io
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import skimage.data
from PIL import ExifTags, Image, ImageCms

MSPD_EDGE = Path(sys.executable).with_name("mspd-edge")
ENCODER_CROP_MP = 12   # megapixels of the protected output the encoders are timed on
ENCODERS = {   # name -> (function of an RGB array, returning the encoded size)
    "pillow png level 1": lambda a: _pillow(a, "PNG", compress_level=1),
    "pillow png level 3": lambda a: _pillow(a, "PNG", compress_level=3),
    "pillow png level 6 (Pillow's default)": lambda a: _pillow(a, "PNG", compress_level=6),
    "opencv png level 1": lambda a: len(cv2.imencode(".png", a[..., ::-1], [cv2.IMWRITE_PNG_COMPRESSION, 1])[1]),
    "opencv png level 3": lambda a: len(cv2.imencode(".png", a[..., ::-1], [cv2.IMWRITE_PNG_COMPRESSION, 3])[1]),
    "pillow webp lossless method 0 quality 0": lambda a: _pillow(a, "WEBP", lossless=True, method=0, quality=0),
    "pillow webp lossless method 1 quality 25": lambda a: _pillow(a, "WEBP", lossless=True, method=1, quality=25),
    "pillow webp lossless method 4 quality 80 (Pillow's default)":
        lambda a: _pillow(a, "WEBP", lossless=True, method=4, quality=80),
}


def _pillow(array, fmt, **options):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt, **options)
    return buffer.tell()


def make_photo(path, megapixels, seed=0):
    """A ``megapixels`` JPEG (4:3) made from skimage's coffee photo, with noise, EXIF and ICC."""
    width = int(round(math.sqrt(megapixels * 1e6 * 4 / 3)))
    height = int(round(width * 3 / 4))
    pixels = np.asarray(Image.fromarray(skimage.data.coffee()).resize((width, height), Image.BICUBIC)).copy()
    rng = np.random.default_rng(seed)
    for top in range(0, height, 500):   # sensor-like noise, in bands to keep this process small
        band = pixels[top:top + 500]
        band[...] = np.clip(band + rng.normal(0, 4, band.shape), 0, 255).astype(np.uint8)
    exif = Image.Exif()
    exif[ExifTags.Base.Make], exif[ExifTags.Base.Model] = "Benchmark", "Camera 48"
    exif[ExifTags.Base.Copyright] = "(c) mspd-edge benchmark"
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.fromarray(pixels).save(path, quality=92, exif=exif, icc_profile=icc)
    return width, height


def run_protect(photo, outdir, fmt, report=True):
    """``mspd-edge protect`` in a child process: its wall seconds, peak RSS (MiB) and report."""
    path = outdir / "report.json"
    command = [str(MSPD_EDGE), "protect", str(photo), "-o", str(outdir), "--format", fmt,
               "--seed", "0", "-q"] + (["--report", str(path)] if report else [])
    start = time.perf_counter()
    child = subprocess.Popen(command)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(command)} exited {child.returncode}")
    return seconds, usage.ru_maxrss / 1024, json.loads(path.read_text()) if report else None


def load():
    return "load average {:.1f}".format(os.getloadavg()[0])


def time_encoders(output_path):
    """Seconds and MB per megapixel of each candidate encoder on a crop of the protected output."""
    pixels = np.asarray(Image.open(output_path).convert("RGB"))
    side = int(math.sqrt(ENCODER_CROP_MP * 1e6 * 4 / 3))
    crop = np.ascontiguousarray(pixels[:side * 3 // 4, :side])
    megapixels = crop.shape[0] * crop.shape[1] / 1e6
    rows = []
    for name, encode in ENCODERS.items():
        start = time.perf_counter()
        size = encode(crop)
        seconds = time.perf_counter() - start
        rows.append({"encoder": name, "s_per_mp": seconds / megapixels, "mb_per_mp": size / 1e6 / megapixels})
        print(f"  {name:60s} {seconds / megapixels:6.3f} s/MP {size / 1e6 / megapixels:6.3f} MB/MP; {load()}",
              flush=True)
    return {"crop_mp": megapixels, "rows": rows}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megapixels", type=float, default=48)
    parser.add_argument("--formats", default="png,webp")
    parser.add_argument("--encoders", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--json", type=Path, help="Write the results here.")
    args = parser.parse_args()
    results = {"machine": f"{platform.machine()}, {os.cpu_count()} CPUs, shared", "runs": []}
    with tempfile.TemporaryDirectory(prefix="mspd-large-photo-") as tmp:
        tmp = Path(tmp)
        tiny = tmp / "tiny.png"
        Image.fromarray(skimage.data.astronaut()[:32, :32]).save(tiny)
        seconds, peak, _ = run_protect(tiny, tmp / "tiny-out", "png")
        results["fixed"] = {"seconds": seconds, "peak_rss_mib": peak}
        print(f"32x32 image: {seconds:.1f} s, peak RSS {peak:.0f} MiB (start-up, torch, models); {load()}",
              flush=True)
        width, height = make_photo(tmp / "photo.jpg", args.megapixels)
        megapixels = width * height / 1e6
        print(f"photo: {width}x{height} = {megapixels:.1f} MP JPEG, {(tmp / 'photo.jpg').stat().st_size / 1e6:.1f} MB")
        for fmt in args.formats.split(","):
            seconds, peak, report = run_protect(tmp / "photo.jpg", tmp / f"out-{fmt}", fmt)
            record = report["images"][0]
            output = Path(record["output"])
            run = {"format": fmt, "report": True, "megapixels": megapixels, "wall_s": seconds, "peak_rss_mib": peak,
                   "image_s": record["seconds"], "s_per_mp": record["seconds"] / megapixels,
                   "output_mb": output.stat().st_size / 1e6, "linf_255": record["linf_255"],
                   "metadata": record["metadata"]}
            results["runs"].append(run)
            print(f"{fmt}: wall {seconds:.1f} s, image {record['seconds']:.1f} s = "
                  f"{run['s_per_mp']:.3f} s/MP (read, protect, report metrics, write), "
                  f"peak RSS {peak:.0f} MiB, output {run['output_mb']:.1f} MB, "
                  f"L-inf {record['linf_255']}/255, metadata {record['metadata']}; {load()}", flush=True)
        seconds, peak, _ = run_protect(tmp / "photo.jpg", tmp / "out-plain", "png", report=False)
        results["runs"].append({"format": "png", "report": False, "megapixels": megapixels,
                                "wall_s": seconds, "peak_rss_mib": peak})
        print(f"png without --report: wall {seconds:.1f} s, peak RSS {peak:.0f} MiB; {load()}", flush=True)
        if args.encoders:
            print(f"encoders on a {ENCODER_CROP_MP} MP crop of the protected output:")
            results["encoders"] = time_encoders(output)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
