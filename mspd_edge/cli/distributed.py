"""``--engine ray`` of ``mspd-edge protect`` and ``revert``: the same job on a Ray cluster.

The options live here and ``cli/protect.py`` hands the job over with one call,
:func:`run_on_engine`; :mod:`mspd_edge.distributed` does the work (imported, with Ray, only
when the engine runs).
"""
import logging
import os
import sys
from contextlib import contextmanager
from pathlib import Path

import click
from ..distributed.local import prepare_local_cluster
from ..distributed.uris import is_uri
from ..util import first_line
from .args import apply, backend_choice
from .common import OneLineUsageError, fail
from .job import finish, job_settings, logger, start_notes

ENGINES = ("local", "ray")
RAY_ONLY = ("address", "workers", "gpus_per_worker", "manifest")
RAY_INSTALL = "pip install 'mspd-edge[distributed]'"


class OutputFolder(click.ParamType):
    """A local folder (a :class:`~pathlib.Path`) or an object-storage URI (kept as text)."""

    name = "folder"

    def convert(self, value, param, ctx):
        if is_uri(value):
            return str(value)
        return click.Path(file_okay=False, path_type=Path).convert(value, param, ctx)


def engine_args():
    """``--engine --address --workers --gpus-per-worker --manifest --metrics/--no-metrics``."""
    return apply([
        click.option("--engine", type=click.Choice(ENGINES), default="local", show_default=True,
                     help="local: this process. ray: a Ray Data job (streaming decode tasks, a pool "
                          "of actors holding the backend, write tasks) on a local or remote Ray "
                          "cluster; INPUT and -o may then be object-storage URIs (s3://bucket/prefix), "
                          "the same --backend auto as local (identical bytes), and a manifest row is "
                          "written per input (the inputs a Ctrl-C leaves: pending)."),
        click.option("--address", help="[ray] The cluster to join (host:6379, ray://host:10001, auto).  "
                                       "[default: $RAY_ADDRESS, else a cluster on this machine]"),
        click.option("--workers", type=click.IntRange(min=1),
                     help="[ray] Protector actors.  [default: one per --gpus-per-worker GPUs, "
                          "else one per --threads CPUs]"),
        click.option("--gpus-per-worker", type=click.FloatRange(0, min_open=True),
                     help="[ray] GPUs each actor reserves (fractions share a GPU); implies --device cuda."),
        click.option("--manifest", metavar="FILE|URI",
                     help="[ray] The JSON-lines manifest, one row per input.  "
                          "[default: OUTDIR/manifest.jsonl]"),
        click.option("--metrics/--no-metrics", default=True, show_default=True,
                     help="[ray] L-inf, L2, PSNR and SSIM in the manifest (SSIM takes seconds on "
                          "large photos)."),
    ])


def run_on_engine(options, reverse, stop):
    """Run the job on ``--engine ray`` until done or ``stop`` is set: its exit status; None
    (nothing done) for the local engine."""
    if options["engine"] == "local":
        for name in RAY_ONLY:
            if options[name] is not None:
                raise OneLineUsageError(f"--{name.replace('_', '-')} goes with --engine ray")
        for item in (*options["inputs"], options["outdir"]):
            if is_uri(item):
                raise OneLineUsageError(f"{item}: object storage needs --engine ray")
        return None
    if options["device"] == "cuda" and not options["gpus_per_worker"]:
        raise OneLineUsageError("--device cuda with --engine ray needs --gpus-per-worker "
                                "(Ray shows an actor only the GPUs it reserves)")
    if options["address"] is None and not os.environ.get("RAY_ADDRESS"):
        prepare_local_cluster()   # before ray loads
    try:
        import ray

        from ..distributed.ray_job import job_report, protect_dataset
    except ImportError as exc:
        raise OneLineUsageError(f"--engine ray needs {exc.name} ({RAY_INSTALL})") from None
    _connect(ray, options["address"])
    try:
        result = _protect(options, reverse, protect_dataset, stop)
    finally:
        ray.shutdown()
    report = job_report(result, **job_settings(options, engine="ray", backend=_backend(options),
                                               address=options["address"], workers=options["workers"],
                                               gpus_per_worker=options["gpus_per_worker"]))
    return finish(options, result, report, where=f" on {result.workers.count} Ray worker(s)",
                  after=f"; manifest {result.manifest}", kept="complete outputs are checked and kept")


def _connect(ray, address):
    from ray.data import DataContext

    # Ray's C++ core logs at error level, on every job, that Ray Data's actors take constructor
    # arguments from the object store while they may restart (github.com/ray-project/ray/issues/53727):
    # its own design, not the job's error. Its level comes from the environment, read (and
    # announced on stderr, whatever the level) as ray.init starts this process's core worker.
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
    try:
        with _stderr_silenced():
            ray.init(address=address, include_dashboard=False, logging_level=logging.ERROR,
                     log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise OneLineUsageError(f"--address {address}: cannot join the Ray cluster: "
                                f"{first_line(exc)}") from None
    context = DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.ERROR)


@contextmanager
def _stderr_silenced():
    """File descriptor 2 on the null device inside the block (what C++ code writes there too)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _protect(options, reverse, protect_dataset, stop):
    from ..backends import BackendError
    from ..io import ImageError
    from ..labels import LabelError, pipeline_mode
    from ..job import FileOptions, NoInputError, OutputError
    from .args import backend_options, settings_from

    gpus = options["gpus_per_worker"] or 0.0
    backend_opts = backend_options(options, **({"device": "cuda"} if gpus else {}))
    labels = None if pipeline_mode(options["labels"]) != "gt" else options["labels"]
    settings = settings_from(options, pipeline_mode(options["labels"]), options["batch_size"])
    try:
        return protect_dataset(options["inputs"], options["outdir"], backend=_backend(options),
                               options=backend_opts, settings=settings, reverse=reverse, labels=labels,
                               recursive=options["recursive"], overwrite=options["overwrite"],
                               manifest=options["manifest"], files=FileOptions(options["fmt"],
                               options["max_pixels"], options["metrics"]), workers=options["workers"],
                               gpus_per_worker=gpus, progress=not options["quiet"],
                               log=logger(options["quiet"]), stop=stop,
                               on_start=start_notes(options["quiet"], options["eps"]))
    except NoInputError as exc:
        raise click.UsageError(str(exc)) from None
    except LabelError as exc:
        raise click.BadParameter(str(exc), param_hint="--labels") from None
    except (BackendError, OutputError, ValueError) as exc:
        raise OneLineUsageError(str(exc)) from None
    except (ImageError, OSError) as exc:
        fail(str(exc))
    except Exception as exc:   # a Ray error: the job itself failed (not one input)
        if type(exc).__module__.split(".")[0] != "ray":
            raise
        fail(f"the Ray job failed: {_last_line(exc)}")


def _last_line(exc):
    """The last line of a Ray error: its cause (the first lines are Ray's own frames)."""
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return lines[-1].strip() if lines else type(exc).__name__


def _backend(options):
    """``--backend``, ``auto`` resolved on the driver as the local engine resolves it (so both
    write the same bytes); every actor runs that backend."""
    return backend_choice(options)
