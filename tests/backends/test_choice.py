"""``--backend auto``: the measured rule, and the real build on this machine."""
import pytest

from mspd_edge.backends import BackendOptions, build_backend, resolve_backend, unavailable_reason
from mspd_edge.backends.choice import choose_backend


def runs_everything(name, options):
    return None


def choose(installed=("torch", "onnxruntime"), runnable=runs_everything, **options):
    return choose_backend(BackendOptions(precision="auto").but(**options), runnable,
                          installed=lambda module: module in installed)


def test_a_cpu_runs_ort():
    assert choose() == "ort"
    assert choose(precision="fp32") == "ort"


def test_an_explicit_precision_picks_the_backend_that_runs_it():
    assert choose(precision="int8") == "ort"
    assert choose(precision="bf16") == "torch"
    assert choose(precision="fp16") == "torch"


def test_what_is_installed_or_runnable_decides_the_rest():
    assert choose(installed=("onnxruntime",)) == "ort"             # a device without torch
    assert choose(installed=("torch",)) == "torch"                 # no onnxruntime
    no_ort = lambda name, options: "no" if name == "ort" else None
    assert choose(runnable=no_ort) == "torch"


def test_an_export_or_a_gpu():
    assert choose(model_dir="exports/cifar10") == "ort"
    assert choose(device="cuda") == "torch"
    assert choose(device="cuda", model_dir="exports/cifar10") == "trt"
    no_trt = lambda name, options: "no" if name == "trt" else None
    assert choose(device="cuda", model_dir="x", runnable=no_trt) == "ort"


def test_auto_builds_the_chosen_backend_here():
    options = BackendOptions(precision="auto", threads=1)
    name = resolve_backend("auto", options)
    assert name == choose_backend(options, unavailable_reason)
    if unavailable_reason(name, options) is not None:
        pytest.skip(f"{name} cannot run here")
    with build_backend("auto", options, need_classifier=False).backend as backend:
        assert backend.name == name
