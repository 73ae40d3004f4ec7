"""Helpers of the CLI tests: run a command in-process, read its error lines, hash its outputs."""
import hashlib

from click.testing import CliRunner

from mspd_edge.cli import main

FAST = ["--n-samples", "2"]
EMBEDDED = ["--backbone", "cifar10-backbone", "--classifier", "cifar10-classifier"]


def invoke(*args):
    """``mspd-edge ARGS`` in this process (click's runner); the result has exit_code and stderr."""
    return CliRunner().invoke(main, [str(a) for a in args])


def error_lines(result):
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def digest(paths):
    """``{file name: sha256}`` of ``paths``."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}
