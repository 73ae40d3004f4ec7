"""``mspd-edge models``: the shipped models and the RobustBench checkpoints (list, path, pull, verify).

Thin over :mod:`mspd_edge.zoo.pull`, :mod:`mspd_edge.zoo.checksums` and the torch-free locator
:mod:`mspd_edge.zoo.locate`; nothing here imports torch.
"""
import click

from ..zoo import checksums, locate
from ..zoo.pretrained import PUBLISHED
from ..zoo.pull import pull
from ..zoo.robustbench_ids import ROBUSTBENCH
from .common import EXIT_FAILED, OneLineUsageError, fail

NAMES = click.Choice([*locate.shipped_models(), *ROBUSTBENCH])   # the shipped models, then RobustBench's


@click.group("models")
def models_command():
    """The models of the zoo: list, locate, pull (download) and verify them.

    The shipped models (the cifar10-* defaults) lie in the package's weights folder. The
    RobustBench checkpoints live in RobustBench's own layout, <root>/<dataset>/<threat_model>/<id>.pt,
    with <root> = $MSPD_EDGE_MODELS, then ./models (where load_model looks); pull writes into
    the first.
    """


@models_command.command("list")
def list_command():
    """Every model of the zoo, the shipped ones first: dataset, threat model (the attack it was
    trained against; none: standard training), role, source, and whether its file is in place
    (its path, else where pull would put it)."""
    rows = [("id", "dataset", "threat", "role", "source", "present", "path")]
    for name, manifest in locate.shipped_models().items():
        weights = locate.shipped_weights(name)
        threat = "none" if manifest["recipe"]["recipe"] == "standard" else "Linf"
        rows.append((name, manifest["dataset"], threat, manifest["role"], "shipped",
                     "yes" if weights.is_file() else "no", str(weights)))
    for name, spec in ROBUSTBENCH.items():
        found = locate.find_robustbench(name)
        source = "drive" if PUBLISHED[name].gdrive_id else "url"
        rows.append((name, spec["dataset"], spec["threat_model"], spec["role"], source,
                     "yes" if found else "no", str(found or locate.pull_root() / locate.robustbench_relative(name))))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1])


@models_command.command("path")
@click.argument("name", metavar="NAME", type=NAMES)
def path_command(name):
    """Print the path of NAME's weights (a shipped model's manifest is beside them) or
    checkpoint; exit 1 when it is not in place."""
    if name not in ROBUSTBENCH:
        weights = locate.shipped_weights(name)
        if not weights.is_file():
            fail(f"{name}: its weights are missing beside its manifest (looked for {weights})")
        click.echo(weights)
        return
    found = locate.find_robustbench(name)
    if found is None:
        looked = ", ".join(str(p) for p in locate.robustbench_candidates(name))
        fail(f"{name}: no checkpoint (looked for {looked}); `mspd-edge models pull {name}` gets it")
    click.echo(found)


@models_command.command("pull")
@click.argument("names", metavar="ID...", nargs=-1, required=True, type=NAMES)
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
    """Download the checkpoints of ID... into the layout, checked and with a recorded sha256
    (a shipped model: where it lies, nothing to pull).

    An interrupted download resumes on the next pull; what is not a checkpoint (an HTML quota
    or virus-scan page, a truncated file) is kept as <id>.pt.bad and never placed.
    """
    if source is not None and len(names) > 1:
        raise OneLineUsageError("--from takes exactly one ID")
    failed = False
    for name in names:
        if name not in ROBUSTBENCH:
            click.echo(f"shipped {name}: {locate.shipped_weights(name)} (nothing to pull: it comes "
                       "with mspd-edge)")
            continue
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
@click.argument("names", metavar="[NAME]...", nargs=-1, type=NAMES)
def verify_command(names):
    """Check the models in place (NAME..., default: all), one line per file: a shipped model's
    weights against the sha256 in its manifest, a RobustBench checkpoint against the one
    recorded at its download; exit 1 on a mismatch, a file that is no checkpoint, or a named
    model that is missing. A checkpoint without a record (placed by hand) is reported, not failed."""
    try:
        verdicts = checksums.verify(list(names) or None)
    except (ValueError, OSError) as exc:
        fail(str(exc))
    for verdict in verdicts:
        click.echo(f"{verdict.status:<10}  {verdict.name}  {verdict.path or '-'}  {verdict.detail}")
    if not names and not any(verdict.name in ROBUSTBENCH for verdict in verdicts):
        click.echo(f"no RobustBench checkpoint in place under {', '.join(map(str, locate.model_roots()))}")
    if any(verdict.status in checksums.FAILED for verdict in verdicts):
        click.get_current_context().exit(EXIT_FAILED)
