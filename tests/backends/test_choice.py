"""``--backend auto``: the measured rule, on the flags of the two CPUs it was measured on, and
the real build on this machine."""
import pytest

from mspd_edge.backends import BackendOptions, build_backend, resolve_backend, unavailable_reason
from mspd_edge.backends.choice import choose_backend
from mspd_edge.backends.precision import cpu_flags

XEON = frozenset({"avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"})   # native bf16
ZEN3 = frozenset({"avx2", "fma", "f16c"})                                       # AVX2 only


def runs_everything(name, options):
    return None


def choose(flags, installed=("torch", "onnxruntime"), runnable=runs_everything, **options):
    return choose_backend(BackendOptions(precision="auto").but(**options), runnable, flags=flags,
                          installed=lambda module: module in installed)


def test_native_bf16_runs_torch_and_avx2_runs_ort():
    assert choose(XEON) == "torch"
    assert choose(ZEN3) == "ort"


def test_an_explicit_precision_picks_the_backend_that_runs_it():
    for flags in (XEON, ZEN3):
        assert choose(flags, precision="fp32") == "ort"
        assert choose(flags, precision="int8") == "ort"
        assert choose(flags, precision="bf16") == "torch"
        assert choose(flags, precision="fp16") == "torch"


def test_what_is_installed_or_runnable_decides_the_rest():
    assert choose(XEON, installed=("onnxruntime",)) == "ort"       # a device without torch
    assert choose(ZEN3, installed=("torch",)) == "torch"           # no onnxruntime
    no_ort = lambda name, options: "no" if name == "ort" else None
    assert choose(ZEN3, runnable=no_ort) == "torch"


def test_an_export_or_a_gpu():
    assert choose(XEON, model_dir="exports/cifar10") == "ort"
    assert choose(XEON, device="cuda") == "torch"
    assert choose(XEON, device="cuda", model_dir="exports/cifar10") == "trt"
    no_trt = lambda name, options: "no" if name == "trt" else None
    assert choose(XEON, device="cuda", model_dir="x", runnable=no_trt) == "ort"


def test_auto_builds_the_chosen_backend_here():
    options = BackendOptions(precision="auto", threads=1)
    name = resolve_backend("auto", options)
    assert name == choose_backend(options, unavailable_reason, flags=cpu_flags())
    if unavailable_reason(name, options) is not None:
        pytest.skip(f"{name} cannot run here")
    models = build_backend("auto", options, need_classifier=False)
    assert models.backend.name == name
