"""The ``mspd-edge`` command line: thin modules over library functions, one per command.

Backends come from :mod:`mspd_edge.backends`; shared options are the argument groups of
:mod:`mspd_edge.cli.args`. Nothing outside this package imports it. Each command module
imports its heavy parts (torch, onnxruntime) only when it runs, so ``--backend ort|trt``
works on a device without torch.
"""
import click

from .. import __version__
from .bench import bench_command
from .calibrate import calibrate_command
from .camera import camera_command
from .evaluate import evaluate_command
from .export import check_command, export_command
from .models import models_command
from .parity import parity_command
from .protect import protect_command, revert_command
from .train import train_command
from .verify import verify_command

COMMANDS = (protect_command, revert_command, camera_command, evaluate_command, train_command,
            export_command, check_command, parity_command, bench_command, models_command, calibrate_command,
            verify_command)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="mspd-edge")
def main():
    """Preemptive image protection with the MCGS cascade (MSPD)."""


for _command in COMMANDS:
    main.add_command(_command)
