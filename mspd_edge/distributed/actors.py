"""The stateful protector of a distributed job: a Ray Data actor that builds its backend once.

Each actor builds the backend in its constructor (:func:`mspd_edge.backends.build_backend`;
a runtime backend's export bundle arrives as bytes and is unpacked once per node in the
mspd-edge cache, so workers need no shared storage and no torch), then protects the ``pending`` rows of every
batch with :func:`mspd_edge.pipeline.protect_batch`, and reads, protects and writes each
``large`` row's file itself (:func:`~mspd_edge.distributed.stages.protect_large`). As each
image's noise is keyed by its pixels, an output does not depend on which actor, batch or
attempt produced it.
"""
import hashlib
import time
from pathlib import Path

import numpy as np

from ..backends import build_backend
from ..io import ImageError
from ..pipeline import protect_batch
from ..runtime.engine_cache import cache_root
from ..util import atomic_folder
from .stages import LARGE, PENDING, PLAN_KEYS, objects, protect_large, settled, unflatten


def pack_bundle(folder):
    """An export bundle folder as ``{"key": sha256 of its files, "files": {name: bytes}}``."""
    files = {path.name: path.read_bytes() for path in sorted(Path(folder).iterdir()) if path.is_file()}
    digest = hashlib.sha256()
    for name, data in files.items():
        digest.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    return {"key": digest.hexdigest(), "files": files}


def unpack_bundle(bundle):
    """The folder holding ``bundle`` (:func:`pack_bundle`) on this node, under the mspd-edge
    cache (``bundles/<key>``): written once, atomically, and shared by the node's actors."""
    folder = cache_root() / "bundles" / bundle["key"]
    if folder.is_dir():
        return folder
    with atomic_folder(folder, replace=False) as partial:   # another actor of this node may be first
        for name, data in bundle["files"].items():
            (partial / name).write_bytes(data)
    return folder


class Protector:
    """Protects (or reverts) the decoded images of numpy batches; one backend per actor.

    ``backend``/``options``: as :func:`mspd_edge.backends.build_backend`; ``settings``:
    resolved :class:`~mspd_edge.pipeline.Settings`; ``job``: the
    :class:`~mspd_edge.distributed.stages.JobSpec` of the large rows; ``bundle``:
    :func:`pack_bundle` output for a runtime backend (None: ``options.model_dir`` or the
    models' own files); ``originals``: pass the input pixels on to the writer (False without
    metrics: less to move).
    """

    def __init__(self, backend, options, settings, job, reverse=False, bundle=None, originals=True):
        if bundle is not None:
            options = options.but(model_dir=unpack_bundle(bundle))
        need_classifier = settings.label_mode == "classifier"
        self.backend = build_backend(backend, options, need_classifier=need_classifier).backend
        self.settings, self.job, self.reverse, self.originals = settings, job, reverse, originals

    def __call__(self, batch):
        batch = {key: objects(value) if key in ("status", "record", "error") else value
                 for key, value in batch.items()}
        batch["label"] = np.array(batch["label"], np.int64)   # Ray's batches are read-only
        for k in [k for k, status in enumerate(batch["status"]) if status == LARGE]:
            row = protect_large({key: batch[key][k] for key in PLAN_KEYS}, self.job, self._protect_one)
            batch["status"][k], batch["record"][k] = row["status"], row["record"]
        pending = [k for k, status in enumerate(batch["status"]) if status == PENDING]
        protected = objects([np.zeros(0, np.uint8)] * len(batch["status"]))
        start = time.perf_counter()
        for k, result in zip(pending, self._protect(batch, pending)):
            if isinstance(result, str):
                row = settled({"input": batch["input"][k], "output": batch["output"][k]}, "failed",
                              float(batch["seconds"][k]), error=result)
                batch["status"][k], batch["record"][k] = row["status"], row["record"]
            else:
                protected[k] = result[0].reshape(-1)
                batch["label"][k] = result[1]
        share = (time.perf_counter() - start) / max(1, len(pending))
        batch["seconds"] = batch["seconds"] + np.where(batch["status"] == PENDING, share, 0.0)
        batch["protected"] = protected
        if not self.originals:   # the writer needs them for the distances only
            batch["pixels"] = objects([np.zeros(0, np.uint8)] * len(protected))
        return batch

    def _protect_one(self, pixels, label):
        labels = [label] if self.settings.label_mode == "gt" else None
        return protect_batch([pixels], self.backend, self.settings, labels, self.reverse)[0]

    def _protect(self, batch, pending):
        """``(protected pixels, label)`` per pending row, or the error text of a row that failed."""
        images = [unflatten(batch["pixels"][k], batch["shape"][k]) for k in pending]
        labels = None
        if self.settings.label_mode == "gt":
            labels = [int(batch["label"][k]) for k in pending]
        try:
            return protect_batch(images, self.backend, self.settings, labels, self.reverse) if images else []
        except (ImageError, ValueError) as exc:
            if len(images) == 1:
                return [str(exc)]
        return [self._protect(batch, [k])[0] for k in pending]   # isolate the failing image
