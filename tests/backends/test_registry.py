"""The backend registry: what each backend needs, why it cannot run, and real builds."""
import numpy as np
import pytest

from mspd_edge.backends import (BACKENDS, BackendError, BackendOptions, backend_names, build_backend,
                                get_backend, unavailable_reason)
from mspd_edge.backends.specs import available_specs, parse_specs, spec_backend
from mspd_edge.pipeline import Settings, protect_images
from mspd_edge.runtime.runners import available_providers
from mspd_edge.runtime.trt import trt_available


def test_every_backend_is_registered_with_what_it_needs():
    assert backend_names() == ["ort", "torch", "trt", "auto"]
    assert get_backend("torch").requires == ("torch",) and not get_backend("torch").runtime
    assert get_backend("ort").runtime and "--model-dir" in get_backend("ort").options
    assert set(BACKENDS) == set(backend_names()) - {"auto"}


def test_unknown_names_and_options_are_one_line_reasons():
    with pytest.raises(BackendError, match="unknown backend 'foo': use one of ort, torch, trt, auto") as exc:
        get_backend("foo")
    assert exc.value.option == "--backend"
    assert "unknown device" in unavailable_reason("torch", BackendOptions(device="tpu"))
    assert "unknown route" in unavailable_reason("ort", BackendOptions(route="fast"))
    why = unavailable_reason("torch", BackendOptions(provider="cuda"))
    assert why == "--provider goes with --backend ort"
    for name in BACKENDS:
        reason = unavailable_reason(name, BackendOptions())
        assert reason is None or "\n" not in reason


def test_what_cannot_run_here_says_why():
    if not trt_available()[0]:
        with pytest.raises(BackendError, match="--backend trt: ") as exc:
            build_backend("trt", BackendOptions(model_dir="unused"))
        assert "\n" not in str(exc.value)
    if "cuda" not in available_providers():
        why = unavailable_reason("ort", BackendOptions(provider="cuda"))
        assert "onnxruntime-gpu" in why
    import torch

    if not torch.cuda.is_available():
        assert "CUDA is not available" in unavailable_reason("torch", BackendOptions(device="cuda"))


def test_torch_and_ort_build_and_agree(tiny_zoo, tiny_bundle, cifar10):
    """Both backends from the registry protect real images; outputs within the parity tolerance."""
    images = list(cifar10[0][:3])
    options = BackendOptions(backbone=str(tiny_zoo["tiny-back"]), classifier=str(tiny_zoo["tiny-cls"]),
                             threads=1)
    torch_models = build_backend("torch", options)
    ort_models = build_backend("ort", options.but(model_dir=tiny_bundle))
    assert torch_models.backbone.name == ort_models.backbone.name == "tiny-back"
    assert ort_models.classifier.name == "tiny-cls"
    outputs = []
    for models in (torch_models, ort_models):
        settings = Settings(n_samples=2, seed=4).resolved(models.backend)
        outputs.append(np.stack([out for _, out, _ in protect_images(images, models.backend, settings)]))
    diff = np.abs(outputs[0].astype(int) - outputs[1])
    assert diff.max() <= 2 and (diff == 0).mean() >= 0.99   # the parity tolerance (README)


def test_a_bad_checkpoint_names_the_file(tmp_path):
    bad = tmp_path / "not-a-model.pt"
    bad.write_bytes(b"<!DOCTYPE html><html>quota exceeded</html>")
    with pytest.raises(BackendError) as exc:
        build_backend("torch", BackendOptions(backbone=str(bad)))
    assert str(bad) in str(exc.value) and exc.value.option == "--backbone"
    assert "\n" not in str(exc.value)


def test_specs_of_parity_and_bench():
    assert parse_specs("torch, ort:grad,ort-cuda") == ["torch", "ort:grad", "ort-cuda"]
    for bad in ("torch:grad", "ort:fast", "onnx", "ort,ort", ""):
        with pytest.raises(BackendError):
            parse_specs(bad)
    name, opts = spec_backend("ort-cuda:grad", BackendOptions())
    assert name == "ort" and opts.provider == "cuda" and opts.route == "grad"
    specs = available_specs(BackendOptions())
    assert specs[:2] == ["torch", "ort"] and ("ort-cuda" in specs) == ("cuda" in available_providers())
