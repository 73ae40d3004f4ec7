"""Which precisions each backend runs, on which hardware, and the measured default.

``--precision`` is one backend option (:class:`~mspd_edge.backends.registry.BackendOptions`):
``fp32``, ``bf16``, ``fp16``, ``int8`` or ``auto`` (:data:`DEFAULTS`). Reduced precision
applies to the network inside the cascade's gradient passes (40 of the 41 network passes of an
image at N=20); the label pass and the cascade's own arithmetic (noise, clip, projection,
averaging, 8-bit budget) stay float32 on every backend.

* torch: autocast bf16 on a CPU with native bf16 (AVX512_BF16 or AMX-BF16; elsewhere oneDNN
  emulates it, slower than fp32) and fp16 on a CPU with AMX-FP16 (AVX512-FP16 alone measured
  no faster than fp32), bf16/fp16 on CUDA.
* ort: the export bundle of that precision (``mspd-edge export --precision``): int8 on the CPU
  and TensorRT providers, fp16 on the CUDA and TensorRT providers.
* trt: fp16 and int8 bundles (strongly typed networks build what the graph's types say).
"""
from pathlib import Path

PRECISIONS = ("fp32", "bf16", "fp16", "int8")
AUTO = "auto"
CHOICES = (AUTO, *PRECISIONS)
GRAPH_PRECISIONS = ("fp32", "fp16", "int8")   # what an export bundle can hold

# The default of ``--precision auto`` per (backend, where): the fastest precision whose robust
# gain stayed within 1 point of fp32 and that measured at least 1.5x fp32 (README "Precision");
# fp32 where none did or nothing was measured. ``where``: the torch device, the ORT provider,
# "gpu" for TensorRT. A default this machine cannot run falls back to fp32.
DEFAULTS = {("torch", "cpu"): "bf16", ("torch", "cuda"): "fp32", ("ort", "cpu"): "fp32",
            ("ort", "cuda"): "fp32", ("ort", "tensorrt"): "fp32", ("trt", "gpu"): "fp32"}

CPUINFO = Path("/proc/cpuinfo")
_NATIVE = {"bf16": ("avx512_bf16", "amx_bf16", "bf16"),   # x86 AVX-512/AMX; "bf16": Arm v8.6
           "fp16": ("amx_fp16",)}
_WHY = {"bf16": "needs AVX512_BF16 or AMX-BF16, which this CPU lacks (oneDNN would emulate bf16, "
                "slower than fp32): use --precision fp32",
        "fp16": "needs AMX-FP16, which this CPU lacks (with AVX512-FP16 alone, fp16 autocast "
                "measured no faster than fp32): use --precision bf16 or fp32"}


def cpu_flags(cpuinfo=CPUINFO):
    """The CPU feature flags of ``/proc/cpuinfo`` (an empty set where it cannot be read)."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def cpu_reason(precision, flags=None):
    """Why this CPU cannot run torch ``precision`` natively (one line), or None when it can."""
    if precision not in _NATIVE:
        return None
    flags = cpu_flags() if flags is None else flags
    if flags & set(_NATIVE[precision]):
        return None
    return f"--precision {precision} on the CPU {_WHY[precision]}"


def torch_reason(precision, device, flags=None):
    """Why the torch backend cannot run ``precision`` on ``device``, or None."""
    if precision == "int8":
        return ("int8 runs on the runtime backends (ort, trt): export with "
                "`mspd-edge export --precision int8` and use --backend ort or trt")
    if device == "cpu":
        return cpu_reason(precision, flags)
    if precision == "bf16":
        import torch

        if not torch.cuda.is_bf16_supported():
            return "--precision bf16 needs a CUDA GPU with bf16 (compute capability 8.0+): use fp16"
    return None


def ort_reason(precision, provider):
    """Why ONNX Runtime's ``provider`` cannot run ``precision`` graphs, or None."""
    if precision == "bf16":
        return ("bf16 is a torch precision (autocast): the runtime backends take fp16 graphs "
                "(GPU) or int8 graphs")
    if precision == "fp16" and provider == "cpu":
        return ("onnxruntime's CPU provider runs fp16 graphs no faster than fp32 (Casts around "
                "its kernels, measured 1.0x): use fp32 or int8 on the CPU, fp16 with --provider "
                "cuda or tensorrt, or --backend trt")
    if precision == "int8" and provider == "cuda":
        return ("onnxruntime's CUDA provider has no int8 convolutions: use --provider tensorrt "
                "or --backend trt for int8")
    return None


def trt_reason(precision):
    """Why TensorRT cannot run ``precision``, or None."""
    if precision == "bf16":
        return "bf16 graphs are not exported: TensorRT takes fp32, fp16 or int8 bundles"
    return None


def export_reason(precision):
    """Why ``mspd-edge export`` cannot write ``precision`` graphs, or None."""
    if precision not in GRAPH_PRECISIONS:
        return (f"{precision} graphs are not exported (bf16 is torch autocast): use one of "
                f"{', '.join(GRAPH_PRECISIONS)}")
    return None


def default_precision(backend, where, runnable):
    """``DEFAULTS[(backend, where)]`` when ``runnable(precision)`` (no reason given), else fp32."""
    chosen = DEFAULTS.get((backend, where), "fp32")
    return chosen if chosen == "fp32" or runnable(chosen) is None else "fp32"
