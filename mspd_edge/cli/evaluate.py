"""``mspd-edge evaluate``: the paper's protocol on labelled images (a thin layer over
``mspd_edge.evaluate.run``)."""
from pathlib import Path

import click

from ..defaults import CERTIFY_ALPHA, CERTIFY_N, CERTIFY_N0, SPARSE_K, SPARSE_STEPS
from .args import backend_args, backend_choice, backend_options, build_models, cascade_args, settings_from

ATTACK_NAMES = ("pgd-linf", "pgd-l2", "autoattack", "square", "sparse-l0")   # mirrors attacks.ATTACKS (no torch here)
DEFAULT_ATTACKS = "pgd-linf,pgd-l2"
CONDITION_GROUPS = ("main", "ablations", "all")
DEFAULT_IMAGES = 1000
DEFAULT_SEED = 0
EVAL_LABELS = ("classifier", "couple", "gt")


def _split(value):
    return [item.strip() for item in value.split(",") if item.strip()] if value else []


def _check_attacks(ctx, param, value):
    names = _split(value)
    unknown = [n for n in names if n not in ATTACK_NAMES]
    if unknown or not names:
        raise click.BadParameter(f"a comma list of {', '.join(ATTACK_NAMES)}")
    return names


@click.command("evaluate")
@click.option("--data", required=True, type=click.Path(exists=True, path_type=Path),
              help="Labelled images: a CIFAR-style .npz, a folder with one sub-folder per class, "
                   "or a CSV with the columns file,label.")
@click.option("--images", "n_images", type=click.IntRange(min=1), default=DEFAULT_IMAGES, show_default=True,
              help="Evaluate the first K images.")
@click.option("-o", "--outdir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Run folder: results.json/.md/.png and the images of each condition; an "
                   "interrupted run resumes there.")
@click.option("--targets", help="Comma list of target models (zoo names or checkpoints).  "
                                "[default: the shipped cifar10-target-* models]")
@click.option("--backbone-as-target", is_flag=True,
              help="Allow the defence's backbone among the targets (a white-box reference).")
@click.option("--attacks", default=DEFAULT_ATTACKS, show_default=True, callback=_check_attacks,
              help=f"Comma list of {', '.join(ATTACK_NAMES)}.")
@click.option("--linf-eps", type=click.FloatRange(0, 255, min_open=True),
              help="L-inf attack budget in 1/255 units (pgd-linf, autoattack, square), relative to "
                   "the attacked image.  [default: the backbone's eps]")
@click.option("--l2-eps", type=click.FloatRange(0, min_open=True), help="pgd-l2 budget.  [default: 0.5]")
@click.option("--pgd-steps", type=click.IntRange(min=1), help="PGD iterations.  [default: 10]")
@click.option("--square-queries", type=click.IntRange(min=1), help="Square queries.  [default: 5000]")
@click.option("--l0-pixels", type=click.IntRange(min=1),
              help=f"sparse-l0 budget in pixels (all channels of a pixel count as one).  [default: {SPARSE_K} "
                   "on 32x32, scaled with the image area]")
@click.option("--sparse-steps", type=click.IntRange(min=1),
              help=f"sparse-l0 iterations of each sparse-PGD variant and Sparse-RS queries.  "
                   f"[default: {SPARSE_STEPS}]")
@click.option("--certify", is_flag=True,
              help="Certify the smoothed targets (manifest smoothing_sigma) by randomized smoothing on the "
                   "none, mspd and reverted-white images, instead of attacking them.")
@click.option("--certify-n", type=click.IntRange(min=1), default=CERTIFY_N, show_default=True,
              help="CERTIFY's estimation samples per image (10,000-100,000 on a GPU).")
@click.option("--certify-n0", type=click.IntRange(min=1), default=CERTIFY_N0, show_default=True,
              help="CERTIFY's selection samples per image.")
@click.option("--certify-alpha", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              default=CERTIFY_ALPHA, show_default=True, help="CERTIFY's failure probability.")
@click.option("--conditions", default="all", show_default=True,
              help="Comma list of conditions or groups (main, ablations, all); see docs/evaluate.md.")
@click.option("--graybox", help="Gray-box reverser: a backbone of the same architecture, another "
                                "seed.  [default: cifar10-backbone-graybox]")
@click.option("--labels", type=click.Choice(EVAL_LABELS), default="classifier", show_default=True,
              help="Defence labels: the classifier's, the backbone's (couple) or the ground truth.")
@cascade_args(seed_default=DEFAULT_SEED)
@backend_args()
@click.option("--overwrite", is_flag=True, help="Start over in a run folder made with other settings.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def evaluate_command(**options):
    """Does protection work? Accuracy of unseen targets under attack, without and with MSPD.

    For every target and condition (original, protected, reverted white-/gray-box, JPEG
    re-encoded, ablations): clean accuracy and robust accuracy under each attack, acting on
    the image it is given with the budget relative to it; with --certify, the certified L2
    accuracy of the smoothed targets. Also image quality (L-inf, L2,
    SSIM, PSNR) and the backbone-target gradient cosine. Exit status 2 for bad options or data.
    """
    from ..evaluate.datasets import DatasetError
    from ..evaluate.plan import PlanError
    from ..evaluate.run import ResumeError
    from ..labels import LabelError

    try:
        result, out = _evaluate(options)
    except (DatasetError, PlanError, ResumeError, LabelError) as exc:
        raise click.UsageError(str(exc)) from None
    click.echo(f"evaluated {result['config']['images']} image(s); results in {out}/"
               f"{{results.json,results.md,results.png}}", err=True)


def _conditions(value):
    from ..evaluate.conditions import ABLATIONS, CONDITIONS, MAIN_CONDITIONS

    groups = {"main": MAIN_CONDITIONS, "ablations": ABLATIONS, "all": tuple(CONDITIONS)}
    names = []
    for item in _split(value):
        names += groups.get(item, (item,))
    return names


def _attacks(options):
    linf = None if options["linf_eps"] is None else options["linf_eps"] / 255
    steps = {"pgd-linf": options["pgd_steps"], "pgd-l2": options["pgd_steps"], "square": options["square_queries"],
             "sparse-l0": options["sparse_steps"]}
    eps = {"pgd-l2": options["l2_eps"], "sparse-l0": options["l0_pixels"]}
    return {name: (eps.get(name, linf), steps.get(name)) for name in options["attacks"]}


def _evaluate(options):
    import torch

    from ..backends.exports import load_checked
    from ..evaluate.certified import CertifySpec
    from ..evaluate.plan import GRAYBOX, build_plan, default_targets
    from ..evaluate.run import run
    from ..zoo import load_model

    if options["threads"]:
        torch.set_num_threads(options["threads"])
    need_classifier = options["labels"] == "classifier"
    options["backend"] = backend_choice(options)
    models = build_models(options["backend"], backend_options(options), need_classifier)
    backbone = load_checked(load_model, options["backbone"], "--backbone").to(options["device"])
    classifier_ref = options["classifier"] or backbone.info.pair
    classifier = load_checked(load_model, classifier_ref, "--classifier") if need_classifier else None
    settings = settings_from(options, options["labels"])
    try:
        settings = settings.resolved(models.backend)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    targets = _split(options["targets"]) or default_targets()
    certify = (CertifySpec(options["certify_n0"], options["certify_n"], options["certify_alpha"])
               if options["certify"] else None)
    plan = build_plan(options["data"], options["n_images"], models.backend, settings, backbone, classifier,
                      targets, _attacks(options), _conditions(options["conditions"]),
                      graybox=options["graybox"] or GRAYBOX, allow_backbone_target=options["backbone_as_target"],
                      backend_options=backend_options(options).but(classifier=classifier_ref),
                      certify=certify, progress=not options["quiet"])
    return run(plan, options["outdir"], overwrite=options["overwrite"]), options["outdir"]
