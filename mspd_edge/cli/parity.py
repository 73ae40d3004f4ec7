"""``mspd-edge parity``: every backend against the reference on the same images and noise."""
import click

from ..backends.specs import available_specs
from ..labels import pipeline_mode
from .args import backend_options, settings_from
from .common import EXIT_FAILED, write_report
from .compare_args import (checked_specs, compare_args, default_threads, load_image_set,
                           resolved_options, spec_models)


@click.command("parity")
@click.argument("images", metavar="IMAGES")
@compare_args
@click.option("--backends", default="auto", show_default=True,
              help="Comma-separated backends to compare (torch, ort, ort-cuda, ort-tensorrt, trt; "
                   "runtime ones may add :step or :grad); auto: every one available here.")
@click.option("--reference", help="Backend the others are compared with.  [default: torch when "
                                  "installed, else ort]")
@click.option("--limit", type=click.IntRange(min=1), default=64, show_default=True,
              help="Images to use at most.")
@click.option("--min-cosine", type=float, default=0.9999, show_default=True,
              help="Tolerance: gradient cosine similarity at least.")
@click.option("--max-rel-err", type=float, default=1e-3, show_default=True,
              help="Tolerance: gradient max |error| / max |reference| at most.")
@click.option("--max-diff", type=click.IntRange(min=0), default=2, show_default=True,
              help="Tolerance: protected-image max |difference| in 1/255 units at most.")
@click.option("--min-identical", type=click.FloatRange(0, 1), default=0.99, show_default=True,
              help="Tolerance: share of identical 8-bit values at least.")
def parity_command(images, backends, reference, limit, min_cosine, max_rel_err, max_diff,
                   min_identical, **options):
    """Compare every backend with the reference on the same images and noise.

    IMAGES: a folder, glob or image file, or a CIFAR-style .npz (e.g. the CIFAR-10 test
    split). Per backend: the input gradient's cosine and relative error, the protected images'
    max |d| in 1/255 units and share of identical 8-bit values (all backends protect with the
    reference's labels and the same seed), and the label agreement. Prints a markdown table;
    exit status 1 when a backend is over a tolerance. Run it on a new device after install.
    """
    from ..runtime.compare import Tolerances, parity, parity_table

    options["threads"] = options["threads"] or default_threads()
    specs = available_specs(backend_options(options)) if backends == "auto" else checked_specs(backends)
    reference = reference or ("torch" if "torch" in specs else specs[0] if specs else None)
    if reference not in specs:
        raise click.BadParameter(f"{reference!r} is not among the backends {specs}",
                                 param_hint="--reference")
    if len(specs) < 2:
        raise click.UsageError(f"parity needs two backends; available here: {specs}")
    need_classifier = options["labels"] == "classifier"
    backend_opts = resolved_options(specs, options, need_classifier)
    image_set = load_image_set(images, limit)
    built = {spec: spec_models(spec, backend_opts, need_classifier).backend for spec in specs}
    settings = settings_from(options, pipeline_mode(options["labels"])).resolved(built[reference])
    tolerances = Tolerances(min_cosine=min_cosine, max_rel_err=max_rel_err,
                            max_diff_255=max_diff, min_identical=min_identical)
    records = parity(built, image_set, settings, reference, tolerances=tolerances,
                     log=lambda line: click.echo(line, err=True))
    click.echo(f"{len(image_set)} images, seed {settings.seed}, N={settings.n_samples}, "
               f"eps {settings.eps * 255:g}/255, threads {options['threads']}")
    click.echo(parity_table(records))
    if options["json_path"]:
        write_report(options["json_path"], {"settings": {
            "images": len(image_set), "seed": settings.seed, "n_samples": settings.n_samples,
            "eps": settings.eps, "epochs": settings.epochs, "reference": reference,
            "tolerances": tolerances.__dict__}, "records": records})
    click.get_current_context().exit(0 if all(r["ok"] for r in records) else EXIT_FAILED)
