"""Protect (or revert) image files into a folder: the library behind ``mspd-edge protect/revert``.

A job (:func:`protect_files`): find the inputs (a folder's files without an image suffix are
skipped and reported), check that the output folder can be written, plan the outputs (two
inputs with one output name are an error for the second, existing outputs are kept), read
every header (a bad file is reported before any model runs), then per file
(:func:`protect_file`): decode once, protect, describe, write (lossless PNG or WebP, metadata
kept). Files go through the cascade in batches of ``settings.batch_size`` that hold at most
``defaults.BATCH_BYTES`` of decoded pixels (a larger image goes alone), so memory follows the
largest image, not the job. A set ``stop`` event ends the job after the current batch, a
KeyboardInterrupt at once; the summary then says what finished (``interrupted``, ``pending``).
The steps of a file, public for other engines (``mspd_edge.distributed``): :func:`load_input`,
:func:`image_record`, :func:`missing_reason`.
"""
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from . import __version__, defaults
from .imaging import budget_levels, split
from .io import (Header, ImageError, check_output_size, check_writable, discover, is_pattern,
                 output_name, read_header, read_image, write_image)
from .labels import LabelError
from .metrics import ssim, uint8_distances
from .pipeline import protect_batch


class NoInputError(ValueError):
    """None of the inputs names an image file."""


class OutputError(Exception):
    """An output (or the output folder) that cannot be written; the message says why (one line)."""


def _stderr(line, error):
    tqdm.write(line, file=sys.stderr)


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


@dataclass
class Summary:
    """What a job did: per written image a record, plus the skipped and the failed inputs."""

    settings: object
    reverse: bool = False
    format: str = "png"
    images: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    errors: list = field(default_factory=list)
    interrupted: bool = False
    pending: list = field(default_factory=list)
    log: object = field(default=_stderr, repr=False)

    def fail(self, path, why):
        """Record and log that input ``path`` failed."""
        self.errors.append({"input": str(path), "error": why})
        self.log(f"error: {path}: {why}", True)

    def skip(self, path, output):
        """Record and log that ``output`` exists and was kept."""
        self.skipped.append({"input": str(path), "output": str(output), "reason": "exists"})
        self.log(f"skipped: {path}: {output} exists (use --overwrite)", False)

    def unsupported(self, path, why):
        """Record and log that a folder's file ``path`` is no image this tool reads."""
        self.skipped.append({"input": str(path), "output": None, "reason": "unsupported", "why": why})
        self.log(f"skipped: {path}: {why}", False)

    def report(self, **job):
        """The JSON-ready job report; ``job`` adds settings the caller knows (models, device, ...)."""
        s = self.settings
        settings = {"command": "revert" if self.reverse else "protect", **job, "format": self.format,
                    "eps": s.eps, "eps_255": budget_levels(s.eps), "n_samples": s.n_samples,
                    "lr": s.lr, "epochs": s.epochs, "seed": s.seed, "label_mode": s.label_mode,
                    "batch_size": s.batch_size}
        counts = {"written": len(self.images), "skipped": len(self.skipped), "failed": len(self.errors),
                  "pending": len(self.pending)}
        return {"version": __version__, "settings": settings, "interrupted": self.interrupted,
                "counts": counts, "images": self.images, "skipped": self.skipped,
                "errors": self.errors, "pending": self.pending}


def protect_file(path, output, backend, settings, *, label=None, reverse=False, options=FileOptions()):
    """Read ``path``, protect (or revert) it with ``backend``, write ``output``; its record (dict).

    ``settings``: pipeline Settings, best resolved once per job (``Settings.resolved``: the
    seed); ``label``: the class index for label mode "gt". The result depends on the image and
    the settings alone (``mspd_edge.noise``). Raises :class:`ImageError` for an unusable input
    and :class:`OutputError` when ``output`` cannot be written.
    """
    settings = settings.resolved(backend)
    task = Task(Path(path), Path(output), label)
    loaded = load_input(task, backend.input_size, options)
    start = time.perf_counter()
    [(pixels, predicted)] = protect_batch([loaded.pixels], backend, settings,
                                          _labels([loaded], settings), reverse)
    return _save(loaded, pixels, predicted, time.perf_counter() - start, backend.input_size, options)


def protect_files(inputs, outdir, backend, settings, *, options=FileOptions(), reverse=False,
                  labels=None, recursive=False, overwrite=False, progress=False, log=_stderr, stop=None):
    """Protect the images named by ``inputs`` (files, folders, globs) into ``outdir``.

    ``settings``: pipeline :class:`~mspd_edge.pipeline.Settings` (resolved here: the seed drawn
    is in the summary); ``labels``: ``path -> class index`` for label mode "gt"
    (:func:`mspd_edge.labels.label_source`); ``reverse``: Preemptive Reversion instead.
    Existing outputs are kept unless ``overwrite``. ``log(line, is_error)`` receives one line
    per failed or skipped input; ``stop``: an event that ends the job after the current batch.
    Returns a :class:`Summary`; raises :class:`NoInputError` when no input file is found and
    :class:`OutputError` when ``outdir`` cannot be written (both before any computation).
    """
    summary = Summary(settings.resolved(backend), reverse, options.format, log=log)
    if (labels is None) != (settings.label_mode != "gt"):
        raise ValueError("pass labels exactly when the label mode is 'gt'")
    sources, missing = discover(inputs, recursive, exclude=outdir, on_skip=summary.unsupported)
    for item in missing:
        summary.fail(item, missing_reason(item, recursive))
    if not sources:
        raise NoInputError("no input images found")
    try:
        check_writable(outdir)
    except OSError as exc:
        raise OutputError(f"{outdir}: cannot write into this folder: {exc.strerror or exc}") from None
    tasks = _plan(sources, Path(outdir), overwrite, labels, options, summary)
    _run(tasks, backend, summary, options, progress, stop)
    return summary


def missing_reason(item, recursive):
    """Why the input ``item`` (a path or glob) named no image file: one line for its error."""
    if Path(item).is_dir():
        return "no images in this folder" + ("" if recursive else " (subfolders need --recursive)")
    return "no file matches" if is_pattern(item) else "no such file or directory"


def _plan(sources, outdir, overwrite, labels, options, summary):
    """Tasks for the sources whose output is free (or ``overwrite``), header reads and label resolves."""
    tasks, claimed = [], {}
    for source in sources:
        output = outdir / output_name(source.relative, options.format)
        key = str(output.resolve()).casefold()   # a.jpg and a.png, or A.png: one output
        if key in claimed:
            summary.fail(source.path, f"its output {output} is also that of {claimed[key]} (same name "
                                      "but for the suffix or case): rename one of them")
            continue
        claimed[key] = source.path
        if output.resolve() == source.path.resolve():
            summary.fail(source.path, "the output would replace the input")
        elif output.exists() and not overwrite:
            summary.skip(source.path, output)
        else:
            try:
                header = read_header(source.path, options.max_pixels)
                check_output_size(header.width, header.height, options.format)
                label = None if labels is None else labels(source.path)
            except (ImageError, LabelError) as exc:
                summary.fail(source.path, str(exc))
                continue
            tasks.append(Task(source.path, output, label, header))
    return tasks


def _run(tasks, backend, summary, options, progress, stop):
    """Protect ``tasks`` batch by batch until done, ``stop`` is set or Ctrl-C; note what is left."""
    verb = "reverting" if summary.reverse else "protecting"
    with _bar(progress, verb, len(tasks)) as bar:
        try:
            for group in _groups(tasks, summary.settings.batch_size):
                if stop is not None and stop.is_set():
                    break
                _protect_group(group, backend, summary, options, bar.update)
        except KeyboardInterrupt:
            pass
    finished = {record["input"] for record in summary.images + summary.errors}
    summary.pending = [str(task.path) for task in tasks if str(task.path) not in finished]
    summary.interrupted = bool(summary.pending)


def _groups(tasks, size):
    """Consecutive batches of at most ``size`` tasks and BATCH_BYTES of pixels (one at least)."""
    group, held = [], 0
    for task in tasks:
        if group and (len(group) == size or held + task.header.nbytes > defaults.BATCH_BYTES):
            yield group
            group, held = [], 0
        group.append(task)
        held += task.header.nbytes
    if group:
        yield group


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


def _labels(loaded, settings):
    return [item.task.label for item in loaded] if settings.label_mode == "gt" else None


def _protect_group(group, backend, summary, options, done):
    loaded = []
    for task in group:
        try:
            loaded.append(load_input(task, backend.input_size, options))
        except ImageError as exc:
            summary.fail(task.path, str(exc))
            done()
    if not loaded:
        return
    start = time.perf_counter()
    results = protect_batch([item.pixels for item in loaded], backend, summary.settings,
                            _labels(loaded, summary.settings), summary.reverse)
    share = (time.perf_counter() - start) / len(loaded)
    for k, item in enumerate(loaded):
        (pixels, label), results[k], loaded[k] = results[k], None, None   # release as written
        try:
            summary.images.append(_save(item, pixels, label, share, backend.input_size, options))
        except OutputError as exc:
            summary.fail(item.task.path, str(exc))
        done()


def _save(loaded, pixels, label, compute_seconds, input_size, options):
    """Describe the result, write it with the input's metadata, and return its record."""
    start = time.perf_counter()
    task = loaded.task
    record = image_record(task, loaded.pixels, pixels, label, input_size, options)
    metadata = loaded.release()
    try:
        write_image(task.output, pixels, options.format, metadata.icc_profile, metadata.exif, metadata.xmp)
    except OSError as exc:
        raise OutputError(f"cannot write {task.output}: {exc.strerror or exc}") from None
    record["metadata"] = [name for name, value in (("icc", metadata.icc_profile), ("exif", metadata.exif),
                                                   ("xmp", metadata.xmp)) if value]
    record["seconds"] = loaded.seconds + compute_seconds + time.perf_counter() - start
    return record


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


def _bar(progress, desc, total):
    return tqdm(total=total, desc=desc, unit="image", file=sys.stderr,
                disable=not progress or total <= 1, leave=False)
