"""``mspd-edge models``: the RobustBench checkpoints of the zoo (list, path, pull, verify).

Thin over :mod:`mspd_edge.zoo.pull`, :mod:`mspd_edge.zoo.checksums` and the torch-free locator
:mod:`mspd_edge.zoo.locate`; nothing here imports torch.
"""
import click

from ..zoo import checksums, locate
from ..zoo.pretrained import PUBLISHED
from ..zoo.pull import pull
from ..zoo.robustbench_ids import ROBUSTBENCH
from .common import EXIT_FAILED, OneLineUsageError, fail

IDS = click.Choice(list(ROBUSTBENCH))


@click.group("models")
def models_command():
    """The RobustBench checkpoints: list, locate, pull (download) and verify them.

    They live in RobustBench's own layout, <root>/<dataset>/<threat_model>/<id>.pt, with <root>
    = $MSPD_EDGE_MODELS, then ./models (where load_model looks); pull writes into the first.
    """


@models_command.command("list")
def list_command():
    """Every RobustBench id of the zoo: dataset, threat model, role, source, and whether its
    checkpoint is in place (its path, else where pull would put it)."""
    rows = [("id", "dataset", "threat", "role", "source", "present", "path")]
    for name, spec in ROBUSTBENCH.items():
        found = locate.find_robustbench(name)
        source = "drive" if PUBLISHED[name].gdrive_id else "url"
        rows.append((name, spec["dataset"], spec["threat_model"], spec["role"], source,
                     "yes" if found else "no", str(found or locate.pull_root() / locate.robustbench_relative(name))))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1])


@models_command.command("path")
@click.argument("name", metavar="ID", type=IDS)
def path_command(name):
    """Print the path of ID's checkpoint; exit 1 when it is not in place."""
    found = locate.find_robustbench(name)
    if found is None:
        looked = ", ".join(str(p) for p in locate.robustbench_candidates(name))
        fail(f"{name}: no checkpoint (looked for {looked}); `mspd-edge models pull {name}` gets it")
    click.echo(found)


@models_command.command("pull")
@click.argument("names", metavar="ID...", nargs=-1, required=True, type=IDS)
@click.option("--from", "source", metavar="URL_OR_FILE",
              help="Fetch from here instead: a mirror URL, a file:// URL or a local file (one ID).  "
                   "[default: where RobustBench lists it]")
@click.option("--force", is_flag=True,
              help="Fetch again even when the checkpoint is in place; drops partial downloads.")
@click.option("--retries", type=click.IntRange(min=0), default=3, show_default=True,
              help="Extra attempts after a network failure (each resumes the transfer).")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=60.0,
              show_default=True, help="Seconds without a byte before an attempt fails.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def pull_command(names, source, force, retries, timeout, quiet):
    """Download the checkpoints of ID... into the layout, checked and with a recorded sha256.

    An interrupted download resumes on the next pull; what is not a checkpoint (an HTML quota
    or virus-scan page, a truncated file) is kept as <id>.pt.bad and never placed.
    """
    if source is not None and len(names) > 1:
        raise OneLineUsageError("--from takes exactly one ID")
    failed = False
    for name in names:
        try:
            done = pull(name, source, force=force, retries=retries, timeout=timeout, quiet=quiet)
        except (ValueError, OSError) as exc:
            click.echo(f"error: {exc}", err=True)
            failed = True
            continue
        checked = ("loads into the zoo's architecture" if done.load_checked
                   else "matches its record" if done.action == "present"
                   else "bytes only: keys unchecked without torch")
        click.echo(f"{done.action} {name}: {done.path} sha256 {done.sha256} ({checked})")
    if failed:
        click.get_current_context().exit(EXIT_FAILED)


@models_command.command("verify")
@click.argument("names", metavar="[ID]...", nargs=-1, type=IDS)
def verify_command(names):
    """Check checkpoints in place (ID..., default: all) against the sha256 recorded at their
    download, one line per file; exit 1 on a mismatch, a file that is no checkpoint, or a
    named ID that is missing. A file without a record (placed by hand) is reported, not failed."""
    try:
        verdicts = checksums.verify(list(names) or None)
    except (ValueError, OSError) as exc:
        fail(str(exc))
    if not verdicts:
        click.echo(f"no RobustBench checkpoint in place under {', '.join(map(str, locate.model_roots()))}")
    for verdict in verdicts:
        click.echo(f"{verdict.status:<10}  {verdict.name}  {verdict.path or '-'}  {verdict.detail}")
    if any(verdict.status in checksums.FAILED for verdict in verdicts):
        click.get_current_context().exit(EXIT_FAILED)
