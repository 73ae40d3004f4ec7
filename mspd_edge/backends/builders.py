"""The registered backends: the PyTorch reference, ONNX Runtime and TensorRT.

Each builder imports its engine when called, so importing this module stays light; the runtime
ones run an export bundle (``--model-dir``, else the models' cached export, see
:mod:`mspd_edge.backends.exports`) and never import torch when the export is at hand.
"""
import importlib.util

from . import precision as prec
from .registry import BackendError, Models, register_backend
from .exports import load_checked, model_dir_precision, runtime_bundle

TORCH_INSTALL = "pip install 'mspd-edge[torch]'"
ORT_INSTALL = "pip install 'mspd-edge[runtime]'"


def _missing(module, advice):
    if importlib.util.find_spec(module) is None:
        return f"{module} is not installed ({advice})"
    return None


def _check_torch(options):
    why = _missing("torch", TORCH_INSTALL)
    if why is None and options.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            why = "CUDA is not available to torch on this machine (--device cuda)"
    return why or prec.torch_reason(options.precision, options.device)


def _torch_default(options):
    return prec.default_precision("torch", options.device,
                                  lambda p: prec.torch_reason(p, options.device))


@register_backend("torch", summary="the PyTorch reference (mspd_edge.reference)",
                  check=_check_torch, requires=("torch",), default_precision=_torch_default)
def torch_models(options, need_classifier):
    """The reference PyTorch backend for zoo names or checkpoints."""
    import torch

    from ..torch_backend import TorchBackend
    from ..zoo import load_model

    _warn_spin_wait()
    if options.threads:
        torch.set_num_threads(options.threads)
    backbone = load_checked(load_model, options.backbone, "--backbone")
    classifier = None
    if need_classifier:
        name = options.classifier or backbone.info.pair
        if name is None:
            raise BackendError(f"backbone {backbone.info.name} has no paired classifier: pass "
                               "--classifier, or use --labels couple", "--classifier")
        classifier = load_checked(load_model, name, "--classifier")
    backend = TorchBackend(backbone, classifier, options.device, precision=options.precision)
    return Models(backend, backbone.info, None if classifier is None else classifier.info)


def _warn_spin_wait():
    import warnings

    from .. import TORCH_SPIN_WAITS

    if TORCH_SPIN_WAITS:
        warnings.warn("torch was imported before mspd_edge with OpenMP's default spin-wait, which is "
                      "several times slower beside other work: set OMP_WAIT_POLICY=PASSIVE in the "
                      "environment or import mspd_edge first", RuntimeWarning, stacklevel=3)


def _check_ort(options):
    why = _missing("onnxruntime", ORT_INSTALL)
    if why is not None:
        return why
    from ..runtime.runners import ProviderUnavailable, available_providers

    provider = ort_provider(options)
    try:
        offered = available_providers()
    except ProviderUnavailable as exc:
        return str(exc)
    if provider not in offered:
        return (f"this onnxruntime offers {', '.join(offered)}; provider {provider} needs "
                "onnxruntime-gpu (see docs/runtime.md)")
    return prec.ort_reason(options.precision, provider)


def _ort_default(options):
    provider = ort_provider(options)
    return model_dir_precision(options) or prec.default_precision(
        "ort", provider, lambda p: prec.ort_reason(p, provider))


def ort_provider(options):
    """The execution provider: ``--provider``, else cuda with ``--device cuda``, else cpu."""
    return options.provider or ("cuda" if options.device == "cuda" else "cpu")


@register_backend("ort", summary="ONNX Runtime on the exported graphs (no torch at run time)",
                  check=_check_ort, requires=("onnxruntime",), runtime=True,
                  options=("--model-dir", "--provider"), default_precision=_ort_default)
def ort_models(options, need_classifier):
    """The cascade on ONNX Runtime (``mspd_edge.runtime``)."""
    from ..runtime.cascade import OrtBackend

    bundle = runtime_bundle(options, need_classifier)
    extra = {} if options.copies_per_call is None else {"copies_per_call": options.copies_per_call}
    backend = OrtBackend(bundle, provider=ort_provider(options), threads=options.threads,
                         route=options.route, **extra)
    return _runtime_models(backend, bundle, need_classifier)


def _check_trt(options):
    from ..runtime.trt import trt_available

    ok, why = trt_available()
    return prec.trt_reason(options.precision) if ok else why


def _trt_default(options):
    return model_dir_precision(options) or prec.default_precision("trt", "gpu", prec.trt_reason)


@register_backend("trt", summary="TensorRT engines built from the exported graphs (NVIDIA GPUs)",
                  check=_check_trt, requires=("tensorrt", "polygraphy"), runtime=True,
                  options=("--model-dir",), default_precision=_trt_default)
def trt_models(options, need_classifier):
    """The cascade on TensorRT engines (built once per GPU and cached)."""
    from ..runtime.cascade import TrtBackend

    bundle = runtime_bundle(options, need_classifier)
    backend = TrtBackend(bundle, route=options.route, copies_per_call=options.copies_per_call,
                         precision=bundle.precision, log=_note)
    return _runtime_models(backend, bundle, need_classifier)


def _runtime_models(backend, bundle, need_classifier):
    return Models(backend, bundle.meta("backbone"), bundle.meta("classifier") if need_classifier else None)


def _note(line):
    import sys

    print(f"note: {line}", file=sys.stderr)
