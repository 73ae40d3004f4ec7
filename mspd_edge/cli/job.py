"""What ``protect`` and ``revert`` do around the job on either engine: Ctrl-C, the log lines,
the notes said before the work, the report's settings, the summary line and the exit status."""
import os
import signal
import sys
import threading
from contextlib import contextmanager

import click
from tqdm import tqdm

from ..advice import photo_model_note, resized_note
from .args import warn_over_budget
from .common import EXIT_ABORTED, EXIT_FAILED, sigint_handler, write_report


@contextmanager
def stop_on_ctrl_c():
    """The job's stop event: the first Ctrl-C sets it (the job ends after its current
    image(s)), a second one raises KeyboardInterrupt (the job ends at once)."""
    stop = threading.Event()

    def first(signum, frame):
        stop.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.write(sys.stderr.fileno(), b"\nstopping after the current image(s); Ctrl-C again to stop now\n")

    with sigint_handler(first):
        yield stop


def logger(quiet):
    """The job's ``log(line, is_error)``: errors always, the other lines unless ``quiet``."""
    def log(line, error):
        if error or not quiet:
            tqdm.write(line, file=sys.stderr)   # keeps a running progress bar intact
    return log


def start_notes(quiet, eps=None):
    """The job's ``on_start(sizes, backbone)``: the warning of an ``--eps`` over the backbone's
    trained budget (even when ``quiet``) and the notes on the images about to go through
    ``backbone`` (resized to its input; photos through a thumbnail-scale model)."""
    def say(sizes, backbone):
        warn_over_budget(eps, backbone)
        input_size = tuple(backbone.input_size)
        notes = (resized_note(input_size, sizes), photo_model_note(backbone, input_size, sizes))
        for note in notes if not quiet else ():
            if note:
                click.echo(note, err=True)
    return say


def job_settings(options, **known):
    """The report's settings of a job: its inputs and options, plus what the engine ``known``s."""
    return {"inputs": [str(item) for item in options["inputs"]], "outdir": str(options["outdir"]),
            "recursive": options["recursive"], "labels": options["labels"], **known}


def finish(options, result, report, where="", after="", kept="written outputs are kept"):
    """Write ``report`` (with --report) and the summary line of ``result`` (a job's summary:
    ``counts``, ``interrupted``, ``seconds``, ``settings``, ``reverse``); the exit status.
    ``where``/``after``: the engine's words after the numbers and after the seed; ``kept``:
    what a rerun keeps."""
    if options["report"]:
        write_report(options["report"], report)
    if not options["quiet"] or result.interrupted:
        counts, seed = result.counts, result.settings.seed
        head = "interrupted: " if result.interrupted else ""
        left = f", {counts['pending']} not started" if result.interrupted else ""
        click.echo(f"{head}{'reverted' if result.reverse else 'protected'} {counts['written']} image(s) "
                   f"({counts['skipped']} skipped, {counts['failed']} failed{left}) in "
                   f"{_duration(result.seconds)}{_rate(counts['written'], result.seconds)}{where}; "
                   f"seed {seed}{after}", err=True)
        if result.interrupted:
            click.echo(f"run the same command with --seed {seed} again to finish ({kept})", err=True)
    return EXIT_ABORTED if result.interrupted else EXIT_FAILED if result.counts["failed"] else 0


def _duration(seconds):
    if seconds < 60:
        return f"{seconds:.2g} s" if seconds < 10 else f"{seconds:.0f} s"
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes} min {seconds:02d} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def _rate(written, seconds):
    return f", {written / seconds:.3g} images/s" if written and seconds > 0 else ""
