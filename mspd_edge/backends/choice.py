"""``--backend auto``, the default of every command and of both engines: the fastest correct
backend on this machine, chosen by a rule taken from measurements (README "Which backend runs").

Measured with the shipped CIFAR-10 models, 2 threads, fp32 torch as the yardstick:

* CPU with native bf16 (AVX512_BF16 or AMX-BF16; Intel Xeon, 2026-12-02): torch bf16 2.10x
  torch fp32, ORT fp32 1.10x: **torch** (its ``auto`` precision is bf16 there).
* CPU without (AMD EPYC Zen 3, AVX2, 2026-12-07): ORT fp32 1.36-1.53x torch fp32, bf16 is
  emulated (slower than fp32): **ort**.
* An explicit precision picks the backend that runs it (bf16/fp16: torch; int8: ort); fp32 is
  ORT's (its fp32 was at least torch's on both CPUs). ``--model-dir`` (an export) means a
  runtime backend; a GPU keeps the torch reference unless an export is given (TensorRT then).

The rule is a pure function of the options, the installed engines and the CPU's flags, so the
same command on the same machine always runs the same backend (and so writes the same bytes),
whichever engine runs the job; the Ray engine resolves it once, on the driver.
"""
import importlib.util

from .precision import AUTO, cpu_reason

TORCH_PRECISIONS = ("bf16", "fp16")     # autocast precisions: only the torch backend runs them
RUNTIME_PRECISIONS = ("int8",)          # exported graphs: only the runtime backends run them


def _installed(module):
    return importlib.util.find_spec(module) is not None


def choose_backend(options, runnable, *, flags=None, installed=_installed):
    """The backend ``--backend auto`` runs for ``options`` (a name of the registry).

    ``runnable(name, options)``: why that backend cannot run here, or None
    (:func:`~mspd_edge.backends.registry.unavailable_reason`); ``flags``: the CPU's flags
    (default: this CPU's); ``installed(module)``: whether a Python module is installed.
    """
    if options.device == "cuda":
        if options.model_dir is None:
            return "torch"
        return "trt" if runnable("trt", options) is None else "ort"
    if options.model_dir is not None or options.precision in RUNTIME_PRECISIONS:
        return "ort"
    if options.precision in TORCH_PRECISIONS:
        return "torch"
    native_bf16 = cpu_reason("bf16", flags) is None
    if options.precision == AUTO and native_bf16 and installed("torch"):
        return "torch"
    if installed("onnxruntime") and runnable("ort", options) is None:
        return "ort"
    return "torch"
