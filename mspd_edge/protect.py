"""Protect (or revert) image files into a folder: the local engine behind ``mspd-edge protect/revert``.

A job (:func:`protect_files`, the job of :mod:`mspd_edge.job` run in this process): find the
inputs (a folder's files without an image suffix, and its subfolders without ``recursive``,
are skipped and reported), check that the output folder can be written, plan the outputs
(:class:`~mspd_edge.job.OutputClaims`; existing outputs are kept), read every header (a bad
file is reported before any model runs), then per file (:func:`protect_file`): decode once,
protect, describe, write (lossless PNG or WebP, metadata kept). Files go through the cascade
in batches of ``settings.batch_size`` that hold at most ``defaults.BATCH_BYTES`` of decoded
pixels (a larger image goes alone), so memory follows the largest image, not the job. A set
``stop`` event ends the job after the image being read or written (or the images in the
cascade), a KeyboardInterrupt at once; the summary then says what finished (``interrupted``, ``pending``).
"""
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import defaults, job
from .io import ImageError, check_output_size, check_writable, discover, output_name, read_header, write_image
from .job import (FileOptions, NoInputError, OutputError, Task, image_record, load_input, log_failed,
                  log_skipped, missing_reason, stderr_log)
from .labels import LabelError
from .pipeline import protect_batch


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
    seconds: float = 0.0
    log: object = field(default=stderr_log, repr=False)

    @property
    def counts(self):
        return {"written": len(self.images), "skipped": len(self.skipped), "failed": len(self.errors),
                "pending": len(self.pending)}

    def fail(self, path, why):
        """Record and log that input ``path`` failed."""
        self.errors.append({"input": str(path), "error": why})
        log_failed(self.log, path, why)

    def skip(self, path, output):
        """Record and log that ``output`` exists and was kept."""
        self.skipped.append({"input": str(path), "output": str(output), "reason": "exists"})
        log_skipped(self.log, path, f"{output} exists (use --overwrite)")

    def unsupported(self, path, why):
        """Record and log that a folder's entry ``path`` (a file this tool does not read, or a
        subfolder without ``recursive``) was skipped."""
        self.skipped.append({"input": str(path), "output": None, "reason": "unsupported", "why": why})
        log_skipped(self.log, path, why)

    def report(self, **settings):
        """The JSON-ready job report; ``settings`` adds what the caller knows (models, device, ...)."""
        head = job.report(self.settings, self.reverse, self.format, self.counts, self.interrupted,
                          self.seconds, **settings)
        return {**head, "images": self.images, "skipped": self.skipped, "errors": self.errors,
                "pending": self.pending}


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


def protect_files(inputs, outdir, backend, settings, *, options=FileOptions(), reverse=False, labels=None,
                  recursive=False, overwrite=False, progress=False, log=stderr_log, stop=None, on_start=None):
    """Protect the images named by ``inputs`` (files, folders, globs) into ``outdir``.

    ``settings``: pipeline :class:`~mspd_edge.pipeline.Settings` (resolved here: the seed drawn
    is in the summary); ``labels``: ``path -> class index`` for label mode "gt"
    (:func:`mspd_edge.labels.label_source`); ``reverse``: Preemptive Reversion instead.
    Existing outputs are kept unless ``overwrite``. ``log(line, is_error)`` receives one line
    per failed or skipped input; ``stop``: an event that ends the job after the current image(s);
    ``on_start(sizes)`` hears the ``(width, height)`` of the images to process before any work.
    Returns a :class:`Summary`; raises :class:`NoInputError` when no input file is found and
    :class:`OutputError` when ``outdir`` cannot be written (both before any computation).
    """
    start = time.perf_counter()
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
    if on_start is not None:
        on_start([(task.header.width, task.header.height) for task in tasks])
    _run(tasks, backend, summary, options, progress, stop)
    summary.seconds = time.perf_counter() - start
    return summary


def _plan(sources, outdir, overwrite, labels, options, summary):
    """Tasks for the sources whose output is free (or ``overwrite``), header reads and label resolves."""
    tasks, claims = [], job.OutputClaims()
    for source in sources:
        output = outdir / output_name(source.relative, options.format)
        why = claims.conflict(str(output.resolve()).casefold(), output, source.path, source.relative,
                              output.resolve() == source.path.resolve())
        if why:
            summary.fail(source.path, why)
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
    """Protect ``tasks`` group by group until done, ``stop`` is set or Ctrl-C; note what is left."""
    groups = job.batches(tasks, summary.settings.batch_size, lambda task: task.header.nbytes,
                         lambda task: defaults.BATCH_BYTES)
    stopped = (lambda: False) if stop is None else stop.is_set
    with job.progress_bar(progress, summary.reverse, len(tasks)) as bar:
        try:
            for group in groups:
                if stopped():
                    break
                bar.update(_protect_group(group, backend, summary, options, stopped))
        except KeyboardInterrupt:
            pass
    finished = {record["input"] for record in summary.images + summary.errors}
    summary.pending = [str(task.path) for task in tasks if str(task.path) not in finished]
    summary.interrupted = bool(summary.pending)


def _labels(loaded, settings):
    return [item.task.label for item in loaded] if settings.label_mode == "gt" else None


def _protect_group(group, backend, summary, options, stopped):
    """Read, protect and write ``group`` until ``stopped()``: after the image being read or
    written, or after the cascade's images; how many of its inputs finished (written or failed)."""
    loaded, failed = [], 0
    for task in group:
        if stopped():
            return failed
        try:
            loaded.append(load_input(task, backend.input_size, options))
        except ImageError as exc:
            summary.fail(task.path, str(exc))
            failed += 1
    if not loaded:
        return failed
    start = time.perf_counter()
    results = protect_batch([item.pixels for item in loaded], backend, summary.settings,
                            _labels(loaded, summary.settings), summary.reverse)
    share = (time.perf_counter() - start) / len(loaded)
    computing = stopped()   # a stop that came during the cascade: its images are the current ones
    for k, item in enumerate(loaded):
        if stopped() and not computing:
            return failed + k
        (pixels, label), results[k], loaded[k] = results[k], None, None   # release as written
        try:
            summary.images.append(_save(item, pixels, label, share, backend.input_size, options))
        except OutputError as exc:
            summary.fail(item.task.path, str(exc))
    return failed + len(loaded)


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
