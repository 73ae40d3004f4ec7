"""Protect (or revert) image files into a folder: the function behind ``mspd-edge protect/revert``.

Per job: find the inputs, plan the outputs (collisions, existing files), resolve ground-truth
labels, decode every input completely (a bad file is reported and left out before any model
runs), run the pipeline on the good ones, write each result as a PNG and describe it.
"""
import sys
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
from tqdm import tqdm

from . import __version__, defaults
from .imaging import budget_levels, split
from .io import ImageError, discover, is_pattern, read_image, write_png
from .labels import LabelError
from .metrics import l2, linf, psnr, ssim
from .pipeline import protect_images


class NoInputError(ValueError):
    """None of the inputs names an image file."""


def _stderr(line, error):
    tqdm.write(line, file=sys.stderr)


@dataclass
class Task:
    """One input to process: where it comes from and goes, its label and what reading it cost."""

    path: Path
    output: Path
    label: int | None = None
    icc_profile: bytes | None = None
    read_seconds: float = 0.0


@dataclass
class Summary:
    """What a job did: per written image a record, plus the skipped and the failed inputs."""

    settings: object
    reverse: bool = False
    images: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    errors: list = field(default_factory=list)
    log: object = field(default=_stderr, repr=False)

    def fail(self, path, why):
        """Record and log that input ``path`` failed."""
        self.errors.append({"input": str(path), "error": why})
        self.log(f"error: {path}: {why}", True)

    def skip(self, path, output):
        """Record and log that ``output`` exists and was kept."""
        self.skipped.append({"input": str(path), "output": str(output), "reason": "exists"})
        self.log(f"skipped: {path}: {output} exists (use --overwrite)", False)

    def report(self, **job):
        """The JSON-ready job report; ``job`` adds settings the caller knows (models, device, ...)."""
        s = self.settings
        settings = {"command": "revert" if self.reverse else "protect", **job,
                    "eps": s.eps, "eps_255": budget_levels(s.eps), "n_samples": s.n_samples,
                    "lr": s.lr, "epochs": s.epochs, "seed": s.seed, "label_mode": s.label_mode,
                    "batch_size": s.batch_size}
        counts = {"written": len(self.images), "skipped": len(self.skipped), "failed": len(self.errors)}
        return {"version": __version__, "settings": settings, "counts": counts,
                "images": self.images, "skipped": self.skipped, "errors": self.errors}


def protect_files(inputs, outdir, backend, settings, *, reverse=False, labels=None, classes=None,
                  recursive=False, overwrite=False, max_pixels=defaults.MAX_PIXELS,
                  metrics=True, progress=False, log=_stderr):
    """Protect the images named by ``inputs`` (files, folders, globs) into PNGs in ``outdir``.

    ``settings``: pipeline :class:`~mspd_edge.pipeline.Settings` (resolved here: the seed drawn
    is in the summary); ``labels``: ``path -> class index`` for label mode "gt"
    (:func:`mspd_edge.labels.label_source`); ``classes``: the model's class names, for the
    report; ``reverse``: Preemptive Reversion instead. Existing outputs are kept unless
    ``overwrite``. ``metrics``: add L-inf, L2, PSNR and SSIM to each image's entry (costly on
    large images). ``log(line, is_error)`` receives one line per failed or skipped input.
    Returns a :class:`Summary`; raises :class:`NoInputError` when no input file is found.
    """
    summary = Summary(settings.resolved(backend), reverse, log=log)
    if (labels is None) != (settings.label_mode != "gt"):
        raise ValueError("pass labels exactly when the label mode is 'gt'")
    sources, missing = discover(inputs, recursive, exclude=outdir)
    for item in missing:
        summary.fail(item, _missing_reason(item, recursive))
    if not sources:
        raise NoInputError("no input images found")
    tasks = _plan(sources, Path(outdir), overwrite, labels, summary)
    tasks, images = _read(tasks, backend.input_size, max_pixels, summary, progress)
    if tasks:
        describe = partial(_describe, classes=classes, input_size=backend.input_size, metrics=metrics)
        _protect(tasks, images, backend, summary, describe, progress)
    return summary


def _missing_reason(item, recursive):
    if Path(item).is_dir():
        return "no images in this folder" + ("" if recursive else " (subfolders need --recursive)")
    return "no file matches" if is_pattern(item) else "no such file or directory"


def _plan(sources, outdir, overwrite, labels, summary):
    """Tasks for the sources whose output is free (or ``overwrite``) and whose label resolves."""
    tasks, claimed = [], {}
    for source in sources:
        output = outdir / source.relative
        key = str(output.resolve()).casefold()   # a.jpg and a.png, or A.png: one output
        if key in claimed:
            summary.fail(source.path, f"output {output} is already used by {claimed[key]}")
            continue
        claimed[key] = source.path
        if output.resolve() == source.path.resolve():
            summary.fail(source.path, "the output would replace the input")
        elif output.exists() and not overwrite:
            summary.skip(source.path, output)
        else:
            try:
                tasks.append(Task(source.path, output, None if labels is None else labels(source.path)))
            except LabelError as exc:
                summary.fail(source.path, str(exc))
    return tasks


def _read(tasks, input_size, max_pixels, summary, progress):
    """Decode every task's input; the good tasks and their images (kept up to a memory budget)."""
    good, cache, budget = [], {}, defaults.READ_CACHE_BYTES
    for task in _bar(tasks, progress, "reading"):
        start = time.perf_counter()
        try:
            decoded = read_image(task.path, max_pixels)
            _check_channels(decoded.pixels, input_size)
        except ImageError as exc:
            summary.fail(task.path, str(exc))
            continue
        task.icc_profile, task.read_seconds = decoded.icc_profile, time.perf_counter() - start
        if decoded.pixels.nbytes <= budget:
            budget -= decoded.pixels.nbytes
            cache[len(good)] = decoded.pixels
        good.append(task)
    return good, _Images(good, cache, max_pixels)


def _check_channels(pixels, input_size):
    color = split(pixels)[0]
    if color.shape[2] not in (1, input_size[0]):
        raise ImageError(f"{color.shape[2]} colour channels, the model takes {input_size[0]}")


class _Images:
    """The good inputs by job index, for the pipeline: kept pixels, or decoded again on access."""

    def __init__(self, tasks, cache, max_pixels):
        self.tasks, self.cache, self.max_pixels = tasks, cache, max_pixels

    def __len__(self):
        return len(self.tasks)

    def __getitem__(self, index):
        if index not in self.cache:
            path = self.tasks[index].path
            try:
                self.cache[index] = read_image(path, self.max_pixels).pixels
            except ImageError as exc:
                raise ImageError(f"{path}: changed while the job ran: {exc}") from None
        return self.cache[index]

    def release(self, index):
        """The pixels of image ``index``, no longer kept."""
        return self.cache.pop(index)


def _protect(tasks, images, backend, summary, describe, progress):
    settings = summary.settings
    labels = [task.label for task in tasks] if settings.label_mode == "gt" else None
    results = protect_images(images, backend, settings, labels=labels, reverse=summary.reverse)
    with _bar(None, progress, "reverting" if summary.reverse else "protecting", len(tasks)) as bar:
        for batch, share in _timed_batches(results, settings.batch_size, len(tasks)):
            for index, pixels, label in batch:
                task, original = tasks[index], images.release(index)
                start = time.perf_counter()
                if _write(task, pixels, summary):
                    seconds = task.read_seconds + share + time.perf_counter() - start
                    summary.images.append({**describe(task, original, pixels, label), "seconds": seconds})
                bar.update()


def _timed_batches(results, size, total):
    """Group the pipeline's ``(index, image, label)`` results by batch, with seconds per image."""
    batch, start = [], time.perf_counter()
    for item in results:
        batch.append(item)
        if len(batch) == size or item[0] == total - 1:
            yield batch, (time.perf_counter() - start) / len(batch)
            batch, start = [], time.perf_counter()


def _write(task, pixels, summary):
    try:
        write_png(task.output, pixels, task.icc_profile)
        return True
    except OSError as exc:
        summary.fail(task.path, f"cannot write {task.output}: {exc.strerror or exc}")
        return False


def _describe(task, original, pixels, label, classes, input_size, metrics):
    """The summary entry of one written image; distances over the colour channels, in [0, 1]."""
    before, after = split(original)[0], split(pixels)[0]
    height, width = before.shape[:2]
    record = {"input": str(task.path), "output": str(task.output),
              "label": {"index": label, "name": classes[label] if classes else None},
              "size": [width, height], "channels": int(pixels.shape[2]) if pixels.ndim == 3 else 1,
              "resized": (height, width) != tuple(input_size[1:])}
    if metrics:
        levels = int(linf(after, before))
        record.update(linf=levels / 255, linf_255=levels, l2=l2(after, before, scale=255),
                      psnr=_finite(psnr(after, before)), ssim=_ssim_or_none(after, before))
    return record


def _finite(value):
    return value if np.isfinite(value) else None


def _ssim_or_none(a, b):
    try:
        return ssim(a, b)
    except ValueError:   # smaller than the SSIM window
        return None


def _bar(iterable, progress, desc, total=None):
    total = len(iterable) if total is None else total
    return tqdm(iterable, total=total, desc=desc, unit="image", file=sys.stderr,
                disable=not progress or total <= 1, leave=False)
