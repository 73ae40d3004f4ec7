"""What every command module shares: exit codes, the one-line error, report writing, Ctrl-C."""
import json

import click

from ..util import sigint_handler, write_atomic  # noqa: F401  (sigint_handler: for the commands)

EXIT_FAILED = 1     # some input failed
EXIT_USAGE = 2      # usage errors (click's own code for them too)
EXIT_ABORTED = 130  # Ctrl-C


class OneLineUsageError(click.ClickException):
    """A usage error printed as one ``error: ...`` line, exit status 2 (no usage banner)."""

    exit_code = EXIT_USAGE

    def show(self, file=None):
        click.echo(f"error: {self.format_message()}", err=True, file=file)


def fail(message):
    """Print ``error: message`` and exit with :data:`EXIT_FAILED`."""
    click.echo(f"error: {message}", err=True)
    click.get_current_context().exit(EXIT_FAILED)


def write_report(path, report):
    """Write ``report`` as JSON atomically; a failure is an ``error:`` line and exit 1."""
    try:
        write_atomic(path, (json.dumps(report, indent=2) + "\n").encode())
    except OSError as exc:
        fail(f"{path}: cannot write the report: {exc.strerror or exc}")
