"""`mspd-edge verify` on platform-like steps: are protected copies told apart from unprotected ones?

The first ``--images`` CIFAR-10 test images, upsampled to ``--size`` (bicubic), are written as
PNG and protected with the default settings (``mspd-edge protect``, its report keeps the
settings). Then each step, ``none`` (a lossless copy), ``jpeg75``, ``resize0.75`` and
``resize0.75+jpeg75``, is applied with OpenCV to the protected images and to the originals
(unprotected copies), written as real files (``.jpg`` for JPEG: another extension than the
original's), and ``verify`` (the library, settings read from the protect report) compares
them all, with the same steps as ``--simulate`` scenarios (Pillow) besides, plus ``crop0.9``
and ``blur4`` (what "not comparable" is for). Simulated unprotected copies are the scenarios
applied to the originals, compared the same way. A copy counts as protected when its verdict
is kept or weakened, as unprotected when gone.

Writes per kind (protected, unprotected), step and mode (file, simulate): the kept figures
(mean, median and range of cosine, energy, gain; range of foreign energy and correlation), the
verdicts, the robust accuracy under PGD-10 of the shipped robust targets (files and simulated
protected copies), and per step the accuracy of telling protected from unprotected copies.

    nice -n 5 python benchmarks/verify_steps.py --json benchmarks/results/verify-steps.json
"""
import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from mspd_edge.backends import BackendOptions, build_backend
from mspd_edge.data import load_npz
from mspd_edge.io import read_image
from mspd_edge.pipeline import Settings
from mspd_edge.verify import compare, pair_inputs, read_settings, verify_pairs
from mspd_edge.verify import measure
from mspd_edge.verify.robust import default_targets, load_targets
from mspd_edge.verify.steps import apply_scenario

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10" / "test.npz"
STEPS = ("none", "jpeg75", "resize0.75", "resize0.75+jpeg75")
EXTRA = ("crop0.9", "blur4")          # simulated only: crops and heavy filters
KINDS = ("protected", "unprotected")
FIGURES = ("kept_cosine", "kept_energy", "kept_gain", "foreign_energy", "correlation")


def opencv_copy(pixels, step):
    """``(file bytes, suffix)`` a site using OpenCV would publish: area downscale, JPEG or PNG."""
    quality = None
    for part in step.split("+"):
        if part.startswith("resize"):
            factor = float(part[len("resize"):])
            h, w = pixels.shape[:2]
            pixels = cv2.resize(pixels, (round(w * factor), round(h * factor)), interpolation=cv2.INTER_AREA)
        elif part.startswith("jpeg"):
            quality = int(part[len("jpeg"):])
    suffix = ".png" if quality is None else ".jpg"
    ok, data = cv2.imencode(suffix, np.ascontiguousarray(pixels[:, :, ::-1]),
                            [] if quality is None else [cv2.IMWRITE_JPEG_QUALITY, quality])
    return data.tobytes(), suffix


def write_copies(sources, folder, step):
    folder.mkdir(parents=True, exist_ok=True)
    for path in sources:
        data, suffix = opencv_copy(read_image(path).pixels, step)
        (folder / (path.stem + suffix)).write_bytes(data)


def stats(entries):
    out = {"count": len(entries), "verdicts": {v: sum(e["verdict"] == v for e in entries) for v in measure.VERDICTS}}
    for key in FIGURES:
        values = np.array([e[key] for e in entries if e[key] is not None])
        if len(values):
            out[key] = {"mean": float(values.mean()), "median": float(np.median(values)),
                        "min": float(values.min()), "max": float(values.max()),
                        "p1": float(np.percentile(values, 1)), "p99": float(np.percentile(values, 99))}
    robust = [e["robust"] for e in entries if e.get("robust")]
    if robust:
        out["robust_accuracy"] = {t: float(np.mean([r[t] for r in robust])) for t in robust[0]}
    return out


def machine():
    import torch

    names = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
             if line.startswith("model name")] if Path("/proc/cpuinfo").exists() else []
    return f"{names[0] if names else platform.processor()}, {torch.get_num_threads()} torch threads"


def detection_accuracy(protected, unprotected):
    hits = sum(e["verdict"] in ("kept", "weakened") for e in protected) + \
        sum(e["verdict"] == "gone" for e in unprotected)
    return hits / (len(protected) + len(unprotected))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-attack", action="store_true", help="skip the robust accuracy (PGD-10)")
    parser.add_argument("--workdir", type=Path, help="keep the files here  [default: a temporary folder]")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temp:
        result = run(args, args.workdir or Path(temp))
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


def run(args, work):
    start = time.time()
    images, labels, _ = load_npz(args.data, limit=args.images)
    originals = work / "originals"
    originals.mkdir(parents=True, exist_ok=True)
    for k, image in enumerate(images):
        big = cv2.resize(image, (args.size, args.size), interpolation=cv2.INTER_CUBIC)
        cv2.imwrite(str(originals / f"{k:05d}.png"), big[:, :, ::-1])
    report = work / "protected" / "report.json"
    subprocess.run([sys.executable, "-m", "mspd_edge.cli", "protect", str(originals), "-o",
                    str(work / "protected"), "--report", str(report), "--seed", str(args.seed), "-q"], check=True)
    sources = {"protected": sorted((work / "protected").glob("*.png")), "unprotected": sorted(originals.glob("*.png"))}
    folders = {}
    for kind in KINDS:
        for step in STEPS:
            folders[kind, step] = work / "published" / kind / step
            write_copies(sources[kind], folders[kind, step], step)
    recorded = read_settings(report)
    options = BackendOptions(**{k: recorded[k] for k in ("backbone", "classifier", "device", "provider",
                                                         "precision", "model_dir") if recorded.get(k)})
    models = build_backend(recorded["backend"], options)
    settings = Settings(eps=recorded["eps"] / 255, n_samples=recorded["n_samples"], lr=recorded["lr"],
                        epochs=recorded["epochs"], seed=recorded["seed"]).resolved(models.backend)
    targets = None if args.no_attack else load_targets(default_targets(models.backend.input_size),
                                                       models.backend.input_size)
    pairs, problems = pair_inputs(originals, list(folders.values()))
    assert not problems, problems
    verification = verify_pairs(pairs, models.backend, settings, scenarios=STEPS[1:] + EXTRA,
                                targets=targets, log=lambda line: print(line, file=sys.stderr))
    groups = {}
    for entry in verification.images:
        if entry["step"] is None:
            kind, step = Path(entry["source"]).parts[-2:]
            groups.setdefault((kind, step, "file"), []).append(entry)
        else:
            groups.setdefault(("protected", entry["step"], "simulate"), []).append(entry)
    protected_images = {str(p): read_image(p).pixels for p in sources["protected"]}
    for step in STEPS[1:] + EXTRA:   # simulated unprotected copies: the scenario on the original
        groups["unprotected", step, "simulate"] = [
            {"verdict": c.verdict, **c.figures()} for c in (
                compare(o, protected_images[str(work / "protected" / p.name)], apply_scenario(o, step),
                        models.backend.input_size)
                for p in sources["unprotected"] for o in [read_image(p).pixels])]
    summary = {f"{kind}/{step}/{mode}": stats(entries) for (kind, step, mode), entries in groups.items()}
    detection = {f"{step}/{mode}": detection_accuracy(groups["protected", step, mode], groups["unprotected", step, mode])
                 for (kind, step, mode) in groups if kind == "protected" and step in STEPS}
    agreement = {}
    for step in STEPS[1:]:
        real = {e["original"]: e for e in groups["protected", step, "file"]}
        simulated = {e["original"]: e for e in groups["protected", step, "simulate"]}
        agreement[step] = {"verdicts_equal": float(np.mean([real[k]["verdict"] == simulated[k]["verdict"] for k in real])),
                           "mean_abs_cosine_difference": float(np.mean([abs(real[k]["kept_cosine"] - simulated[k]["kept_cosine"])
                                                                        for k in real]))}
    return {"machine": machine(), "images": args.images,
            "size": args.size, "data": str(args.data), "protect_settings": recorded,
            "thresholds": {n.lower(): getattr(measure, n) for n in ("KEPT_COSINE", "KEPT_GAIN", "GONE_COSINE", "GONE_GAIN",
                                                                 "ASPECT_TOLERANCE", "MIN_CORRELATION", "MAX_FOREIGN_ENERGY")},
            "robust_accuracy": verification.report()["robust_accuracy"], "detection_accuracy": detection,
            "simulate_vs_files": agreement, "steps": summary, "errors": verification.errors,
            "seconds": round(time.time() - start, 1)}


if __name__ == "__main__":
    main()
