"""Live counters of a stream: frames in/out/dropped, fps and latency percentiles (thread-safe).

*in*: frames captured (accepted for protection); *dropped*: captured frames discarded because
the protector fell behind (drop-oldest policy); *out*: protected frames the consumer finished
with (written by the camera command); *queued*: the rest, in flight. Latency is from capture to
the consumer being done with the frame (for the command: written). ``fps`` and the live
percentiles cover the last ``window`` seconds; the summary covers the whole run (latencies of
the last :data:`KEEP` frames).
"""
import threading
import time
from collections import deque

import numpy as np

KEEP = 100_000


class StreamStats:
    """Counters shared by the capture, protector and consumer threads of a stream."""

    def __init__(self, window=5.0, clock=time.monotonic):
        self.window, self.clock = window, clock
        self._lock = threading.Lock()
        self.captured = self.dropped = self.protected = self.out = 0
        self.started = self.first = self.last = None
        self._latencies = deque(maxlen=KEEP)
        self._recent = deque()   # (time out, latency) within the window

    def start(self):
        """Mark the start of the stream (the clock of the summary's elapsed time)."""
        with self._lock:
            self.started = self.clock() if self.started is None else self.started

    def add_captured(self):
        with self._lock:
            self.captured += 1

    def add_dropped(self, count=1):
        with self._lock:
            self.dropped += count

    def add_protected(self, count=1):
        with self._lock:
            self.protected += count

    def add_out(self, captured_at, now=None):
        """A frame captured at ``captured_at`` (monotonic) is done."""
        now = self.clock() if now is None else now
        latency = max(0.0, now - captured_at)
        with self._lock:
            self.out += 1
            self.first = now if self.first is None else self.first
            self.last = now
            self._latencies.append(latency)
            self._recent.append((now, latency))
            self._trim(now)

    def _trim(self, now):
        while self._recent and self._recent[0][0] < now - self.window:
            self._recent.popleft()

    def snapshot(self):
        """The live numbers: counts, fps and latency p50/p95 (seconds) over the window."""
        now = self.clock()
        with self._lock:
            self._trim(now)
            recent = [latency for _, latency in self._recent]
            span = min(self.window, now - (self.started if self.started is not None else now))
            counts = {"in": self.captured, "out": self.out, "dropped": self.dropped,
                      "queued": self.captured - self.out - self.dropped}
        fps = len(recent) / span if span > 0 else 0.0
        p50, p95 = _percentiles(recent)
        return {**counts, "fps": fps, "latency_p50": p50, "latency_p95": p95}

    def line(self):
        """One status line: ``in 120  out 100  dropped 3  queued 17  9.8 fps  latency p50 ...``."""
        s = self.snapshot()
        return (f"in {s['in']}  out {s['out']}  dropped {s['dropped']}  queued {s['queued']}  "
                f"{s['fps']:.1f} fps  latency p50 {_ms(s['latency_p50'])} p95 {_ms(s['latency_p95'])}")

    def summary(self):
        """The whole run: counts, elapsed seconds, mean fps and latency statistics (seconds)."""
        now = self.clock()
        with self._lock:
            latencies = list(self._latencies)
            elapsed = now - self.started if self.started is not None else 0.0
            counts = {"in": self.captured, "out": self.out, "dropped": self.dropped}
            steady = self.out > 1 and self.last > self.first
            throughput = (self.out - 1) / (self.last - self.first) if steady else None
        p50, p95 = _percentiles(latencies)
        return {**counts, "elapsed_s": elapsed,
                "fps": counts["out"] / elapsed if elapsed > 0 else None,
                "fps_steady": throughput,
                "latency_s": {"p50": p50, "p95": p95,
                              "max": max(latencies) if latencies else None,
                              "mean": float(np.mean(latencies)) if latencies else None}}


def _percentiles(values):
    if not values:
        return None, None
    p50, p95 = np.percentile(values, [50, 95])
    return float(p50), float(p95)


def _ms(seconds):
    return "-" if seconds is None else f"{seconds * 1000:.0f} ms"


def summary_line(summary):
    """The end-of-run line for stderr."""
    lat = summary["latency_s"]
    fps = "-" if summary["fps"] is None else f"{summary['fps']:.2f}"
    return (f"{summary['out']} frame(s) out of {summary['in']} in ({summary['dropped']} dropped) "
            f"in {summary['elapsed_s']:.1f} s: {fps} fps, latency p50 {_ms(lat['p50'])} "
            f"p95 {_ms(lat['p95'])} max {_ms(lat['max'])}")
