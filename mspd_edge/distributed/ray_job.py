"""``protect`` on Ray Data: a streaming Dataset of files from planning to the manifest.

The driver lists the inputs and plans one output per input (``protect``'s rules: same
relative path with a ``.png`` suffix, collisions and ground-truth labels checked), then
streams groups of files through three operators:

1. ``decode_groups`` tasks (:data:`IO_CPUS` each): read, decode, check existing outputs;
2. :class:`~mspd_edge.distributed.actors.Protector` actors, a fixed pool, each holding one
   backend; they reserve at most ``1 - IO_SHARE`` of the cluster's CPUs, so reading and
   writing always find a CPU (an actor pool holding every CPU starves the read tasks);
3. ``write_outputs`` tasks: describe, encode, write atomically.

A large image (:data:`~mspd_edge.distributed.stages.LARGE_PIXELS` or more) is read,
protected and written by its actor, so its pixels never cross the object store (twice, tens
of MB for a photo); the decode and write tasks pass its row on. Which files those are, the
decode task reads from their headers; files of :data:`PHOTO_FILE_BYTES` or more (perhaps
photos) travel in groups of at most :data:`PHOTO_GROUP_BYTES`, so that the actors share
them evenly. Ray Data's backpressure bounds what is in flight; a killed actor is restarted
and its batch retried (Ray Data's defaults for actor pools: ``max_restarts=-1``,
``max_task_retries=-1``). The driver appends each settled row to the manifest, written when
the job ends; when the ``stop`` event is set (after the rows in flight) or on a
KeyboardInterrupt (at once) it ends the job and writes the rows settled so far and a
``pending`` row for each other input. The job itself (plan, groups, log lines, report) is
:mod:`mspd_edge.job`'s, as for the local engine.
"""
import json
import time
import warnings
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from types import SimpleNamespace

import pyarrow.fs as pafs
import ray

from .. import job as core
from ..backends import BackendOptions, build_backend, get_backend, resolve_backend
from ..backends.registry import resolve_precision
from ..backends.exports import runtime_bundle
from ..io import ImageError, check_writable, output_name, read_header
from ..job import FileOptions, NoInputError, OutputError, log_failed, log_skipped, missing_reason, stderr_log
from ..labels import LabelError, label_source
from ..pipeline import Settings
from .actors import Protector, pack_bundle
from .local import prepare_local_cluster
from .manifest import ManifestWriter, encode_row, manifest_row
from .stages import LARGE_PIXELS, NO_LABEL, JobSpec, decode_groups, write_outputs
from .storage import list_sources, resolve

IO_CPUS = 0.25          # logical CPUs of one decode or write task
IO_SHARE = 0.25         # share of the cluster's CPUs that the actors leave to those tasks
GROUP_BYTES = 8 << 20   # input bytes per decode task (and at most one cascade batch of files)
# Files that may hold LARGE_PIXELS: smooth photos as JPEG q90 took 0.13-0.18 bytes per pixel
# (benchmarks/ray_large_files.py), so a smaller file holds less than 0.5 MP; only larger
# files' headers are read (in the decode tasks).
PHOTO_FILE_BYTES = 64 << 10
# Input bytes per group of such files (results/ray-large-files-groups.json): one ~1 MP file
# per task (0.18-0.7 MB) took 1.2-1.4x as long as 1 MiB groups (Ray's per-task costs), 4 MiB
# groups 0.86-1.09x as long (fewer, longer tasks share a job's tail worse).
PHOTO_GROUP_BYTES = 1 << 20
MANIFEST_NAME = "manifest.jsonl"


@dataclass(frozen=True)
class Workers:
    """The actor pool: how many actors and what each reserves."""

    count: int
    cpus: float
    gpus: float


def plan_workers(cluster, workers=None, threads=None, gpus_per_worker=0.0):
    """The :class:`Workers` for ``cluster`` (``ray.cluster_resources()``).

    Default count: one actor per ``gpus_per_worker`` GPUs, else one per ``threads`` CPUs
    (default 1). Each actor reserves ``threads`` CPUs, at most its share of ``1 - IO_SHARE``
    of the cluster's CPUs.
    """
    cpus, gpus, threads = float(cluster.get("CPU", 0)), float(cluster.get("GPU", 0)), threads or 1
    if cpus < 1:
        raise ValueError(f"the Ray cluster has {cpus:g} CPUs; a job needs at least one")
    if gpus_per_worker:
        if gpus < gpus_per_worker:
            raise ValueError(f"{gpus_per_worker:g} GPUs per worker, and the Ray cluster has {gpus:g}")
        workers = workers or max(1, int(gpus // gpus_per_worker))
    workers = workers or max(1, round(cpus / threads))
    return Workers(workers, min(float(threads), cpus * (1 - IO_SHARE) / workers), float(gpus_per_worker))


@dataclass
class JobResult:
    """What a job did: manifest counts by status, where the manifest is, its settings."""

    counts: dict
    manifest: str
    settings: Settings      # resolved: the seed drawn is here
    files: FileOptions
    workers: Workers
    reverse: bool = False
    interrupted: bool = False   # stopped early: the manifest's ``pending`` rows were not settled
    seconds: float = 0.0

    @property
    def failed(self):
        return self.counts["failed"]


def _models(backend, options, need_classifier):
    """``(input_size/default_eps holder, backbone info, bundle folder or None)`` found on the driver.

    A runtime backend's metadata comes from its export bundle (made once when missing), which
    the actors receive as bytes; the torch backend is loaded on the CPU for its metadata.
    """
    if get_backend(backend).runtime:
        bundle = runtime_bundle(resolve_precision(backend, options), need_classifier)
        holder = SimpleNamespace(input_size=bundle.input_size, default_eps=bundle.eps)
        return holder, bundle.meta("backbone"), bundle.root
    models = build_backend(backend, options.but(device="cpu"), need_classifier=need_classifier)
    return models.backend, models.backbone, None


def protect_dataset(inputs, output, *, backend="auto", options=BackendOptions(), settings=Settings(),
                    files=FileOptions(), reverse=False, labels=None, recursive=False, overwrite=False,
                    manifest=None, workers=None, gpus_per_worker=0.0, filesystem=None, progress=False,
                    log=stderr_log, stop=None, on_start=None, large_pixels=LARGE_PIXELS,
                    photo_file_bytes=PHOTO_FILE_BYTES):
    """Protect (or revert) the images of ``inputs`` into ``output`` on the connected Ray cluster.

    ``inputs``: local files, folders, globs, or URIs of files and prefixes (``s3://...``);
    ``output``: a folder or URI; ``filesystem``: a pyarrow or fsspec file system for both
    instead of URIs. ``manifest``: where the JSON-lines manifest goes (default
    ``output/manifest.jsonl``). ``workers``/``gpus_per_worker``: the actor pool
    (:func:`plan_workers`). ``files``: :class:`mspd_edge.job.FileOptions` (its classes come
    from the models). The other arguments are those of :func:`mspd_edge.protect.protect_files`,
    but ``labels`` may also be a ``--labels`` value ("folder" or a CSV file). Existing outputs
    that are complete protections of their input are skipped (undecodable ones are redone).
    Images of ``large_pixels`` or more (None: none) in files of ``photo_file_bytes`` or more
    are read, protected and written by their actor. ``on_start(sizes, backbone)`` hears the
    ``(width, height)`` of the planned local files (object storage: not read on the driver)
    and the backbone's info (name, dataset, input size) before the work. A set ``stop`` event
    (checked as rows settle) or a KeyboardInterrupt ends the job with a manifest whose
    unsettled inputs are ``pending`` (``JobResult.interrupted``). Returns a :class:`JobResult`;
    raises :class:`~mspd_edge.job.NoInputError` when no input file is found,
    :class:`~mspd_edge.job.OutputError` when a local output folder cannot be written.
    """
    start = time.perf_counter()
    if (labels is None) != (settings.label_mode != "gt"):
        raise ValueError("pass labels exactly when the label mode is 'gt'")
    backend = resolve_backend(backend, options)   # once, here: every actor runs the same one
    holder, backbone, bundle = _models(backend, options, settings.label_mode == "classifier")
    classes = tuple(backbone.classes)
    if isinstance(labels, (str, Path)):
        labels = label_source(str(labels), classes)
    settings = settings.resolved(holder)
    destination = resolve(output, filesystem)
    manifest = resolve(manifest, filesystem) if manifest else destination.child(MANIFEST_NAME)
    sources, missing, unsupported = list_sources(inputs, recursive, destination, filesystem)
    if not sources:
        raise NoInputError("no input images found")
    if destination.local:
        _check_writable(destination)
    files = replace(files, classes=classes)
    writer = ManifestWriter(manifest)
    for item in missing:
        why = missing_reason(item, recursive)
        _settle(writer, encode_row(manifest_row(str(item), "failed", error=why)), log)
    for uri, why in unsupported:
        _settle(writer, encode_row(manifest_row(uri, "skipped", error=why)), log)
    plans, filesystems = _plan(sources, destination, labels, files.format, photo_file_bytes, writer, log)
    if on_start is not None:
        on_start(_local_sizes(plans, filesystems, files.max_pixels), backbone)
    if not ray.is_initialized():
        prepare_local_cluster()
        ray.init()   # a local cluster, as Ray Data would start
    pool = plan_workers(ray.cluster_resources(), workers, options.threads, gpus_per_worker)
    job = JobSpec(filesystems, destination.filesystem, settings.eps, tuple(holder.input_size), files,
                  overwrite, large_pixels)
    protector = dict(backend=backend, options=options.but(threads=options.threads or 1), settings=settings,
                     job=job, reverse=reverse, bundle=None if bundle is None else pack_bundle(bundle),
                     originals=files.metrics)
    with core.progress_bar(progress, reverse, len(plans)) as bar:
        dataset = _dataset(plans, job, protector, pool, settings.batch_size) if plans else None
        pending = _run(dataset, plans, lambda line: _settle(writer, line, log), bar, stop)
    for plan in pending:
        writer.add(encode_row(manifest_row(plan["input"], "pending", output=plan["output"])))
    writer.commit()
    return JobResult(writer.counts, manifest.uri, settings, files, pool, reverse, bool(pending),
                     time.perf_counter() - start)


def _run(dataset, plans, settle, bar, stop):
    """Stream ``dataset``'s rows into ``settle`` (advancing ``bar`` by batch) until done, ``stop``
    is set or Ctrl-C; the plans left unsettled."""
    if dataset is None or (stop is not None and stop.is_set()):
        return list(plans)
    left = {plan["input"]: plan for plan in plans}
    batches = iter(dataset.iter_batches(batch_size=None, batch_format="numpy"))
    try:
        with warnings.catch_warnings():   # Ray Data's note that a small job leaves actors idle
            warnings.filterwarnings("ignore", "The minimum number of concurrent actors")
            for batch in batches:
                for line in batch["row"]:
                    left.pop(settle(line)["input"], None)
                bar.update(len(batch["row"]))
                if stop is not None and stop.is_set():
                    break
    except KeyboardInterrupt:
        pass
    finally:
        batches.close()   # stops the executor now: no task or actor of the job is left
    return list(left.values())


def _settle(writer, line, log):
    """Add the encoded row ``line`` to the manifest, log a failed or skipped one; the row."""
    row = writer.add(line)
    if row["status"] == "failed":
        log_failed(log, row["input"], row["error"])
    elif row["status"] == "skipped":
        log_skipped(log, row["input"],
                    row["error"] or f"{row['output']} exists and is complete (use --overwrite)")
    return row


def _local_sizes(plans, filesystems, max_pixels):
    """``(width, height)`` of the planned local files whose header reads."""
    sizes = []
    for plan in plans:
        if isinstance(filesystems[plan["fs"]], pafs.LocalFileSystem):
            try:
                header = read_header(Path(plan["src"]), max_pixels)
            except ImageError:
                continue
            sizes.append((header.width, header.height))
    return sizes


def _check_writable(destination):
    try:
        check_writable(destination.path)
    except OSError as exc:
        raise OutputError(f"{destination.uri}: cannot write there: {exc.strerror or exc}") from None


def _plan(sources, destination, labels, fmt, photo_file_bytes, writer, log):
    """Plans (JSON-ready dicts) for the sources whose output is free and label resolves."""
    plans, claims, filesystems = [], core.OutputClaims(), []
    for where, relative, size in sources:
        output = destination.child(output_name(relative, fmt).as_posix())
        same_file = where.filesystem.equals(destination.filesystem) and where.path == output.path
        why = claims.conflict(output.path.casefold(), output.uri, where.uri, relative, same_file)
        try:
            label = NO_LABEL if labels is None or why else labels(
                Path(where.path) if where.local else PurePosixPath(where.path))
        except LabelError as exc:
            why = str(exc)
        if why:
            _settle(writer, encode_row(manifest_row(where.uri, "failed", error=why)), log)
            continue
        index = next((i for i, fs in enumerate(filesystems) if fs.equals(where.filesystem)), None)
        if index is None:
            index = len(filesystems)
            filesystems.append(where.filesystem)
        size = size or 0
        plans.append({"input": where.uri, "src": where.path, "fs": index, "output": output.uri,
                      "dst": output.path, "label": label, "bytes": size,
                      "photo": size >= photo_file_bytes})
    return plans, tuple(filesystems)


def group_plans(plans, batch_size):
    """Plans grouped for the decode tasks (:func:`mspd_edge.job.batches`): at most
    ``batch_size`` files and GROUP_BYTES (PHOTO_GROUP_BYTES for photos) each, photos and other
    files apart."""
    return core.batches(plans, batch_size, lambda plan: plan["bytes"],
                        lambda plan: PHOTO_GROUP_BYTES if plan["photo"] else GROUP_BYTES,
                        kind=lambda plan: plan["photo"])


def _dataset(plans, job, protector, pool, batch_size):
    """The job's Dataset: one block per group, each group one call of an actor."""
    groups = group_plans(plans, batch_size)
    items = [{"group": json.dumps(group)} for group in groups]
    dataset = ray.data.from_items(items, override_num_blocks=len(items))
    dataset = dataset.map_batches(decode_groups, batch_size=None, num_cpus=IO_CPUS, fn_kwargs={"job": job})
    dataset = dataset.map_batches(Protector, batch_size=None, num_cpus=pool.cpus,
                                  num_gpus=pool.gpus or None, fn_constructor_kwargs=protector,
                                  compute=ray.data.ActorPoolStrategy(size=pool.count))
    return dataset.map_batches(write_outputs, batch_size=None, num_cpus=IO_CPUS, fn_kwargs={"job": job})


def job_report(result, **job):
    """The JSON-ready report of a job: the settings (seed included), the counts, the manifest."""
    return {**core.report(result.settings, result.reverse, result.files.format, result.counts,
                          result.interrupted, result.seconds, **job),
            "manifest": result.manifest,
            "workers": {"count": result.workers.count, "cpus": result.workers.cpus,
                        "gpus": result.workers.gpus}}
