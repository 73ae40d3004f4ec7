"""GPU paths: TensorRT engines and ONNX Runtime's CUDA/TensorRT providers against the CPU.

They run where TensorRT (10+), cuda-python and a GPU exist, or onnxruntime-gpu with a GPU,
and are skipped with the reason otherwise (this CPU build machine has none of them).
Tolerances: fp32 engines with TF32 off, so the same bounds as the CPU parity (99% identical
8-bit values, max |d| <= 2/255) with gradient relative error <= 1e-3.
"""
import numpy as np
import pytest

from mspd_edge.pipeline import Settings
from mspd_edge.runtime.cascade import OrtBackend, TrtBackend
from mspd_edge.runtime.compare import parity
from mspd_edge.runtime.cuda_buffers import device_count
from mspd_edge.runtime.engine_cache import EngineCache
from mspd_edge.runtime.runners import OnnxRuntimeRunner, available_providers
from mspd_edge.runtime.trt import trt_available

from runtime_helpers import model_input

TRT_OK, TRT_WHY = trt_available()
needs_trt = pytest.mark.skipif(not TRT_OK, reason=f"TensorRT runner unavailable: {TRT_WHY}")


def _ort_provider_reason(provider):
    if provider not in available_providers():
        return f"this onnxruntime ({', '.join(available_providers())}) has no {provider} provider"
    if device_count() < 1:
        return "no CUDA device visible (or cuda-python missing)"
    return None


def _parity_against_cpu(backend, bundle, images):
    with OrtBackend(bundle, threads=1) as cpu:
        settings = Settings(n_samples=4, seed=2).resolved(cpu)
        records = parity({"ort": cpu, "gpu": backend}, images, settings, "ort")
    assert records[1]["ok"], records[1]["failures"]
    return records[1]


@pytest.mark.gpu
@needs_trt
def test_trt_backend_parity_and_engine_cache(tiny_bundle, cifar_images, tmp_path):
    images = list(cifar_images[0][:8])
    with TrtBackend(tiny_bundle, cache_dir=tmp_path, max_batch=4, n_samples=4) as trt:
        _parity_against_cpu(trt, tiny_bundle, images)
        assert trt.runner("mcgs_step").built        # first use builds...
    with TrtBackend(tiny_bundle, cache_dir=tmp_path, max_batch=4, n_samples=4) as again:
        again.predict(model_input(cifar_images[0][:4]), "classifier")
        assert not again.runner("classifier").built   # ...later ones load the cached engine
    engines = sorted(tmp_path.glob("*.engine"))
    assert engines and all(e.with_suffix(".json").is_file() for e in engines)


@pytest.mark.gpu
@needs_trt
def test_trt_refuses_a_tampered_engine(tiny_bundle, cifar_images, tmp_path):
    from mspd_edge.runtime.engine_cache import StaleEngineError

    x = model_input(cifar_images[0][:2])
    with TrtBackend(tiny_bundle, cache_dir=tmp_path, max_batch=2) as trt:
        want = trt.logits(x, "backbone")
    engine = next(tmp_path.glob("backbone-*.engine"))
    engine.write_bytes(engine.read_bytes()[:-16])     # damaged after it was cached
    with pytest.raises(StaleEngineError):
        TrtBackend(tiny_bundle, cache_dir=tmp_path, max_batch=2, rebuild=False).logits(x, "backbone")
    with TrtBackend(tiny_bundle, cache_dir=tmp_path, max_batch=2) as trt:   # rebuilt
        assert np.allclose(trt.logits(x, "backbone"), want, atol=1e-4)
        assert trt.runner("backbone").built
    assert EngineCache(tmp_path).root == tmp_path


@pytest.mark.gpu
@pytest.mark.parametrize("provider", ["cuda", "tensorrt"])
def test_ort_gpu_providers(provider, tiny_bundle, cifar_images, tmp_path):
    reason = _ort_provider_reason(provider)
    if reason:
        pytest.skip(reason)
    images = list(cifar_images[0][:8])
    with OrtBackend(tiny_bundle, provider=provider, cache_dir=tmp_path, max_batch=4, n_samples=4) as gpu:
        _parity_against_cpu(gpu, tiny_bundle, images)
    # IOBinding: a device input is used in place, outputs can stay on the device
    with OnnxRuntimeRunner(tiny_bundle / "backbone.onnx", provider="cuda") as runner:
        x = model_input(cifar_images[0][:2])
        on_device = runner.infer({"images": runner.to_device(x)}, copy_outputs_to_host=False)
        host = runner.infer({"images": x})
        assert np.allclose(on_device["logits"].numpy(), host["logits"])
