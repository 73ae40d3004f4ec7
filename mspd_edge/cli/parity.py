"""``mspd-edge parity``: every backend against the fp32 reference on the same images and noise."""
import importlib.util

import click

from ..backends.specs import available_specs, spec_backend
from ..labels import pipeline_mode
from .args import backend_options, settings_from
from .common import EXIT_FAILED, write_report
from .compare_args import (checked_specs, compare_args, default_threads, load_image_set,
                           resolved_options, spec_models)

TOLERANCE_KEYS = ("min_cosine", "max_rel_err", "max_diff", "min_identical", "min_sign_agreement")


@click.command("parity")
@click.argument("images", metavar="IMAGES")
@compare_args
@click.option("--backends", default="auto", show_default=True,
              help="Comma-separated backends to compare (torch, ort, ort-cuda, ort-tensorrt, trt, "
                   "each optionally @PRECISION; runtime ones may add :step or :grad); auto: every "
                   "one available here, at --precision.")
@click.option("--reference", help="Backend the others are compared with.  [default: torch@fp32 "
                                  "when torch is installed, else ort@fp32]")
@click.option("--limit", type=click.IntRange(min=1), default=64, show_default=True,
              help="Images to use at most.")
@click.option("--min-cosine", type=float,
              help="Tolerance: gradient cosine similarity at least.  [default: by precision, "
                   "0.9999 for fp32; mspd_edge/measure/compare.py PRECISION_TOLERANCES]")
@click.option("--max-rel-err", type=float, help="Tolerance: gradient max |error| / max |reference| "
                                                "at most.  [default: by precision, 1e-3 for fp32]")
@click.option("--max-diff", type=click.IntRange(min=0), help="Tolerance: protected-image max "
              "|difference| in 1/255 units at most.  [default: by precision, 2 for fp32]")
@click.option("--min-identical", type=click.FloatRange(0, 1), help="Tolerance: share of identical "
              "8-bit values at least.  [default: by precision, 0.99 for fp32]")
@click.option("--min-sign-agreement", type=click.FloatRange(0, 1), help="Tolerance: share of "
              "gradient entries with the reference's sign at least.  [default: by precision]")
def parity_command(images, backends, reference, limit, **options):
    """Compare every backend with the fp32 reference on the same images and noise.

    IMAGES: a folder, glob or image file, or a CIFAR-style .npz (e.g. the CIFAR-10 test
    split). Per backend: the input gradient's cosine, relative error and sign agreement, the
    protected images' max |d| in 1/255 units and share of identical 8-bit values (all backends
    protect with the reference's labels and the same seed), and the label agreement, each
    against tolerances for the backend's precision. Prints a markdown table; exit status 1
    when a backend is over a tolerance. Run it on a new device after install.
    """
    from ..measure.compare import parity, parity_table

    given = {key: options.pop(key) for key in TOLERANCE_KEYS}
    options["threads"] = options["threads"] or default_threads()
    base = backend_options(options)
    specs = available_specs(base) if backends == "auto" else checked_specs(backends)
    if reference is None:
        reference = "torch@fp32" if importlib.util.find_spec("torch") is not None else "ort@fp32"
    reference = checked_specs(reference)[0]
    same = [s for s in specs if spec_backend(s, base) == spec_backend(reference, base)]
    reference = same[0] if same else reference
    specs = [reference] + [s for s in specs if s != reference]
    if len(specs) < 2:
        raise click.UsageError(f"parity needs a backend besides the reference {reference}")
    need_classifier = options["labels"] == "classifier"
    backend_opts = resolved_options(specs, options, need_classifier)
    image_set = load_image_set(images, limit)
    built = {spec: spec_models(spec, backend_opts, need_classifier).backend for spec in specs}
    settings = settings_from(options, pipeline_mode(options["labels"])).resolved(built[reference])
    tolerances = {spec: _tolerances(backend.precision, given) for spec, backend in built.items()}
    records = parity(built, image_set, settings, reference, tolerances=tolerances,
                     log=lambda line: click.echo(line, err=True))
    click.echo(f"{len(image_set)} images, seed {settings.seed}, N={settings.n_samples}, "
               f"eps {settings.eps * 255:g}/255, threads {options['threads']}")
    click.echo(parity_table(records))
    if options["json_path"]:
        write_report(options["json_path"], {"settings": {
            "images": len(image_set), "seed": settings.seed, "n_samples": settings.n_samples,
            "eps": settings.eps, "epochs": settings.epochs, "reference": reference,
            "tolerances": {s: t.__dict__ for s, t in tolerances.items()}}, "records": records})
    click.get_current_context().exit(0 if all(r["ok"] for r in records) else EXIT_FAILED)


def _tolerances(precision, given):
    """The tolerances of ``precision``, with the ones given on the command line instead."""
    from dataclasses import replace

    from ..measure.compare import PRECISION_TOLERANCES

    names = {"max_diff": "max_diff_255"}
    return replace(PRECISION_TOLERANCES[precision],
                   **{names.get(k, k): v for k, v in given.items() if v is not None})
