"""What a ``protect`` (or ``revert``) job is, whichever engine runs it; no torch, no Ray.

Both engines (:mod:`mspd_edge.protect`, this process; :mod:`mspd_edge.distributed`, a Ray
cluster) run the same job and differ only in where the work runs: the same inputs
(:func:`missing_reason` for one that names no image), the same plan (:class:`OutputClaims`:
one input per output name; the output that would replace its input), the same groups
(:func:`batches`), the same per-file steps and records (:func:`load_input`,
:func:`image_record`), the same log lines (:func:`log_failed`, :func:`log_skipped`), the same
report (:func:`report`), elapsed time included, the same progress bar (:func:`progress_bar`)
and the same stop: a set ``stop`` event ends the job after the current image(s), a
KeyboardInterrupt at once; the inputs left are ``pending``.
"""
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from . import __version__, defaults
from .imaging import budget_levels, split
from .io import Header, ImageError, check_output_size, is_pattern, read_image
from .metrics import ssim, uint8_distances


class NoInputError(ValueError):
    """None of the inputs names an image file."""


class OutputError(Exception):
    """An output (or the output folder) that cannot be written; the message says why (one line)."""


def stderr_log(line, error):
    """The default ``log(line, is_error)`` of a job: the line on stderr, above a progress bar."""
    tqdm.write(line, file=sys.stderr)


def log_failed(log, source, why):
    """Log that input ``source`` failed: ``error: SOURCE: why``."""
    log(f"error: {source}: {why}", True)


def log_skipped(log, source, why):
    """Log that input ``source`` was skipped: ``skipped: SOURCE: why``."""
    log(f"skipped: {source}: {why}", False)


@dataclass(frozen=True)
class FileOptions:
    """How files are read and written: output format, pixel limit, distances, class names."""

    format: str = "png"                     # "png" or "webp" (lossless)
    max_pixels: int = defaults.MAX_PIXELS   # larger inputs are refused
    metrics: bool = True                    # L-inf, L2, PSNR and SSIM in each record
    classes: tuple | None = None            # the model's class names, for the records


@dataclass
class Task:
    """One input to process: where it comes from and goes, its label and its header."""

    path: Path
    output: Path
    label: int | None = None
    header: Header | None = None


def missing_reason(item, recursive):
    """Why the input ``item`` (a path or glob) named no image file: one line for its error."""
    if Path(item).is_dir():
        return "no images in this folder" + ("" if recursive else " (subfolders need --recursive)")
    return "no file matches" if is_pattern(item) else "no such file or directory"


def _folder_of(source, relative):
    """The folder input that ``source`` was found in (its parent for a file input)."""
    source, relative = str(source), str(relative)
    return source[: len(source) - len(relative)].rstrip("/") or "."


class OutputClaims:
    """One input per output: the first input claims an output name (case-folded: ``a.jpg`` and
    ``A.png`` are one output on many file systems), a later one gets the reason it cannot."""

    def __init__(self):
        self._claimed = {}

    def conflict(self, key, output, source, relative, replaces_input=False):
        """Claim ``output`` (its case-folded path is ``key``) for ``source``, found at ``relative``
        below its folder input; None, or why ``source`` cannot have it (its error line)."""
        first = self._claimed.setdefault(key, (source, str(relative)))
        if first[0] != source:
            if first[1] != str(relative):
                return (f"its output {output} is also that of {first[0]} (same name but for the "
                        "suffix or case): rename one of them")
            return (f"its output {output} is also that of {first[0]}: both are {relative} in "
                    f"{_folder_of(first[0], relative)} and {_folder_of(source, relative)} (each input "
                    "goes to OUTDIR by its path in its folder): use another -o for one of them")
        if replaces_input:
            return "the output would replace the input"
        return None


def batches(items, size, weight, limit, kind=lambda item: None):
    """Consecutive groups of ``items``: at most ``size`` items and ``limit(item)`` of
    ``weight(item)`` each (one item at least), items of one ``kind`` each."""
    groups, group, held = [], [], 0
    for item in items:
        if group and (kind(item) != kind(group[-1]) or len(group) == size
                      or held + weight(item) > limit(item)):
            groups.append(group)
            group, held = [], 0
        group.append(item)
        held += weight(item)
    return groups + [group] if group else groups


def progress_bar(progress, reverse, total):
    """The job's progress bar on stderr (advanced by whole groups, so that its rate and ETA
    follow the work done, not the first image of a group)."""
    return tqdm(total=total, desc="reverting" if reverse else "protecting", unit="image",
                file=sys.stderr, disable=not progress or total <= 1, leave=False)


def report(settings, reverse, fmt, counts, interrupted, seconds, **job):
    """The JSON-ready head of a job report: version, settings (``job`` adds what the caller
    knows: models, device, engine, ...), whether it was interrupted, the counts, the seconds."""
    s = settings
    return {"version": __version__,
            "settings": {"command": "revert" if reverse else "protect", **job, "format": fmt,
                         "eps": s.eps, "eps_255": budget_levels(s.eps), "n_samples": s.n_samples,
                         "lr": s.lr, "epochs": s.epochs, "seed": s.seed, "label_mode": s.label_mode,
                         "batch_size": s.batch_size},
            "interrupted": interrupted, "counts": counts, "seconds": seconds}


@dataclass
class LoadedInput:
    """A task's decoded input (:class:`mspd_edge.io.Decoded`) and the seconds reading it took."""

    task: Task
    decoded: object
    seconds: float

    @property
    def pixels(self):
        return self.decoded.pixels

    def release(self):
        """The input's metadata; its pixels are no longer held (memory for the encoder)."""
        self.decoded = replace(self.decoded, pixels=None)
        return self.decoded


def load_input(task, input_size, options):
    """Decode ``task``'s input and check that the model and the output format take it.

    Raises :class:`ImageError` (the one-line reason) for an input that cannot be protected.
    """
    start = time.perf_counter()
    decoded = read_image(task.path, options.max_pixels)
    color = split(decoded.pixels)[0]
    if color.shape[2] not in (1, input_size[0]):
        raise ImageError(f"{color.shape[2]} colour channels, the model takes {input_size[0]}")
    check_output_size(color.shape[1], color.shape[0], options.format)
    return LoadedInput(task, decoded, time.perf_counter() - start)


def image_record(task, original, pixels, label, input_size, options):
    """The report entry of one image protected into ``pixels``: its label (``classes`` of
    ``options`` name it), size and channels, and with ``options.metrics`` its distances to
    ``original`` over the colour channels (L-inf in [0, 1] and in levels, L2, PSNR, SSIM)."""
    before, after = split(original)[0], split(pixels)[0]
    height, width = before.shape[:2]
    classes = options.classes
    record = {"input": str(task.path), "output": str(task.output),
              "label": {"index": label, "name": classes[label] if classes else None},
              "size": [width, height], "channels": int(pixels.shape[2]) if pixels.ndim == 3 else 1,
              "resized": (height, width) != tuple(input_size[1:])}
    if options.metrics:
        levels, l2, psnr = uint8_distances(after, before)
        record.update(linf=levels / 255, linf_255=levels, l2=l2, psnr=_finite(psnr),
                      ssim=_ssim_or_none(after, before))
    return record


def _finite(value):
    return value if np.isfinite(value) else None


def _ssim_or_none(a, b):
    try:
        return ssim(a, b)
    except ValueError:   # smaller than the SSIM window
        return None
