"""The argument group of ``parity`` and ``bench``: backends compared on the same images."""
import os
from pathlib import Path

import click


from ..backends import BackendError, unavailable_reason
from ..backends.exports import runtime_bundle
from ..backends.specs import parse_specs, spec_backend
from ..io import ImageError
from .args import apply, backend_args, backend_options, build_models, cascade_args, usage_error

compare_args = apply([
    backend_args(backend=False),
    click.option("--labels", type=click.Choice(["classifier", "couple"]), default="classifier",
                 show_default=True, help="Labels from the classifier or the backbone."),
    cascade_args(seed_default=0, lr=False),
    click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
                 help="Also write the results as JSON."),
])


def checked_specs(value):
    """``--backends`` parsed (:func:`parse_specs`), a malformed value as a usage error."""
    try:
        return parse_specs(value)
    except BackendError as exc:
        raise click.BadParameter(str(exc), param_hint="--backends") from None


def default_threads():
    """The CPUs this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def resolved_options(specs, options, need_classifier):
    """The :class:`BackendOptions`; each runtime spec's export (one per precision) is made here
    when missing, so that the measured processes find it in the cache."""
    backend_opts = backend_options(options)
    for spec in specs:
        name, opts = spec_backend(spec, backend_opts)
        if name != "torch" and backend_opts.model_dir is None and unavailable_reason(name, opts) is None:
            try:
                runtime_bundle(opts, need_classifier)
            except BackendError as exc:
                raise usage_error(exc) from None
    return backend_opts


def spec_models(spec, options, need_classifier):
    """Models for one spec (``ort-cuda:grad`` ...); the backend is named after ``spec``."""
    name, opts = spec_backend(spec, options)
    models = build_models(name, opts, need_classifier)
    models.backend.name = spec
    return models


def load_image_set(source, limit):
    """The images of ``source`` (npz, folder, glob or file), at most ``limit``."""
    from ..data import load_images

    try:
        images = load_images(source, limit)
    except (OSError, ValueError, ImageError) as exc:
        raise click.BadParameter(f"{source}: {exc}", param_hint="IMAGES/--data") from None
    if not images:
        raise click.UsageError(f"no images found in {source}")
    return images


