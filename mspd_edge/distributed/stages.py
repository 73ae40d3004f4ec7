"""The per-file stages of a distributed job, as Ray Data batch functions (numpy batches).

``decode_groups`` (tasks): read and decode each input as ``protect`` loads it, or settle it:
a bad file becomes a ``failed`` row, a complete output already there a ``skipped`` one.
``write_outputs`` (tasks): write each protected image as ``protect`` does
(:func:`write_output`: :func:`mspd_edge.io.write_image`, the input's metadata kept) and
describe it with ``protect``'s report entry. Between them the actors of
:mod:`~mspd_edge.distributed.actors` protect the ``pending`` rows. Every stage turns a
failure into that row's ``error``, never into a failed job.
"""
import json
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from ..imaging import budget_levels, split
from ..io import Decoded, ImageError, read_image, write_image
from ..protect import FileOptions, Task, _describe, _load
from .manifest import encode_row, manifest_row
from .storage import Location, is_file, local_file, write_atomic

PENDING = "pending"   # decoded, waiting for the protector
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


def write_output(where, pixels, decoded, fmt):
    """Write protected ``pixels`` at ``where`` with the metadata of ``decoded`` (an input's
    :class:`mspd_edge.io.Decoded`), as ``mspd-edge protect`` writes them (``io.write_image``);
    elsewhere than a local folder, the same bytes through :func:`storage.write_atomic`."""
    if where.local:
        write_image(where.path, pixels, fmt, decoded.icc_profile, decoded.exif, decoded.xmp)
        return
    with tempfile.TemporaryDirectory(prefix="mspd-encode-") as folder:
        encoded = Path(folder) / f"output.{fmt}"
        write_image(encoded, pixels, fmt, decoded.icc_profile, decoded.exif, decoded.xmp)
        write_atomic(where, encoded.read_bytes())


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
    rows = [_decode(plan, job) for text in batch["group"] for plan in json.loads(text)]
    return _columns(rows)


def objects(values):
    """A 1-D object array of ``values`` (arrays stay whole, strings keep their length)."""
    values = list(values)
    out = np.empty(len(values), dtype=object)
    for k, value in enumerate(values):
        out[k] = value
    return out


_DEFAULTS = {"pixels": np.zeros(0, np.uint8), "shape": np.zeros(3, np.int64), "error": "", "record": "",
             **dict.fromkeys(METADATA, b"")}
_COLUMNS = ("input", "output", "dst", "label", "status", "error", "seconds", "record", "pixels", "shape",
            *METADATA)


def _columns(rows):
    columns = {key: objects([_DEFAULTS.get(key) if row.get(key) is None else row[key] for row in rows])
               for key in _COLUMNS}
    columns["label"] = columns["label"].astype(np.int64)
    columns["seconds"] = columns["seconds"].astype(np.float64)
    return columns


def settled(plan, status, seconds, error=None, record=None):
    """``plan`` (a row with ``input`` and ``output``) settled: its manifest row in ``record``."""
    row = manifest_row(plan["input"], status, output=plan["output"] if status != "failed" else None,
                       error=error, seconds=seconds, record=record)
    return {**plan, "status": status, "seconds": seconds, "record": encode_row(row)}


def _decode(plan, job):
    start = time.perf_counter()
    source = Location(job.filesystems[plan["fs"]], plan["src"], plan["input"])
    output = Location(job.destination, plan["dst"], plan["output"])
    try:
        with local_file(source) as path:
            decoded = _load(Task(path, Path(plan["dst"])), job.input_size, job.options).decoded
        existing = None if job.overwrite or not is_file(output) else _existing(output, job)
    except (ImageError, OSError) as exc:
        return settled(plan, "failed", time.perf_counter() - start, error=_reason(exc))
    if existing is not None:
        return _checked(plan, decoded.pixels, existing, job, start)
    metadata = (decoded.icc_profile, decoded.exif, decoded.xmp)
    return {**plan, "status": PENDING, "seconds": time.perf_counter() - start,
            "pixels": _flat(decoded.pixels), "shape": _shape(decoded.pixels), **dict(zip(METADATA, metadata))}


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
        return _describe(task, original, pixels, None, job.input_size, replace(job.options, classes=None))
    record = _describe(task, original, pixels, int(label), job.input_size, job.options)
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
        start = time.perf_counter()
        plan = {"input": batch["input"][k], "output": batch["output"][k]}
        pixels = unflatten(batch["protected"][k], batch["shape"][k])
        original = unflatten(batch["pixels"][k], batch["shape"][k]) if job.options.metrics else pixels
        decoded = Decoded(None, *(batch[key][k] or None for key in METADATA))
        try:
            write_output(Location(job.destination, batch["dst"][k], plan["output"]), pixels, decoded,
                         job.options.format)
        except OSError as exc:
            row = settled(plan, "failed", float(batch["seconds"][k]) + time.perf_counter() - start,
                          error=f"cannot write {plan['output']}: {exc.strerror or exc}")
        else:
            record = _record(plan, original, pixels, batch["label"][k], job, decoded)
            row = settled(plan, "written", float(batch["seconds"][k]) + time.perf_counter() - start,
                          record=record)
        lines.append(row["record"])
    return {"row": objects(lines)}
