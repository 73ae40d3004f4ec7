"""Reusable argument groups (as in Polygraphy's ``tools/args``): each is a decorator adding its
options to a command, and a function turning the parsed values into library objects.

* :func:`backend_args` -> :func:`backend_options` / :func:`build_models` (``mspd_edge.backends``);
* :func:`cascade_args` -> :func:`settings_from` (``mspd_edge.pipeline.Settings``).
"""
from pathlib import Path

import click

from .. import defaults
from ..backends import (DEVICES, PROVIDERS, BackendError, BackendOptions, backend_names, build_backend,
                        get_backend, resolve_backend)
from ..imaging import budget_warning, check_budget
from ..backends.precision import AUTO, CHOICES as PRECISIONS
from ..pipeline import Settings, check_epochs
from .common import OneLineUsageError

BACKEND_KEYS = ("backend", "backbone", "classifier", "device", "model_dir", "provider", "precision",
                "threads")


def apply(options):
    """A decorator applying click ``options`` in the order listed."""
    def decorate(function):
        for option in reversed(options):
            function = option(function)
        return function
    return decorate


def _check_backend(ctx, param, value):
    try:
        return value if value == AUTO else get_backend(value).name
    except BackendError as exc:
        raise OneLineUsageError(str(exc)) from None


def backend_args(*, backend=True, threads=True):
    """``--backend --backbone --classifier --device --model-dir --provider --precision [--threads]``."""
    options = [
        click.option("--backbone", default=defaults.BACKBONE, show_default=True,
                     help="Backbone whose gradients protect: a zoo name or a checkpoint file."),
        click.option("--classifier", help="Label classifier (--labels classifier): a zoo name or a "
                                          "checkpoint file.  [default: the backbone's pair]"),
        click.option("--device", type=click.Choice(DEVICES), default=DEVICES[0], show_default=True,
                     help="Where the models run (and ONNX Runtime's default provider)."),
        click.option("--model-dir", type=click.Path(file_okay=False, exists=True, path_type=Path),
                     help="Export folder (`mspd-edge export`) for the runtime backends (ort, trt).  "
                          "[default: the models' export in ~/.cache/mspd-edge/exports (or "
                          "$MSPD_EDGE_CACHE), made once, which needs torch]"),
        click.option("--provider", type=click.Choice(PROVIDERS),
                     help="ONNX Runtime execution provider for --backend ort.  [default: cuda "
                          "with --device cuda, else cpu]"),
        click.option("--precision", type=click.Choice(PRECISIONS), default=AUTO, show_default=True,
                     help="Precision of the network in the gradient passes (labels and the "
                          "cascade's arithmetic stay fp32); auto: the measured default of the "
                          "backend and device (README \"Precision\": bf16 for torch on a CPU with "
                          "bf16, else fp32); int8 and fp16 graphs come from `mspd-edge export "
                          "--precision`."),
    ]
    if backend:
        options.insert(0, click.option(
            "--backend", default=AUTO, show_default=True, metavar="|".join(backend_names()),
            callback=_check_backend, is_eager=True,
            help="Implementation of the cascade: the PyTorch reference, ONNX Runtime or TensorRT "
                 "(ort and trt never import torch); auto: the fastest on this machine, by "
                 "measurement (README \"Which backend runs\": ort on a CPU; torch for --precision "
                 "bf16/fp16 or --device cuda)."))
    if threads:
        options.append(click.option("--threads", type=click.IntRange(min=1),
                                    help="CPU threads of the backend.  [default: the engine's]"))
    return apply(options)


def backend_options(options, **overrides):
    """The :class:`BackendOptions` of parsed ``options`` (keys absent from a command: defaults)."""
    fields = {key: options[key] for key in BACKEND_KEYS[1:] if key in options}
    return BackendOptions(**{**fields, **overrides})


def backend_choice(options):
    """``--backend`` of parsed ``options``, ``auto`` resolved for the other backend options
    (the name reports record; the same on every engine)."""
    return resolve_backend(options["backend"], backend_options(options))


def build_models(name, options, need_classifier):
    """:func:`mspd_edge.backends.build_backend`, a :class:`BackendError` as a one-line exit 2."""
    try:
        return build_backend(name, options, need_classifier=need_classifier)
    except BackendError as exc:
        raise OneLineUsageError(str(exc)) from None


def usage_error(exc):
    """A library :class:`BackendError` (or ValueError) as the one-line usage error."""
    return OneLineUsageError(str(exc))


def _check_epochs(ctx, param, value):
    try:
        return check_epochs(value)
    except ValueError:
        raise click.BadParameter("a non-empty string of F and B, e.g. FB") from None


def _check_eps(ctx, param, value):
    if value is not None:
        try:
            check_budget(value / 255)
        except ValueError:
            raise click.BadParameter(f"{value:g} rounds to 0 levels of the 8-bit outputs (nothing "
                                     "could change); the smallest budget is 1") from None
    return value


def cascade_args(*, seed_default=None, lr=True):
    """``--eps --n-samples [--lr] --epochs --seed``: the cascade's settings (MCGS.md)."""
    seed_help = "Noise seed." + ("  [default: a fresh one, printed and in the report]"
                                 if seed_default is None else "")
    options = [
        click.option("--eps", type=click.FloatRange(0, 255, min_open=True), callback=_check_eps,
                     help="L-inf budget in 1/255 units; outputs keep within round(EPS) 8-bit "
                          "levels.  [default: the backbone's: 8 for CIFAR-10, 4 for ImageNet]"),
        click.option("--n-samples", type=click.IntRange(min=1), default=defaults.N_SAMPLES,
                     show_default=True, help="Noisy copies per smoothing step."),
        click.option("--epochs", default=defaults.EPOCHS, show_default=True, callback=_check_epochs,
                     help="Epoch sequence, F forward and B backward."),
        click.option("--seed", type=click.IntRange(min=0), default=seed_default,
                     show_default=seed_default is not None, help=seed_help),
    ]
    if lr:
        options.insert(2, click.option("--lr", type=click.FloatRange(0, min_open=True),
                                       default=defaults.LR, show_default=True,
                                       help="Epoch learning rate."))
    return apply(options)


def settings_from(options, label_mode, batch_size=None):
    """The :class:`Settings` of parsed cascade options (eps given in 1/255 units)."""
    eps = options.get("eps")
    return Settings(eps=None if eps is None else eps / 255, n_samples=options["n_samples"],
                    lr=options.get("lr", defaults.LR), epochs=options["epochs"],
                    seed=options["seed"], label_mode=label_mode, batch_size=batch_size)


def warn_over_budget(eps, backbone):
    """Print the warning of an ``--eps`` value (None: not given) over the budget ``backbone`` (its
    model info) was trained for (even with -q)."""
    if eps is not None:
        warning = budget_warning(eps / 255, backbone.eps, backbone.name)
        if warning is not None:
            click.echo(f"warning: {warning}", err=True)


def check_classes(models):
    """Refuse a classifier whose classes differ from the backbone's."""
    if models.classifier is not None and tuple(models.classifier.classes) != tuple(models.backbone.classes):
        raise OneLineUsageError(f"classifier {models.classifier.name} and backbone "
                                f"{models.backbone.name} have different classes")
