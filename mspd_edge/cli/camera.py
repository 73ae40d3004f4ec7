"""``mspd-edge camera``: protect a camera or any video source, frame by frame, as it is captured.

The click command :data:`camera_command`; the stream loop, report and signal handling are in
:mod:`mspd_edge.cli.camera_run`. Backends come from :mod:`mspd_edge.backends`, like every
command's.
"""
import os
import signal
import sys
from pathlib import Path

import click

from .. import defaults
from ..camera.sinks import DEFAULT_CODEC, LOSSY_WARNING, PngFolderSink, SinkError, VideoSink, WindowSink, is_video_path
from ..camera.sources import SourceError, open_source
from .args import (backend_args, backend_choice, backend_options, build_models, cascade_args, check_classes,
                   settings_from, warn_over_budget)
from .camera_run import Interrupts, run_stream, sink_name
from .common import EXIT_ABORTED, EXIT_FAILED, sigint_handler

LABEL_MODES = ("classifier", "couple")
DEFAULT_VIDEO_FPS = 30.0


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
@click.option("--max-pixels", type=click.IntRange(min=1), default=defaults.MAX_PIXELS,
              show_default=True, help="Refuse images of a FOLDER source with more pixels.")
@cascade_args()
@click.option("--labels", type=click.Choice(LABEL_MODES), default="classifier", show_default=True,
              help="Label per frame: the classifier's prediction, or the backbone's (couple).")
@click.option("--batch-size", type=click.IntRange(min=1),
              help="Frames per cascade call at most.  [default: automatic]")
@backend_args()
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
    interrupts = Interrupts()
    try:
        with sigint_handler(interrupts.handle, also=(signal.SIGTERM,)):
            status = _run(options, interrupts)
    except KeyboardInterrupt:   # a second Ctrl-C before the stream started (e.g. loading models)
        click.echo("aborted", err=True)
        status = EXIT_ABORTED
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
        source = open_source(options["source"], options["capture_size"], options["capture_fps"],
                             options["max_pixels"])
    except SourceError as exc:
        return _error(exc)
    source.on_error = lambda item: click.echo(f"error: {item['input']}: {item['error']}", err=True)
    sinks = []
    try:
        models = _models(options)
        settings = settings_from(options, options["labels"], options["batch_size"])
        settings = settings.resolved(models.backend)
        warn_over_budget(options["eps"], models.backbone)
        sinks = _sinks(options, source)
        drop = source.live if options["drop"] is None else options["drop"]
        if not quiet:
            _note(f"protecting {source.kind} {options['source']} -> "
                  f"{', '.join(sink_name(s) for s in sinks)}; seed {settings.seed}; "
                  f"{'drop' if drop else 'no-drop'}; Ctrl-C stops")
        return run_stream(options, source, sinks, models, settings, drop, interrupts)
    except SinkError as exc:
        return _error(exc)
    finally:
        for sink in sinks:
            sink.close()
        source.close()


def _models(options):
    options["backend"] = backend_choice(options)
    models = build_models(options["backend"], backend_options(options), options["labels"] == "classifier")
    check_classes(models)
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


def _note(line):
    click.echo(line, err=True)


def _error(exc):
    click.echo(f"error: {exc}", err=True)
    return EXIT_FAILED


