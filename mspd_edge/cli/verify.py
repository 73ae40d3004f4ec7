"""``mspd-edge verify``: a thin layer over :mod:`mspd_edge.verify`."""
from pathlib import Path

import click
from click.core import ParameterSource

from .. import defaults
from ..io import check_writable
from ..util import write_atomic
from ..labels import LabelError, label_source, pipeline_mode
from ..verify import markdown, pair_inputs, parse_scenarios, read_settings, text_table, verify_pairs
from ..verify import measure
from ..verify.robust import PGD_STEPS, default_targets, load_targets
from .args import (backend_args, backend_choice, backend_options, build_models, cascade_args, check_classes,
                   settings_from)
from .common import EXIT_FAILED, OneLineUsageError, fail, write_report


def _check_simulate(ctx, param, value):
    try:
        return parse_scenarios(value) if value is not None else ()
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.command("verify")
@click.argument("original", type=click.Path(path_type=Path))
@click.argument("published", type=click.Path(path_type=Path), nargs=-1)
@click.option("-r", "--recursive", is_flag=True, help="Also pair the images of subfolders.")
@click.option("--settings", "settings_file", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="The protect run's report (mspd-edge protect --report): its backend, models, "
                   "precision and cascade settings, seed included; options given here override it.")
@cascade_args()
@click.option("--labels", default="classifier", show_default=True, metavar="classifier|couple|folder|FILE.csv",
              help="The protect run's --labels.")
@backend_args()
@click.option("--simulate", callback=_check_simulate, metavar="STEP[+STEP],...",
              help="Platform-like scenarios applied to the recomputed protection, e.g. "
                   "jpeg75,resize0.5,webp80,resize0.75+jpeg75 (also cropF, blurS).")
@click.option("--targets", help="Comma-separated targets for the robust accuracy (zoo names or "
                                "checkpoints).  [default: the shipped robust CIFAR-10 targets]")
@click.option("--no-attack", is_flag=True, help="Skip the robust accuracy (PGD-10): faster, no torch.")
@click.option("--batch-size", type=click.IntRange(min=1), help="Images per cascade call.  [default: automatic]")
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the JSON report here and its markdown beside it (same name, .md).")
@click.option("-q", "--quiet", is_flag=True, help="No table on stdout; errors only.")
def verify_command(**options):
    """Does a published copy still carry its protection?

    ORIGINAL and PUBLISHED are image files or folders (pairs matched by relative path and name,
    whatever the extension); several PUBLISHED copies (sites) of one ORIGINAL may be given. The protected image is recomputed from ORIGINAL and the
    protection settings (--settings REPORT.json, or the options of protect, --seed included) and
    compared with PUBLISHED at the model input: how much of the protection it keeps (cosine,
    energy) and a verdict: kept, weakened, gone, or not comparable (a crop, a heavy filter).
    With --simulate, PUBLISHED is optional. Nothing leaves this machine. Exit status: 0 when
    every copy is kept, 1 otherwise (bad or missing pairs: one "error:" line each), 2 for
    usage errors.
    """
    ctx = click.get_current_context()
    if options["settings_file"] is not None:
        _merge_report(ctx, options)
    if options["seed"] is None:
        raise OneLineUsageError("--seed is needed: the protect run's seed (printed by protect and in "
                                "its report: --settings REPORT.json)")
    if not options["published"] and not options["simulate"]:
        raise click.UsageError("give PUBLISHED, or --simulate steps")
    _check_report(options["report"])
    log = _log(options["quiet"])
    try:
        pairs, problems = pair_inputs(options["original"], options["published"], options["recursive"], log)
    except ValueError as exc:
        raise OneLineUsageError(str(exc)) from None
    options["backend"] = backend_choice(options)   # auto: resolved as protect does (its report names the result)
    models = build_models(options["backend"], backend_options(options), options["labels"] == "classifier")
    check_classes(models)
    try:
        labels = label_source(options["labels"], models.backbone.classes)
        settings = settings_from(options, pipeline_mode(options["labels"]), options["batch_size"])
        settings = settings.resolved(models.backend)
    except (LabelError, ValueError) as exc:
        raise OneLineUsageError(str(exc)) from None
    targets = _targets(options, models.backend.input_size, log)
    result = verify_pairs(pairs, models.backend, settings, scenarios=options["simulate"], targets=targets,
                          labels=labels, max_pixels=defaults.MAX_PIXELS, log=log, problems=problems)
    report = result.report(**_settings_record(options, models, settings, targets))
    if not options["quiet"] and report["images"]:
        click.echo(text_table(report))
    if options["report"] is not None:
        _write(options["report"], report)
    counts = ", ".join(f"{n} {verdict}" for verdict, n in report["verdicts"].items() if n)
    if not options["quiet"]:
        click.echo(f"{len(report['images'])} cop(ies): {counts or 'none'}; {len(report['errors'])} error(s)", err=True)
    ctx.exit(0 if report["all_kept"] else EXIT_FAILED)


def _check_report(report):
    if report is None:
        return
    if report.suffix.lower() == ".md":
        raise OneLineUsageError(f"{report}: --report names the JSON file (the markdown goes beside it)")
    try:
        check_writable(report.parent)
    except OSError as exc:
        raise OneLineUsageError(f"{report}: cannot write the report there: {exc.strerror or exc}") from None


def _merge_report(ctx, options):
    """Take each setting from the report unless given on the command line."""
    try:
        recorded = read_settings(options["settings_file"])
    except ValueError as exc:
        raise OneLineUsageError(str(exc)) from None
    for key, value in recorded.items():
        if ctx.get_parameter_source(key) != ParameterSource.COMMANDLINE and value is not None:
            options[key] = Path(value) if key == "model_dir" else value


def _targets(options, input_size, log):
    if options["no_attack"]:
        return None
    names = options["targets"].split(",") if options["targets"] else default_targets(input_size)
    if not names:
        log(f"note: no shipped robust targets take {input_size} images: robust accuracy skipped (--targets)")
        return None
    try:
        return load_targets([name.strip() for name in names if name.strip()], input_size)
    except ImportError as exc:
        raise OneLineUsageError(f"the robust accuracy needs torch ({exc}): install it or use --no-attack") from None
    except ValueError as exc:
        raise OneLineUsageError(str(exc)) from None


def _settings_record(options, models, settings, targets):
    thresholds = {name.lower(): getattr(measure, name) for name in (
        "KEPT_COSINE", "KEPT_GAIN", "GONE_COSINE", "GONE_GAIN", "ASPECT_TOLERANCE", "MIN_CORRELATION",
        "MAX_FOREIGN_ENERGY")}
    return {"backend": options["backend"], "precision": models.backend.precision,
            "backbone": models.backbone.name,
            "classifier": None if models.classifier is None else models.classifier.name,
            "input_size": list(models.backend.input_size), "eps": settings.eps, "n_samples": settings.n_samples,
            "lr": settings.lr, "epochs": settings.epochs, "seed": settings.seed, "labels": options["labels"],
            "simulate": list(options["simulate"]), "targets": list(targets or ()),
            "attack": None if not targets else {"name": "pgd-linf", "eps": settings.eps, "steps": PGD_STEPS},
            "thresholds": thresholds}


def _write(path, report):
    write_report(path, report)
    markdown_path = path.with_suffix(".md")
    try:
        write_atomic(markdown_path, markdown(report).encode())
    except OSError as exc:
        fail(f"{markdown_path}: cannot write the report: {exc.strerror or exc}")


def _log(quiet):
    def log(line):
        if not quiet or line.startswith("error:"):
            click.echo(line, err=True)
    return log
