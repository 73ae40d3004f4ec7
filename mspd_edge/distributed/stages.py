"""The per-file stages of a distributed job, as Ray Data batch functions (numpy batches).

``decode_groups`` (tasks): read and decode each input as ``protect`` loads it, or settle it:
a bad file becomes a ``failed`` row, a complete output already there a ``skipped`` one.
``write_outputs`` (tasks): describe each protected image with ``protect``'s report entry and
write it as ``protect`` does (:func:`write_output`: :func:`mspd_edge.io.save_image`, the
input's metadata kept, atomically). Between them the actors of
:mod:`~mspd_edge.distributed.actors` protect the ``pending`` rows. A ``large`` row (an
image of ``JobSpec.large_pixels`` or more, by its header) is left undecoded; its actor runs
every stage (:func:`protect_large`), so only its manifest row crosses the object store.
Every stage turns a failure into that row's ``error``, never into a failed job.
"""
import json
import time
from dataclasses import dataclass, replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from ..imaging import budget_levels, split
from ..io import Decoded, ImageError, read_header, read_image, save_image
from ..job import FileOptions, Task, image_record, load_input
from .manifest import encode_row, manifest_row
from .storage import Location, is_file, local_file, write_atomic

PENDING = "pending"   # decoded, waiting for the protector
LARGE = "large"       # a file its actor reads, protects and writes (protect_large)
# benchmarks/ray_large_files.py (results/ray-large-files*.json; 2 actors on 2 shared CPUs,
# runs vary by ~20%): protected whole in their actor, 4 MP images went 1.1-1.4x as fast as
# batched (pixels twice through the object store), 1 MP ones 0.9-1.4x, 0.26 MP ones
# 0.75-1.15x (batched, decoding and encoding overlap with protection); 0.5 MP lies between.
LARGE_PIXELS = 500_000
NO_LABEL = -1
METADATA = ("icc", "exif", "xmp")   # the input's metadata columns (bytes, b"" for none)


@dataclass(frozen=True)
class JobSpec:
    """What the stages need: file systems, the budget and ``protect``'s file options."""

    filesystems: tuple        # the inputs' file systems, by a row's ``fs`` index
    destination: object       # the outputs' pyarrow file system
    eps: float
    input_size: tuple
    options: FileOptions
    overwrite: bool
    large_pixels: int | None = LARGE_PIXELS   # images protected whole by their actor (None: none)


def write_output(where, pixels, decoded, fmt):
    """Write protected ``pixels`` at ``where`` with the metadata of ``decoded`` (an input's
    :class:`mspd_edge.io.Decoded`): the bytes ``mspd-edge protect`` writes
    (:func:`mspd_edge.io.save_image`), through :func:`storage.write_atomic`, whose fixed
    partial name a retried write replaces when a killed one left it."""
    write_atomic(where, lambda out: save_image(out, pixels, fmt, decoded.icc_profile, decoded.exif,
                                               decoded.xmp))


def _flat(pixels):
    return np.ascontiguousarray(pixels).reshape(-1)


def _shape(pixels):
    return np.array([*pixels.shape[:2], pixels.shape[2] if pixels.ndim == 3 else 0], np.int64)


def unflatten(flat, shape):
    """Pixels from a row's flat ``pixels`` and ``shape`` ([h, w, channels or 0 for gray])."""
    h, w, c = (int(v) for v in shape)
    return np.asarray(flat, np.uint8).reshape((h, w, c) if c else (h, w))


def decode_groups(batch, job):
    """Rows for the planned files of ``batch["group"]`` (JSON lists of file plans)."""
    return _columns([decode(plan, job) for text in batch["group"] for plan in json.loads(text)])


def objects(values):
    """A 1-D object array of ``values`` (arrays stay whole, strings keep their length)."""
    values = list(values)
    out = np.empty(len(values), dtype=object)
    for k, value in enumerate(values):
        out[k] = value
    return out


_DEFAULTS = {"pixels": np.zeros(0, np.uint8), "shape": np.zeros(3, np.int64), "error": "", "record": "",
             **dict.fromkeys(METADATA, b"")}
_COLUMNS = ("input", "src", "fs", "output", "dst", "label", "status", "error", "seconds", "record", "pixels",
            "shape", *METADATA)
PLAN_KEYS = ("input", "src", "fs", "output", "dst", "label")   # what a row keeps of its plan


def _columns(rows):
    columns = {key: objects([_DEFAULTS.get(key) if row.get(key) is None else row[key] for row in rows])
               for key in _COLUMNS}
    columns["label"] = columns["label"].astype(np.int64)
    columns["fs"] = columns["fs"].astype(np.int64)
    columns["seconds"] = columns["seconds"].astype(np.float64)
    return columns


def settled(plan, status, seconds, error=None, record=None):
    """``plan`` (a row with ``input`` and ``output``) settled: its manifest row in ``record``."""
    row = manifest_row(plan["input"], status, output=plan["output"] if status != "failed" else None,
                       error=error, seconds=seconds, record=record)
    return {**plan, "status": status, "seconds": seconds, "record": encode_row(row)}


def decode(plan, job, whole=False):
    """The ``pending`` row of ``plan`` (a dict of :data:`PLAN_KEYS`): its decoded pixels
    (flat, with ``shape``) and metadata; or its settled row: a bad input ``failed``, a
    complete protection of it already at its output ``skipped`` (unless ``overwrite``); or,
    for a photo (``plan["photo"]``) of ``job.large_pixels`` or more, its ``large`` row, left
    undecoded. ``whole``: decode it whatever its size (its actor's call)."""
    start = time.perf_counter()
    source = Location(job.filesystems[plan["fs"]], plan["src"], plan["input"])
    output = Location(job.destination, plan["dst"], plan["output"])
    try:
        with local_file(source) as path:
            if not whole and _large(plan, path, job):
                return {**plan, "status": LARGE, "seconds": time.perf_counter() - start}
            decoded = load_input(Task(path, Path(plan["dst"])), job.input_size, job.options).decoded
        existing = None if job.overwrite or not is_file(output) else _existing(output, job)
    except (ImageError, OSError) as exc:
        return settled(plan, "failed", time.perf_counter() - start, error=_reason(exc))
    if existing is not None:
        return _checked(plan, decoded.pixels, existing, job, start)
    metadata = (decoded.icc_profile, decoded.exif, decoded.xmp)
    return {**plan, "status": PENDING, "seconds": time.perf_counter() - start,
            "pixels": _flat(decoded.pixels), "shape": _shape(decoded.pixels), **dict(zip(METADATA, metadata))}


def _large(plan, path, job):
    if not plan["photo"] or job.large_pixels is None:
        return False
    header = read_header(path, job.options.max_pixels)
    return header.width * header.height >= job.large_pixels


def _reason(exc):
    return str(exc) if isinstance(exc, ImageError) else f"cannot read: {exc.strerror or exc}"


def _existing(output, job):
    """The pixels of an output already there, or None when it is incomplete (then redone)."""
    try:
        with local_file(output) as path:
            return read_image(path, job.options.max_pixels).pixels
    except ImageError:
        return None


def _checked(plan, original, existing, job, start):
    """An existing output: ``skipped`` when it is a complete protection of this input."""
    before, after = split(original), split(existing)
    levels = budget_levels(job.eps)
    if existing.shape != original.shape:
        why = (f"{existing.shape[1]}x{existing.shape[0]} pixels, the input has "
               f"{original.shape[1]}x{original.shape[0]}")
    elif np.abs(after[0].astype(np.int16) - before[0]).max(initial=0) > levels:
        why = f"it differs from the input by more than the budget of {levels}/255"
    elif not _same_alpha(before[1], after[1]):
        why = "its alpha channel is not the input's"
    else:
        record = _record(plan, original, existing, NO_LABEL, job)
        return settled(plan, "skipped", time.perf_counter() - start, record=record)
    return settled(plan, "failed", time.perf_counter() - start,
                   error=f"output {plan['output']} exists and is not a protection of this input "
                         f"({why}): use --overwrite to replace it")


def _same_alpha(a, b):
    return (a is None and b is None) or (a is not None and b is not None and np.array_equal(a, b))


def _record(plan, original, pixels, label, job, decoded=None):
    """``protect``'s report entry; ``decoded``: the input's metadata, kept in the output."""
    task = SimpleNamespace(path=plan["input"], output=plan["output"])
    if label == NO_LABEL:   # an output checked, not made: its predicted label is not known
        return image_record(task, original, pixels, None, job.input_size, replace(job.options, classes=None))
    record = image_record(task, original, pixels, int(label), job.input_size, job.options)
    if decoded is not None:
        record["metadata"] = [name for name, value in zip(METADATA, (
            decoded.icc_profile, decoded.exif, decoded.xmp)) if value]
    return record


def write_outputs(batch, job):
    """Write the protected rows of ``batch``; one encoded manifest row per input (``row``)."""
    lines = []
    for k, status in enumerate(batch["status"]):
        if status != PENDING:
            lines.append(batch["record"][k])
            continue
        row = {key: batch[key][k] for key in ("input", "output", "dst", "seconds", *METADATA)}
        pixels = unflatten(batch["protected"][k], batch["shape"][k])
        original = unflatten(batch["pixels"][k], batch["shape"][k]) if job.options.metrics else pixels
        lines.append(_written(row, original, pixels, batch["label"][k], job)["record"])
    return {"row": objects(lines)}


def protect_large(plan, job, protect):
    """Decode, protect and write the file of ``plan`` in this process: its settled row.

    ``protect(pixels, label)`` returns ``(protected pixels, label)``; an :class:`ImageError`
    or ``ValueError`` it raises fails the row. The same steps as the three stages, so the
    same bytes, without the pixels ever leaving the process.
    """
    row = decode(plan, job, whole=True)
    if row["status"] != PENDING:
        return row
    start = time.perf_counter()
    pixels = unflatten(row.pop("pixels"), row["shape"])
    try:
        protected, label = protect(pixels, int(plan["label"]))
    except (ImageError, ValueError) as exc:
        return settled(plan, "failed", row["seconds"] + time.perf_counter() - start, error=str(exc))
    row["seconds"] += time.perf_counter() - start
    return _written(row, pixels, protected, label, job)


def _written(row, original, pixels, label, job):
    """Describe the protected ``pixels`` of ``row``, then write them (last, so that the retry
    of a process killed before the write finds no output to skip); the settled row."""
    start = time.perf_counter()
    plan = {"input": row["input"], "output": row["output"]}
    decoded = Decoded(None, *(row[key] or None for key in METADATA))
    record = _record(plan, original, pixels, label, job, decoded)
    try:
        write_output(Location(job.destination, row["dst"], plan["output"]), pixels, decoded,
                     job.options.format)
    except OSError as exc:
        return settled(plan, "failed", float(row["seconds"]) + time.perf_counter() - start,
                       error=f"cannot write {plan['output']}: {exc.strerror or exc}")
    return settled(plan, "written", float(row["seconds"]) + time.perf_counter() - start, record=record)
