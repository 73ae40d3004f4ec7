"""``mspd-edge bench``: time backends on the same images (each in a fresh process by default)."""
import json
import subprocess
import sys
from pathlib import Path

import click

from ..backends.specs import split_spec
from ..labels import pipeline_mode
from .args import settings_from
from .common import EXIT_FAILED, write_report
from .compare_args import (checked_specs, compare_args, default_threads, load_image_set,
                           resolved_options, spec_models)

WORKER_PREFIX = "BENCH_JSON "
RATIO = "ratio_vs_torch"   # throughput over torch fp32's in the same run
_SETTING_KEYS = ("n_samples", "epochs", "seed", "labels", "threads", "backbone", "classifier",
                 "precision")


def default_data():
    root = Path(__file__).resolve().parents[2]
    for candidate in (root.parent / "shared" / "data" / "cifar10" / "test.npz", root / "samples"):
        if candidate.exists():
            return str(candidate)
    raise click.UsageError("no default images (CIFAR-10 test split or samples/): pass --data")


def parse_sizes(value):
    try:
        sizes = [int(b) for b in value.split(",") if b.strip()]
    except ValueError:
        sizes = []
    if not sizes or min(sizes) < 1:
        raise click.BadParameter("comma-separated positive integers", param_hint="--batch-sizes")
    return sizes


@click.command("bench")
@compare_args
@click.option("--backends", default="torch,ort", show_default=True,
              help="Comma-separated backends (torch, ort, ort-cuda, ort-tensorrt, trt), each "
                   "optionally @PRECISION (torch@bf16; default --precision); runtime ones may "
                   "add :step or :grad to time one epoch route.")
@click.option("--batch-sizes", default="1,16", show_default=True, help="Comma-separated batch sizes.")
@click.option("--images", "count", type=click.IntRange(min=1), default=32, show_default=True,
              help="Images per batch size (cycled from --data when it has fewer).")
@click.option("--data", help="Images: a CIFAR-style .npz, a folder or a glob.  [default: "
                             "../shared/data/cifar10/test.npz beside the repo, else samples/]")
@click.option("--warmup", type=click.IntRange(min=0), default=1, show_default=True,
              help="Untimed batches first, per batch size.")
@click.option("--rounds", type=click.IntRange(min=1), default=1, show_default=True,
              help="Time every backend this many times, rounds interleaved; report the median "
                   "round and the median of the per-round ratios (for a shared machine).")
@click.option("--isolate/--no-isolate", default=True, show_default=True,
              help="Time each backend in a fresh process (own peak memory and thread pools).")
@click.option("--copies-per-call", type=click.IntRange(min=1),
              help="Noisy copies per engine call for the runtime backends (a tuning knob: "
                   "small calls stay in the CPU cache).  [default: 20 on the CPU, no cap on GPUs]")
@click.option("--worker", hidden=True)
def bench_command(backends, batch_sizes, count, data, warmup, rounds, isolate, copies_per_call, worker, **options):
    """Time backends on the same images: throughput, latency and peak memory.

    Every backend protects the same images with the same seed and settings, after a warm-up;
    prints a markdown table with each backend's throughput relative to torch fp32 measured in
    the same run, and writes the records to --json (keys backend, precision, batch_size,
    images_per_s, p50_ms, p95_ms, peak_rss_mb, ms_per_image, ratio_vs_torch, ...).
    Time precisions side by side with specs like torch@fp32,torch@bf16,ort@int8.
    """
    from ..measure.bench import combine_rounds, machine, markdown_table

    specs = checked_specs(worker or backends)
    sizes = parse_sizes(batch_sizes)
    data = data or default_data()
    options["threads"] = options["threads"] or default_threads()
    job = dict(sizes=sizes, count=count, data=data, warmup=warmup, copies_per_call=copies_per_call)
    need_classifier = options["labels"] == "classifier"
    if worker:
        backend_opts = resolved_options([], options, need_classifier).but(copies_per_call=copies_per_call)
        click.echo(WORKER_PREFIX + json.dumps(_measure(specs[0], backend_opts, options, job)))
        return
    backend_opts = resolved_options(specs, options, need_classifier).but(copies_per_call=copies_per_call)
    rounds_records, failures = [], []
    for round_index in range(rounds):
        records = _round(specs, backend_opts, options, job, isolate, failures, round_index, rounds)
        rounds_records.append(records)
        if failures:
            break
    records = combine_rounds(rounds_records, RATIO)
    click.echo(markdown_table(records, "torch fp32", key=RATIO))
    if rounds > 1:
        click.echo("\n".join(_round_ratios(records)))
    if options["json_path"]:
        settings = {k: options[k] for k in _SETTING_KEYS}
        settings.update(images=count, data=data, batch_sizes=sizes, warmup=warmup, rounds=rounds,
                        isolate=isolate,
                        copies_per_call=copies_per_call,
                        model_dir=None if backend_opts.model_dir is None else str(backend_opts.model_dir))
        write_report(options["json_path"], {"machine": machine(), "settings": settings,
                                            "records": records, "failures": failures})
    click.get_current_context().exit(EXIT_FAILED if failures else 0)


def _round(specs, backend_opts, options, job, isolate, failures, index, rounds):
    """One round: every spec timed once, ratios to torch fp32 within the round."""
    from ..measure.bench import with_ratios

    records = []
    for spec in specs:
        click.echo(f"bench: {spec} ..." + (f" (round {index + 1}/{rounds})" if rounds > 1 else ""),
                   err=True)
        try:
            records += (_worker(spec, backend_opts, options, job) if isolate
                        else _measure(spec, backend_opts, options, job))
        except click.ClickException as exc:
            failures.append({"backend": spec, "error": exc.format_message()})
            click.echo(f"error: {spec}: {exc.format_message()}", err=True)
    reference = next((r["backend"] for r in records
                      if split_spec(r["backend"])[0] == "torch" and r["precision"] == "fp32"), None)
    return with_ratios(records, reference, key=RATIO) if reference else records


def _round_ratios(records):
    """A line per record: its ratio to torch fp32 in each round."""
    return [f"{r['backend']} batch {r['batch_size']}: rounds "
            + " ".join(f"{v:.2f}x" for v in r[f"{RATIO}_rounds"])
            for r in records if f"{RATIO}_rounds" in r]


def _measure(spec, backend_opts, options, job):
    from ..measure.bench import time_backend

    backend = spec_models(spec, backend_opts, options["labels"] == "classifier").backend
    images = load_image_set(job["data"], job["count"])
    settings = settings_from(options, pipeline_mode(options["labels"]))
    return time_backend(backend, images, settings.resolved(backend), job["sizes"], name=spec,
                        warmup=job["warmup"], extra={"threads": options["threads"]})


def _worker(spec, backend_opts, options, job):
    """Run one backend's measurement in a fresh ``python -m mspd_edge.cli bench --worker``."""
    argv = [sys.executable, "-m", "mspd_edge.cli", "bench", "--worker", spec,
            "--batch-sizes", ",".join(map(str, job["sizes"])), "--images", str(job["count"]),
            "--data", job["data"], "--warmup", str(job["warmup"]), "--threads", str(options["threads"]),
            "--n-samples", str(options["n_samples"]), "--epochs", options["epochs"],
            "--seed", str(options["seed"]), "--labels", options["labels"],
            "--backbone", options["backbone"], "--device", options["device"],
            "--precision", options["precision"]]
    for flag, value in (("--classifier", options["classifier"]), ("--eps", options["eps"]),
                        ("--copies-per-call", job["copies_per_call"])):
        if value:
            argv += [flag, str(value)]
    if backend_opts.model_dir is not None and not spec.startswith("torch"):
        argv += ["--model-dir", str(backend_opts.model_dir)]
    done = subprocess.run(argv, capture_output=True, text=True)
    for line in done.stdout.splitlines():
        if line.startswith(WORKER_PREFIX):
            return json.loads(line[len(WORKER_PREFIX):])
    tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
    raise click.ClickException(f"the benchmark process failed (exit {done.returncode}): {tail}")
