"""The camera command's stream loop: protect, write, report, and stop cleanly on signals."""
import json
import os
import sys
import threading
from itertools import islice

import click
import cv2

from .. import __version__
from ..camera.sinks import SinkError
from ..camera.sources import SourceError
from ..camera.stats import StreamStats, summary_line
from ..camera.stream import protect_stream
from ..imaging import budget_levels
from ..util import write_atomic
from .common import EXIT_ABORTED, EXIT_FAILED

STOP_MESSAGE = ("stopping: protecting and writing the frames already captured "
                "(press Ctrl-C again to abort)")


def run_stream(options, source, sinks, models, settings, drop, interrupts):
    """Protect the frames of ``source`` into ``sinks``; the exit status."""
    stats = StreamStats()
    frames = source if options["max_frames"] is None else islice(source, options["max_frames"])
    stream = protect_stream(frames, models.backend, settings, drop=drop,
                            queue_size=options["queue_size"], stats=stats)
    interrupts.attach(stream)
    printer = _StatsPrinter(stats, 0 if options["quiet"] else options["stats_interval"])
    ended, error, linf, resized = "end of stream", None, 0, 0
    input_hw = tuple(models.backend.input_size[1:])
    printer.start()
    try:
        for frame in stream:
            for sink in sinks:
                sink.write(frame)
            linf = max(linf, _linf(frame.image, frame.original))
            resized += frame.image.shape[:2] != input_hw
            if any(sink.quit_requested for sink in sinks) and not stream.stopping:
                stream.stop()
                ended = "window closed"
        if interrupts.aborted:
            ended = "aborted"
        elif interrupts.count:
            ended = "interrupted"
        elif options["max_frames"] is not None and stats.captured >= options["max_frames"]:
            ended = "max frames"
    except SourceError as exc:
        ended, error = "source error", str(exc)
    except SinkError as exc:
        ended, error = "output error", str(exc)
    except ValueError as exc:   # a frame the backend cannot take (channels, depth)
        ended, error = "protection error", str(exc)
    finally:
        printer.stop()
        stream.close()
    if not stream.capture_finished(timeout=1.0):
        source.release_on_close = False   # a read still blocks: let the process exit reclaim it
    interrupts.threads_left = not stream.finished(timeout=0.0 if ended == "aborted" else 1.0)
    summary = stats.summary()
    if error is None and source.errors:
        error = f"{len(source.errors)} image(s) of the folder could not be read"
    report = _report(options, source, sinks, models, settings, drop, stream, summary, ended,
                     error, linf)
    if options["report"]:
        try:
            write_atomic(options["report"], (json.dumps(report, indent=2) + "\n").encode())
        except OSError as exc:
            click.echo(f"error: {options['report']}: cannot write the report: "
                       f"{exc.strerror or exc}", err=True)
            error = error or "report not written"
    _finish_messages(options, ended, error, summary, settings, sinks, linf, resized, input_hw)
    if ended == "aborted":
        return EXIT_ABORTED
    return EXIT_FAILED if error is not None else 0


def _linf(after, before):
    if after.shape != before.shape:
        return 255
    return int(cv2.absdiff(after, before).max()) if after.size else 0


def _report(options, source, sinks, models, settings, drop, stream, summary, ended, error, linf):
    classifier = models.classifier
    return {
        "version": __version__, "command": "camera",
        "source": {**source.describe(), "errors": source.errors},
        "outputs": [sink.describe() for sink in sinks],
        "settings": {"eps": settings.eps, "eps_255": budget_levels(settings.eps),
                     "n_samples": settings.n_samples, "lr": settings.lr, "epochs": settings.epochs,
                     "seed": settings.seed, "label_mode": settings.label_mode,
                     "batch_size": settings.batch_size, "backend": options["backend"],
                     "device": options["device"], "backbone": models.backbone.name,
                     "precision": models.backend.precision,
                     "classifier": None if classifier is None else classifier.name,
                     "input_size": list(models.backend.input_size), "drop": drop,
                     "queue_size": stream.queue_size, "max_frames": options["max_frames"]},
        "counts": {"in": summary["in"], "out": summary["out"], "dropped": summary["dropped"],
                   "failed": len(source.errors)},
        "stats": summary, "linf_255_max": linf, "ended": ended, "error": error}


def _finish_messages(options, ended, error, summary, settings, sinks, linf, resized, input_hw):
    if error is not None:
        click.echo(f"error: {error}", err=True)
    if ended == "aborted":
        click.echo(f"aborted: {summary['out']} frame(s) written; the frames in flight were lost",
                   err=True)
    if options["quiet"]:
        return
    click.echo(f"{ended}: {summary_line(summary)}; seed {settings.seed}", err=True)
    for sink in sinks:
        described = sink.describe()
        if "path" in described:
            click.echo(f"wrote {described['written']} frame(s) to {described['path']} "
                       f"(largest change {linf}/255, budget {budget_levels(settings.eps)}/255)",
                       err=True)
    if resized:
        h, w = input_hw
        click.echo(f"note: {resized} frame(s) not {w}x{h}: the perturbation was computed at "
                   f"{w}x{h} and resized to each frame", err=True)


def sink_name(sink):
    described = sink.describe()
    return described.get("path", described["kind"])


class Interrupts:
    """SIGINT/SIGTERM (:meth:`handle`): the first stops the stream (drain); the second closes it
    (frames in flight lost, the frame being written finished: no partial file is left), or
    raises KeyboardInterrupt while no stream runs yet (models loading)."""

    def __init__(self):
        self.count, self.stream = 0, None
        self.aborted = self.threads_left = False

    def attach(self, stream):
        self.stream = stream
        if self.count:
            stream.stop()

    def handle(self, signum, frame):
        self.count += 1
        if self.count > 1:
            if self.stream is None:
                raise KeyboardInterrupt
            self.aborted = True
            self.stream.close()
            return
        if self.stream is not None:
            self.stream.stop()
        os.write(2, f"\n{STOP_MESSAGE}\n".encode())


class _StatsPrinter:
    """A thread writing ``stats.line()`` to stderr every ``interval`` seconds (0: never)."""

    def __init__(self, stats, interval):
        self.stats, self.interval = stats, interval
        self.tty = sys.stderr.isatty()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="mspd-stats", daemon=True)
        self._printed = False

    def start(self):
        if self.interval > 0:
            self._thread.start()

    def _loop(self):
        while not self._done.wait(self.interval):
            line = self.stats.line()
            sys.stderr.write(f"\r{line}\x1b[K" if self.tty else f"{line}\n")
            sys.stderr.flush()
            self._printed = True

    def stop(self):
        self._done.set()
        if self._thread.is_alive():
            self._thread.join(1.0)
        if self.tty and self._printed:
            sys.stderr.write("\n")
