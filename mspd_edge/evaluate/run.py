"""Run the evaluation protocol: conditions x targets x attacks, resumable.

Everything a run produces lives in one folder: ``results.json`` (schema in docs/evaluate.md),
``results.md``, ``results.png``, ``certified.png`` (with certification) and
``images/<condition>.npz`` (the uint8 images of each condition). ``results.json`` is rewritten atomically after every measurement, so an
interrupted run resumes where it stopped; a folder made with other settings is refused
unless ``overwrite``. The slow attacks (AutoAttack, Square: hours for 1,000 robust images on a
CPU) run in chunks of ``RESUME_CHUNK`` images whose flags are kept under ``partial`` until the
measurement is whole, so a run stopped mid-measurement loses one chunk at most.
"""
import io
import json
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from .. import metrics
from ..util import write_atomic
from .attacks import robust_flags
from .certified import CERTIFY_CONDITIONS, certified_entry, smoothing_sigmas
from .conditions import CONDITIONS, make_condition
from .cosine import gradient_cosine
from .report import SCHEMA, markdown_table, plot, plot_certified

RESULTS, TABLE, FIGURE, IMAGES = "results.json", "results.md", "results.png", "images"
CERTIFIED_FIGURE = "certified.png"
CERTIFIED = "certified"      # the work item of a certification (not an attack name)
# Config keys that decide the numbers: a resumed run must match them exactly.
FIXED_KEYS = ("data", "images", "seed", "defence", "graybox")
CHUNKED_ATTACKS = ("autoattack", "square")
RESUME_CHUNK = 100           # images per resumable chunk of a chunked attack
PARTIAL = "partial"          # results.json key of unfinished chunked measurements ("target/condition/attack")


class ResumeError(ValueError):
    """The output folder holds a run made with other settings."""


@dataclass
class Plan:
    """One evaluation: the images, the defence and what to measure."""

    config: dict                 # the JSON "config" section (names and numbers only)
    images: np.ndarray           # uint8 [n, h, w, 3] at the models' input size
    labels: np.ndarray           # ground truth, int64 [n]
    backends: dict               # {"defence": backend, "graybox": backend or None}
    settings: object             # resolved pipeline Settings of the defence
    targets: dict                # name -> torch model
    attacks: dict                # name -> AttackSpec
    conditions: tuple            # protocol order, parents included
    backbone: object = None      # torch backbone for the gradient cosine (None: skip it)
    certify: object = None       # a CertifySpec: certify the smoothed targets (None: skip it)
    batch_size: int = 256
    progress: bool = True
    log: object = field(default=print)


def machine():
    """A one-line description of this machine for the report."""
    return f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}"


def _load_result(out_dir, config, overwrite):
    path = out_dir / RESULTS
    fresh = {"schema": SCHEMA, "config": config, "machine": machine(),
             "quality": {}, "results": {}, "cosine": {}, "seconds": {}}
    if overwrite or not path.exists():
        return fresh
    old = json.loads(path.read_text())
    changed = [k for k in FIXED_KEYS if old.get("config", {}).get(k) != config[k]]
    old_attacks = old.get("config", {}).get("attacks", {})
    changed += [f"attack {a}" for a in config["attacks"] if a in old_attacks and old_attacks[a] != config["attacks"][a]]
    old_certify = old.get("config", {}).get("certify")
    changed += ["certify"] if old_certify and config.get("certify") and old_certify != config["certify"] else []
    if old.get("schema") != SCHEMA or changed:
        raise ResumeError(f"{path}: made with other settings ({', '.join(changed) or 'schema'}); "
                          "use another output folder or --overwrite")
    merged = dict(old["config"])
    for key in ("targets", "conditions"):
        merged[key] = list(dict.fromkeys(old["config"].get(key, []) + config[key]))
    merged["attacks"] = {**old_attacks, **config["attacks"]}
    if config.get("certify") or old_certify:
        merged["certify"] = config.get("certify") or old_certify
    return {**old, "config": merged, "machine": machine()}


def _condition_images(plan, name, cache, out_dir, result):
    """The condition's images: from the cache, from disk (a resumed run), or made now."""
    if name in cache:
        return cache[name]
    path = out_dir / IMAGES / f"{name}.npz"
    if path.exists() and name in result["seconds"]:
        with np.load(path) as z:
            cache[name] = z["images"]
        return cache[name]
    parent = CONDITIONS[name].parent
    parent_images = plan.images if parent is None else _condition_images(plan, parent, cache, out_dir, result)
    start = time.perf_counter()
    images, defence_labels = make_condition(name, parent_images, plan.backends, plan.settings, plan.labels)
    result["seconds"][name] = round(time.perf_counter() - start, 2)
    if name != "none":
        result["quality"][name] = _quality(plan.images, images, plan.labels, defence_labels)
    write_atomic(path, _npz_bytes(images))
    cache[name] = images
    return images


def _npz_bytes(images):
    buffer = io.BytesIO()
    np.savez_compressed(buffer, images=images)
    return buffer.getvalue()


def _quality(originals, images, labels, defence_labels):
    pairs = list(zip(originals, images))
    psnr = [p for p in (metrics.psnr(a, b) for a, b in pairs) if np.isfinite(p)]   # identical images: inf
    quality = {"n": len(pairs),
               "linf": max(metrics.linf(a, b, scale=255) for a, b in pairs),
               "l2": float(np.mean([metrics.l2(a, b, scale=255) for a, b in pairs])),
               "ssim": float(np.mean([metrics.ssim(a, b) for a, b in pairs])),
               "psnr": float(np.mean(psnr)) if psnr else None}
    if defence_labels is not None:
        quality["label_accuracy"] = float(np.mean(defence_labels == labels))
    return quality


def _tensor(images):
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div(255).contiguous()


def _clean_accuracy(model, x, y, batch_size):
    device = next(model.parameters()).device
    with torch.no_grad():
        correct = [model(x[i:i + batch_size].to(device)).argmax(1).cpu() == y[i:i + batch_size]
                   for i in range(0, len(y), batch_size)]
    return int(torch.cat(correct).sum()) / len(y)


def _work(plan, result):
    """The measurements still missing: (condition, target, attack, ``CERTIFIED`` or None for clean).
    With certification, the smoothed targets are certified instead of attacked."""
    smoothed = smoothing_sigmas(plan.targets) if plan.certify is not None else {}
    todo = []
    for condition in plan.conditions:
        for target in plan.targets:
            done = result["results"].get(target, {}).get(condition, {})
            todo += [(condition, target, None)] if "clean" not in done else []
            if target in smoothed:
                certified = result["certified"].get(target, {})
                todo += [(condition, target, CERTIFIED)] if (condition in CERTIFY_CONDITIONS
                                                              and condition not in certified) else []
                continue
            todo += [(condition, target, a) for a in plan.attacks if a not in done.get("robust", {})]
    return todo


def _robust_fraction(plan, result, out_dir, condition, target, attack, x, y):
    """Robust accuracy under ``attack``; a chunked attack saves its flags after every chunk."""
    model, spec, seed = plan.targets[target], plan.attacks[attack], plan.config["seed"]
    if attack not in CHUNKED_ATTACKS:
        return int(robust_flags(model, x, y, spec, seed=seed, batch_size=plan.batch_size).sum()) / len(y)
    key, partial = f"{target}/{condition}/{attack}", result.setdefault(PARTIAL, {})
    flags = partial.get(key, [])
    for start in range(len(flags), len(y), RESUME_CHUNK):
        chunk = slice(start, start + RESUME_CHUNK)
        flags = flags + robust_flags(model, x[chunk], y[chunk], spec, seed=seed,
                                     batch_size=plan.batch_size).int().tolist()
        partial[key] = flags
        _save(out_dir, result)
    partial.pop(key, None)
    if not partial:
        del result[PARTIAL]
    return sum(flags) / len(y)


def _measure(plan, result, out_dir, condition, target, kind, x, y):
    model = plan.targets[target]
    entry = result["results"].setdefault(target, {}).setdefault(condition, {"n": len(y), "robust": {}})
    if kind is None:
        entry["clean"] = _clean_accuracy(model, x, y, plan.batch_size)
    elif kind == CERTIFIED:
        sigma = smoothing_sigmas({target: model})[target]
        with tqdm(total=len(y), desc=f"certify {target} / {condition}", unit="image", leave=False,
                  disable=not plan.progress, dynamic_ncols=True) as bar:
            result["certified"].setdefault(target, {})[condition] = certified_entry(
                model, x, y, sigma, plan.certify, plan.config["seed"], plan.batch_size, progress=bar.update)
    else:
        entry["robust"][kind] = _robust_fraction(plan, result, out_dir, condition, target, kind, x, y)


def _save(out_dir, result):
    write_atomic(out_dir / RESULTS, (json.dumps(result, indent=2) + "\n").encode())


def run(plan, out_dir, overwrite=False):
    """Measure everything ``plan`` asks for into ``out_dir``; returns the result dict."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    result = _load_result(out_dir, plan.config, overwrite)
    if plan.certify is not None:
        result.setdefault("certified", {})     # present only in runs that certify
    y = torch.from_numpy(plan.labels)
    if plan.backbone is not None:
        for target, model in plan.targets.items():
            if target not in result["cosine"]:
                result["cosine"][target] = gradient_cosine(plan.backbone, model, _tensor(plan.images), y,
                                                           plan.batch_size)
        _save(out_dir, result)
    cache, todo = {}, _work(plan, result)
    bar = tqdm(todo, desc="evaluate", unit="measurement", disable=not plan.progress, dynamic_ncols=True)
    for condition, target, kind in bar:
        bar.set_postfix_str(f"{condition} / {target} / {kind or 'clean'}")
        x = _tensor(_condition_images(plan, condition, cache, out_dir, result))
        _measure(plan, result, out_dir, condition, target, kind, x, y)
        _save(out_dir, result)
    write_atomic(out_dir / TABLE, markdown_table(result).encode())
    plot(result, out_dir / FIGURE)
    if result.get("certified"):
        plot_certified(result, out_dir / CERTIFIED_FIGURE)
    return result
