"""The export bundle a runtime backend runs: ``--model-dir``, else the models' cached export.

The cache (:mod:`mspd_edge.runtime.exports`) is keyed by the models' weights; finding an export
there needs no torch, making one does (``mspd_edge.export``, once per model pair and weights).
"""
import sys

from ..bundle import Bundle, BundleError, manifest_precision, read_manifest
from ..util import atomic_folder, first_line
from .registry import BackendError

EXPORT_INSTALL = "pip install 'mspd-edge[torch,export]'"


def load_checked(load_model, name, option):
    """``load_model(name)``, with a bad name or checkpoint as a :class:`BackendError`."""
    try:
        return load_model(name)
    except (ValueError, KeyError, OSError, RuntimeError, EOFError) as exc:
        reason = first_line(exc)
        message = reason if reason.startswith(f"{name} ") else f"{name}: {reason}"
        raise BackendError(message, option) from None


def runtime_bundle(options, need_classifier):
    """The :class:`~mspd_edge.bundle.Bundle` for ``options`` (made once when missing):
    ``--model-dir``, which must hold graphs of ``options.precision``, else the cached export of
    the models at that precision. Every graph is checked against its sha256 here, so a bundle
    the runtime refuses is refused before any image is read, with ``mspd-edge check``'s line."""

    folder = options.model_dir
    if folder is None:
        folder = cached_export(options.backbone, options.classifier, need_classifier)
        if options.precision != "fp32":
            folder = cached_reduced(folder, options.precision)
    try:
        bundle = Bundle(folder).verify_all()
    except BundleError as exc:
        raise BackendError(str(exc), "--model-dir") from None
    if bundle.precision != options.precision:
        raise BackendError(f"{folder} holds {bundle.precision} graphs, not {options.precision}: "
                           f"pass --precision {bundle.precision}, or make the bundle with "
                           f"`mspd-edge export --precision {options.precision}`", "--precision")
    if need_classifier and not bundle.has("classifier"):
        raise BackendError(f"{folder} has no classifier graph: use --labels couple (or a "
                           "ground-truth label mode), or export with a classifier", "--model-dir")
    return bundle


def model_dir_precision(options):
    """The precision of the ``--model-dir`` bundle (what ``--precision auto`` means with one),
    or None without a readable one."""
    try:
        return manifest_precision(read_manifest(options.model_dir)) if options.model_dir is not None else None
    except BundleError:
        return None


def cached_reduced(fp32_folder, precision):
    """The ``precision`` bundle made from the cached fp32 export (once; onnx and onnxruntime,
    no torch; int8 calibrates on the default calibration set)."""
    from ..runtime import exports

    folder = exports.reduced_dir(fp32_folder, precision)
    if exports.is_complete(folder):
        return folder
    try:
        from ..calibration.bundle import CalibrationError, reduce_bundle
        from ..calibration.data import calibration_images
    except ImportError as exc:
        raise BackendError(f"making {precision} graphs needs onnx ({EXPORT_INSTALL}): {exc}",
                           "--precision") from None
    print(f"note: making {precision} graphs from {fp32_folder} in {folder} (once)", file=sys.stderr)
    try:
        with atomic_folder(folder) as partial:
            images, image_set = calibration_images() if precision == "int8" else (None, None)
            reduce_bundle(fp32_folder, partial, precision, images, image_set=image_set)
    except (CalibrationError, ValueError, OSError) as exc:
        raise BackendError(f"cannot make {precision} graphs: {exc}", "--precision") from None
    return folder


def cached_export(backbone, classifier, need_classifier):
    """The cached export folder of the models, made in this process when missing.

    The backbone's paired classifier is exported with it whenever it is known, so one export
    serves every label mode.
    """
    from ..runtime import exports

    pair = classifier or exports.paired_classifier(backbone)
    for candidate in ((backbone, pair), (backbone, None)) if pair else ((backbone, None),):
        folder = exports.export_dir(*candidate)
        if exports.is_complete(folder) and (candidate[1] or not need_classifier):
            return folder
    try:
        import torch  # noqa: F401
    except ImportError:
        where = exports.export_dir(backbone, pair) or "the cache"
        raise BackendError(
            f"no export of {backbone} is cached in {where} and making one needs torch "
            f"({EXPORT_INSTALL}): run `mspd-edge export` on a machine with torch and pass its "
            "folder as --model-dir", "--model-dir") from None
    return make_export(backbone, classifier, need_classifier)


def make_export(backbone, classifier, need_classifier):
    """Export the models into the cache (atomically: a partial folder is renamed when done)."""
    from ..export import ExportError, export_bundle
    from ..runtime import exports
    from ..zoo import load_model

    back = load_checked(load_model, backbone, "--backbone")
    classifier = classifier or back.info.pair
    if need_classifier and classifier is None:
        raise BackendError(f"backbone {back.info.name} has no paired classifier: pass "
                           "--classifier, or use --labels couple", "--classifier")
    cls = None
    if classifier:
        try:
            cls = load_checked(load_model, classifier, "--classifier")
        except BackendError:
            if need_classifier:
                raise
            classifier = None   # the pair is not at hand; --labels couple needs none
    folder = exports.export_dir(backbone, classifier)
    if folder is None:
        raise BackendError(f"cannot locate the weights files of {backbone} to key an export "
                           "cache: run `mspd-edge export` and pass the folder as --model-dir",
                           "--model-dir")
    if exports.is_complete(folder):
        return folder
    print(f"note: exporting {backbone}{' + ' + classifier if classifier else ''} to ONNX in "
          f"{folder} (once)", file=sys.stderr)
    try:
        with atomic_folder(folder) as partial:   # replaces an incomplete earlier attempt
            export_bundle(back, partial, classifier=cls)
    except ExportError as exc:
        raise BackendError(f"cannot export {backbone}: {exc}", "--backbone") from None
    return folder
