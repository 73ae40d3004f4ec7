"""``--backend auto``, the default of every command and of both engines: the fastest correct
backend on this machine, chosen by a rule taken from measurements (README "Which backend runs").

Measured with the shipped CIFAR-10 models, 2 threads, whole ``protect`` runs of 200 images
(``benchmarks/under_load.py``), torch with the passive OpenMP wait that mspd-edge sets:

* CPU with native bf16 (Intel Xeon with AMX, 2026-12-07): ORT fp32 57 ms/image, torch bf16 59,
  torch fp32 112 idle; beside two busy processes 89, 97 and 201. Torch bf16 is faster only with
  spinning OpenMP threads (33 ms/image idle), which cost 3-7x beside other work: **ort**.
* CPU without (AMD EPYC Zen 3, AVX2, 2026-12-07): ORT fp32 1.36-1.53x torch fp32, bf16 is
  emulated (slower than fp32): **ort**.
* An explicit precision picks the backend that runs it (bf16/fp16: torch; int8 and fp32: ort).
  ``--model-dir`` (an export) means a runtime backend; a GPU keeps the torch reference unless
  an export is given (TensorRT then); without onnxruntime (or where it cannot run), torch.

The rule is a pure function of the options and the installed engines, so the
same command on the same machine always runs the same backend (and so writes the same bytes),
whichever engine runs the job; the Ray engine resolves it once, on the driver.
"""
import importlib.util

TORCH_PRECISIONS = ("bf16", "fp16")     # autocast precisions: only the torch backend runs them
RUNTIME_PRECISIONS = ("int8",)          # exported graphs: only the runtime backends run them


def _installed(module):
    return importlib.util.find_spec(module) is not None


def choose_backend(options, runnable, *, installed=_installed):
    """The backend ``--backend auto`` runs for ``options`` (a name of the registry).

    ``runnable(name, options)``: why that backend cannot run here, or None
    (:func:`~mspd_edge.backends.registry.unavailable_reason`); ``installed(module)``: whether a
    Python module is installed.
    """
    if options.device == "cuda":
        if options.model_dir is None:
            return "torch"
        return "trt" if runnable("trt", options) is None else "ort"
    if options.model_dir is not None or options.precision in RUNTIME_PRECISIONS:
        return "ort"
    if options.precision in TORCH_PRECISIONS:
        return "torch"
    if installed("onnxruntime") and runnable("ort", options) is None:
        return "ort"
    return "torch"
