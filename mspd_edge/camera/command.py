"""``mspd-edge camera``: protect a camera or any video source, frame by frame, as it is captured.

The click command :data:`camera_command` (registered in the ``mspd-edge`` group by
``mspd_edge.cli``; also ``python -m mspd_edge.camera``). Backends come from
``mspd_edge.cli.BACKENDS``, the registry of the protect command, so every backend it offers
works here too.
"""
import json
import os
import signal
import sys
import threading
from itertools import islice
from pathlib import Path

import click
import cv2

from .. import __version__, defaults
from ..imaging import budget_levels
from ..io import write_atomic
from ..pipeline import Settings, check_epochs
from .sinks import (DEFAULT_CODEC, LOSSY_WARNING, PngFolderSink, SinkError, VideoSink, WindowSink,
                    is_video_path)
from .sources import SourceError, open_source
from .stats import StreamStats, summary_line
from .stream import protect_stream

DEVICES = ("cpu", "cuda")
LABEL_MODES = ("classifier", "couple")
DEFAULT_VIDEO_FPS = 30.0
EXIT_FAILED = 1
EXIT_ABORTED = 130
STOP_MESSAGE = ("stopping: protecting and writing the frames already captured "
                "(press Ctrl-C again to abort)")


def _check_epochs(ctx, param, value):
    try:
        return check_epochs(value)
    except ValueError:
        raise click.BadParameter("a non-empty string of F and B, e.g. FB") from None


def _parse_size(ctx, param, value):
    if value is None:
        return None
    try:
        width, height = (int(v) for v in value.lower().split("x"))
        if width > 0 and height > 0:
            return width, height
    except ValueError:
        pass
    raise click.BadParameter(f"{value!r} is not WIDTHxHEIGHT, e.g. 640x480")


HELP = """Protect a camera or video stream frame by frame, before it leaves the device.

\b
SRC (--source):
  0, 1, ...          a camera by device index (V4L2 on Linux)
  csi, csi:N         a Jetson CSI camera (GStreamer nvarguscamerasrc template)
  rtsp://... http://...   a network stream (FFmpeg)
  'PIPELINE ! appsink'    a GStreamer pipeline (needs OpenCV built with GStreamer)
  FILE               a video file
  FOLDER             the images of a folder, sorted by name

\b
DST (--output):
  FOLDER             PNG frames frame_000000.png, ... (by source frame index) and timestamps.csv
  FILE.mkv|.avi      a lossless FFV1 video (see --codec) and FILE.mkv.timestamps.csv

Each output frame has the size and channels of its source frame and every value within --eps
of it (8-bit rounding included). Frames of another size than the model's input (32x32 for
CIFAR-10 models) are resized to it for the gradients; the perturbation is resized back.

Live sources (cameras, streams, pipelines) drop the oldest waiting frames when the protector
falls behind (--drop); files and folders never drop unless --drop is given. Stats go to stderr
every --stats-interval seconds.

Ctrl-C (or SIGTERM) stops capturing: the frames already captured are protected and written,
then the command exits with status 0. A second Ctrl-C aborts at once (exit status 130; frames
are written atomically, so no partial PNG is left). Exit status 1: the source cannot be opened,
disconnects, or an image of a folder or an output fails; what was written stays.
"""


@click.command("camera", help=HELP, context_settings={"help_option_names": ["-h", "--help"],
                                                      "max_content_width": 100})
@click.option("-s", "--source", required=True, metavar="SRC", help="What to protect (see above).")
@click.option("-o", "--output", type=click.Path(path_type=Path), metavar="DST",
              help="Where protected frames go (see above).")
@click.option("--show", is_flag=True, help="Show protected frames in a window (q or Esc stops; needs "
                                           "OpenCV with a GUI).")
@click.option("--codec", default=DEFAULT_CODEC, show_default=True, metavar="FOURCC",
              help="Video codec of a video DST. Lossless: FFV1, HFYU, PNG; any other needs --lossy.")
@click.option("--lossy", is_flag=True, help="Allow a lossy --codec: it weakens the protection.")
@click.option("--fps", type=click.FloatRange(0, min_open=True),
              help="Frame rate of a video DST.  [default: the source's, else 30]")
@click.option("--drop/--no-drop", default=None,
              help="When the protector falls behind, drop the oldest waiting frames, or make the "
                   "capture wait.  [default: --drop for live sources, --no-drop for files/folders]")
@click.option("--queue", "queue_size", type=click.IntRange(min=1), metavar="N",
              help="Frames waiting for protection at most.  [default: the batch size with "
                   "--drop, twice that with --no-drop]")
@click.option("--max-frames", type=click.IntRange(min=1), metavar="N",
              help="Stop after N frames captured.")
@click.option("--capture-size", callback=_parse_size, metavar="WxH",
              help="Resolution asked of a camera (device or csi), e.g. 640x480.")
@click.option("--capture-fps", type=click.FloatRange(0, min_open=True),
              help="Frame rate asked of a camera (device or csi).")
@click.option("--eps", type=click.FloatRange(0, 255, min_open=True),
              help="L-inf budget in 1/255 units.  [default: the backbone's, 8 for CIFAR-10]")
@click.option("--n-samples", type=click.IntRange(min=1), default=defaults.N_SAMPLES,
              show_default=True, help="Noisy copies per smoothing step.")
@click.option("--lr", type=click.FloatRange(0, min_open=True), default=defaults.LR,
              show_default=True, help="Epoch learning rate.")
@click.option("--epochs", default=defaults.EPOCHS, show_default=True, callback=_check_epochs,
              help="Epoch sequence, F forward and B backward.")
@click.option("--seed", type=click.IntRange(min=0),
              help="Noise seed; frame k uses the stream of image k.  [default: a fresh one, "
                   "printed and in the report]")
@click.option("--labels", type=click.Choice(LABEL_MODES), default="classifier", show_default=True,
              help="Label per frame: the classifier's prediction, or the backbone's (couple).")
@click.option("--backbone", default=defaults.BACKBONE, show_default=True,
              help="Backbone whose gradients protect: a zoo name or a checkpoint file.")
@click.option("--classifier", help="Label classifier (--labels classifier): a zoo name or a "
                                   "checkpoint file.  [default: the backbone's pair]")
@click.option("--batch-size", type=click.IntRange(min=1),
              help="Frames per cascade call at most.  [default: automatic]")
@click.option("--device", type=click.Choice(DEVICES), default=DEVICES[0], show_default=True,
              help="Where the models run.")
@click.option("--backend", default="torch", show_default=True,
              help="Implementation of the cascade (one of the protect command's backends).")
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE.json",
              help="Write a JSON report: source, outputs, settings (seed included), counts, fps, "
                   "latency, how the stream ended.")
@click.option("--stats-interval", type=click.FloatRange(min=0), default=1.0, show_default=True,
              metavar="SECONDS", help="Seconds between live stats lines on stderr (0: none).")
@click.option("--overwrite", is_flag=True,
              help="Replace an existing video, or delete the frame_*.png of an earlier run in "
                   "the folder first.")
@click.option("-q", "--quiet", is_flag=True, help="Print errors and warnings only.")
def camera_command(**options):
    ctx = click.get_current_context()
    if options["output"] is None and not options["show"]:
        raise click.UsageError("give --output DST, --show, or both")
    interrupts = _Interrupts()
    interrupts.install()
    try:
        status = _run(options, interrupts)
    except KeyboardInterrupt:   # a second Ctrl-C before the stream started (e.g. loading models)
        click.echo("aborted", err=True)
        status = EXIT_ABORTED
    finally:
        interrupts.restore()
    if status == EXIT_ABORTED and interrupts.threads_left:
        # A protector still inside the backend would crash the interpreter's shutdown
        # (torch's threads): outputs are closed and flushed, so leave at once.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    ctx.exit(status)


def _run(options, interrupts):
    quiet = options["quiet"]
    try:
        source = open_source(options["source"], options["capture_size"], options["capture_fps"])
    except SourceError as exc:
        return _error(exc)
    source.on_error = lambda item: click.echo(f"error: {item['input']}: {item['error']}", err=True)
    sinks = []
    try:
        models = _models(options)
        settings = Settings(eps=None if options["eps"] is None else options["eps"] / 255,
                            n_samples=options["n_samples"], lr=options["lr"],
                            epochs=options["epochs"], seed=options["seed"],
                            label_mode=options["labels"], batch_size=options["batch_size"])
        settings = settings.resolved(models.backend)
        sinks = _sinks(options, source)
        drop = source.live if options["drop"] is None else options["drop"]
        if not quiet:
            _note(f"protecting {source.kind} {options['source']} -> "
                  f"{', '.join(_sink_name(s) for s in sinks)}; seed {settings.seed}; "
                  f"{'drop' if drop else 'no-drop'}; Ctrl-C stops")
        return _stream(options, source, sinks, models, settings, drop, interrupts)
    except SinkError as exc:
        return _error(exc)
    finally:
        for sink in sinks:
            sink.close()
        source.close()


def _models(options):
    from .. import cli   # the protect command's backend registry (imported late: cli imports us)

    factory = cli.BACKENDS.get(options["backend"])
    if factory is None:
        raise click.BadParameter(f"{options['backend']!r} is not one of {sorted(cli.BACKENDS)}",
                                 param_hint="--backend")
    models = factory(options["backbone"], options["classifier"], options["device"],
                     options["labels"] == "classifier")
    if models.classifier is not None and tuple(models.classifier.classes) != tuple(models.backbone.classes):
        raise click.UsageError(f"classifier {models.classifier.name} and backbone "
                               f"{models.backbone.name} have different classes")
    return models


def _sinks(options, source):
    sinks, output = [], options["output"]
    if output is not None:
        if is_video_path(output):
            fps = options["fps"] or source.fps or DEFAULT_VIDEO_FPS
            sink = VideoSink(output, fps, options["codec"], options["lossy"], options["overwrite"])
            if not sink.lossless:
                click.echo(LOSSY_WARNING.format(codec=sink.codec.strip()), err=True)
            sinks.append(sink)
        else:
            sinks.append(PngFolderSink(output, options["overwrite"]))
    if options["show"]:
        sinks.append(WindowSink())
    return sinks


def _stream(options, source, sinks, models, settings, drop, interrupts):
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
        if interrupts.count:
            ended = "interrupted"
        elif options["max_frames"] is not None and stats.captured >= options["max_frames"]:
            ended = "max frames"
    except SourceError as exc:
        ended, error = "source error", str(exc)
    except SinkError as exc:
        ended, error = "output error", str(exc)
    except ValueError as exc:   # a frame the backend cannot take (channels, depth)
        ended, error = "protection error", str(exc)
    except KeyboardInterrupt:   # the second Ctrl-C: frames in flight are lost
        ended = "aborted"
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
    classifier = getattr(models, "classifier", None)
    return {
        "version": __version__, "command": "camera",
        "source": {**source.describe(), "errors": source.errors},
        "outputs": [sink.describe() for sink in sinks],
        "settings": {"eps": settings.eps, "eps_255": budget_levels(settings.eps),
                     "n_samples": settings.n_samples, "lr": settings.lr, "epochs": settings.epochs,
                     "seed": settings.seed, "label_mode": settings.label_mode,
                     "batch_size": settings.batch_size, "backend": options["backend"],
                     "device": options["device"], "backbone": models.backbone.name,
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


def _sink_name(sink):
    described = sink.describe()
    return described.get("path", described["kind"])


def _note(line):
    click.echo(line, err=True)


def _error(exc):
    click.echo(f"error: {exc}", err=True)
    return EXIT_FAILED


class _Interrupts:
    """SIGINT/SIGTERM: the first stops the stream (drain), the second raises KeyboardInterrupt."""

    def __init__(self):
        self.count, self.stream, self.previous = 0, None, {}
        self.threads_left = False

    def install(self):
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in (signal.SIGINT, signal.SIGTERM):
            self.previous[signum] = signal.signal(signum, self._handle)

    def restore(self):
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        self.previous = {}

    def attach(self, stream):
        self.stream = stream
        if self.count:
            stream.stop()

    def _handle(self, signum, frame):
        self.count += 1
        if self.count > 1:
            raise KeyboardInterrupt
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
