"""Throughput and latency of a backend on real images: the measuring part of ``mspd-edge bench``.

:func:`time_backend` protects the same images with one backend at each batch size, after a
warm-up batch (sessions made, engines built, caches filled), and returns one record per batch
size: images per second over the whole pass, the median and 95th-percentile latency of one
batch call (labels pass, cascade and 8-bit output, as ``protect_batch`` does them), the
milliseconds per image and the process's peak resident memory. :func:`with_ratios` adds
``ratio_vs_<reference>`` (throughput relative to the reference measured in the same run) and
:func:`markdown_table` prints them. The CLI runs each backend in a fresh process by default,
so each peak-memory figure and thread pool is its own.
"""
import platform
import resource
import sys
import time
from dataclasses import replace

import numpy as np

from ..pipeline import protect_batch

RECORD_KEYS = ("backend", "batch_size", "images_per_s", "p50_ms", "p95_ms", "peak_rss_mb")


def peak_rss_mb():
    """Peak resident memory of this process so far, in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (2**20 if sys.platform == "darwin" else 2**10), 1)


def _pool(images, count):
    """``count`` images, cycling through ``images``."""
    return [images[i % len(images)] for i in range(count)]


def time_backend(backend, images, settings, batch_sizes, *, name=None, warmup=1, extra=None):
    """Records (see the module docstring) for ``backend`` on uint8 ``images``.

    ``settings``: resolved pipeline settings (fixed seed); each batch size times
    ``max(len(images), batch_size)`` images (cycled), in job order.
    """
    records = []
    for b in batch_sizes:
        s = replace(settings, batch_size=b)
        pool = _pool(images, max(len(images), b))
        for _ in range(warmup):
            protect_batch(pool[:b], backend, s)
        latencies = []
        start = time.perf_counter()
        for first in range(0, len(pool), b):
            batch = pool[first:first + b]
            t = time.perf_counter()
            protect_batch(batch, backend, s)
            latencies.append(time.perf_counter() - t)
        total = time.perf_counter() - start
        ms = np.array(latencies) * 1000
        records.append({
            "backend": name or backend.name,
            "batch_size": b, "images": len(pool),
            "images_per_s": round(len(pool) / total, 3),
            "p50_ms": round(float(np.percentile(ms, 50)), 2),
            "p95_ms": round(float(np.percentile(ms, 95)), 2),
            "ms_per_image": round(1000 * total / len(pool), 2),
            "peak_rss_mb": peak_rss_mb(),
            "n_samples": settings.n_samples, "epochs": settings.epochs,
            "route": backend.route, "copies_per_call": backend.copies_per_call,
            "precision": backend.precision, **(extra or {}),
        })
    return records


def with_ratios(records, reference="torch", key=None):
    """Add ``key`` (default ``ratio_vs_<reference>``): throughput over that of backend
    ``reference`` at the same batch size."""
    base = {r["batch_size"]: r["images_per_s"] for r in records if r["backend"] == reference}
    key = key or f"ratio_vs_{reference}"
    for r in records:
        if r["batch_size"] in base and base[r["batch_size"]] > 0:
            r[key] = round(r["images_per_s"] / base[r["batch_size"]], 3)
    return records


def combine_rounds(rounds, key):
    """One record per backend and batch size from the records of interleaved ``rounds``.

    Each is the round with the median throughput (the lower one of an even count); ``key``
    (the ratio of :func:`with_ratios`, computed within each round) becomes the median of the
    per-round ratios, so a slow spell of a shared machine that hits one round does not skew it.
    Every round's throughput and ratio are kept (``images_per_s_rounds``, ``<key>_rounds``).
    """
    groups = {}
    for records in rounds:
        for r in records:
            groups.setdefault((r["backend"], r["batch_size"]), []).append(r)
    combined = []
    for group in groups.values():
        ordered = sorted(group, key=lambda r: r["images_per_s"])
        record = dict(ordered[(len(ordered) - 1) // 2], rounds=len(group),
                      images_per_s_rounds=[r["images_per_s"] for r in group])
        ratios = [r[key] for r in group if key in r]
        if ratios:
            record[key] = round(float(np.median(ratios)), 3)
            record[f"{key}_rounds"] = ratios
        combined.append(record)
    return combined


def markdown_table(records, reference="torch", key=None):
    """The records as a markdown table; the last column is ``key`` (see :func:`with_ratios`)."""
    key = key or f"ratio_vs_{reference}"
    rows = [f"| backend | precision | batch | images/s | p50 ms/batch | p95 ms/batch | ms/image "
            f"| peak RSS MiB | vs {reference} |", "|---|---|---|---|---|---|---|---|---|"]
    for r in records:
        ratio = f"{r[key]:.2f}x" if key in r else "n/a"
        rows.append(f"| {r['backend']} | {r.get('precision', 'fp32')} | {r['batch_size']} | {r['images_per_s']:.2f} | "
                    f"{r['p50_ms']:.1f} | {r['p95_ms']:.1f} | {r['ms_per_image']:.1f} | "
                    f"{r['peak_rss_mb']:.0f} | {ratio} |")
    return "\n".join(rows)


def machine():
    """A short description of this machine for the JSON report."""
    import os

    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(), "python": platform.python_version()}
