"""GPU paths: TensorRT engines (through Polygraphy) and ONNX Runtime's CUDA/TensorRT providers
against ONNX Runtime on the CPU.

They run where Polygraphy, TensorRT (10+) and a GPU exist, or onnxruntime-gpu with a GPU (two of
them need torch with CUDA only), and are skipped with the reason otherwise. Tolerances: fp32 engines with TF32 off, so the CPU
parity bounds (99% identical 8-bit values, max |d| <= 2/255, gradient relative error <= 1e-3);
a graph's signed step may differ by one flipped copy (2 eps / N) where a gradient is near zero.
"""
import re

import numpy as np
import pytest

from mspd_edge.noise import draw_noise
from mspd_edge.pipeline import Settings
from mspd_edge.runtime import trt
from mspd_edge.runtime.cascade import OrtBackend, TrtBackend, cascade
from mspd_edge.measure.compare import Tolerances, compare_graphs, parity
from mspd_edge.runtime.engine_cache import StaleEngineError
from mspd_edge.runtime.gpu import device_count, device_info
from mspd_edge.runtime.runners import OnnxRuntimeRunner, available_providers

from runtime_helpers import model_input

TRT_OK, TRT_WHY = trt.trt_available()
needs_trt = pytest.mark.skipif(not TRT_OK, reason=f"TensorRT path unavailable: {TRT_WHY}")
B, N, EPS = 4, 4, 8 / 255


def _cuda_torch_or_skip():
    torch = trt.cuda_torch()
    if torch is None:
        pytest.skip("torch with CUDA is not importable here")
    return torch


@pytest.mark.gpu
def test_device_facts_match_torch():
    """The GPU name and compute capability the engine cache keys on, read through the CUDA
    runtime Polygraphy loads, agree with torch's (needs torch CUDA only, no TensorRT)."""
    torch = _cuda_torch_or_skip()
    pytest.importorskip("polygraphy", reason="polygraphy (which loads the CUDA runtime) is not installed")
    assert device_count() == torch.cuda.device_count()
    gpu = device_info(0)
    assert gpu["name"] == torch.cuda.get_device_name(0)
    assert gpu["compute_capability"] == "{}.{}".format(*torch.cuda.get_device_capability(0))


@pytest.mark.gpu
def test_cascade_algebra_on_cuda_tensors():
    """The cascade algebra of the TensorRT backend's device path, on torch CUDA tensors, is
    bit-identical to numpy's (needs torch CUDA only)."""
    torch = _cuda_torch_or_skip()
    rng = np.random.default_rng(6)
    x = rng.random((16, 3, 32, 32), dtype=np.float32)
    steps = [rng.random(x.shape, dtype=np.float32) for _ in "FB"]

    def run(to):
        fakes = iter([to(s) for s in steps])
        return cascade(to(x), None, [None, None], eps=EPS, lr=1.0, epochs="FB",
                       smooth_step=lambda c, y, n, e, d: next(fakes))

    on_gpu = run(lambda a: torch.from_numpy(a).cuda()).cpu().numpy()
    assert np.array_equal(on_gpu, run(np.asarray))


def _ort_provider_reason(provider):
    if provider not in available_providers():
        return f"this onnxruntime ({', '.join(available_providers())}) has no {provider} provider"
    if device_count() < 1:
        return "no CUDA device visible (or the CUDA runtime library is missing)"
    return None


def _parity_against_cpu(backend, bundle, images):
    with OrtBackend(bundle, threads=1) as cpu:
        settings = Settings(n_samples=N, seed=2).resolved(cpu)
        records = parity({"ort": cpu, "gpu": backend}, images, settings, "ort")
    assert records[1]["ok"], records[1]["failures"]
    return records[1]


@pytest.mark.gpu
@needs_trt
def test_trt_backend_parity_and_engine_cache(tiny_bundle, cifar_images, tmp_path):
    images = list(cifar_images[0][:8])
    gpu = device_info(0)
    assert gpu["name"] and re.fullmatch(r"\d+\.\d+", gpu["compute_capability"])
    with TrtBackend(tiny_bundle, cache_dir=tmp_path, max_batch=B, n_samples=N) as backend:
        _parity_against_cpu(backend, tiny_bundle, images)
        assert backend.runner("mcgs_step").built        # first use builds...
    with TrtBackend(tiny_bundle, cache_dir=tmp_path, max_batch=B, n_samples=N) as again:
        again.predict(model_input(cifar_images[0][:B]), "classifier")
        assert not again.runner("classifier").built   # ...later ones load the cached engine
    engines = sorted(tmp_path.glob("*.engine"))
    assert engines and all(e.with_suffix(".json").is_file() for e in engines)


def _feeds(graph, x, labels, noise):
    if graph in ("backbone", "classifier"):
        return [{"images": x}]
    if graph == "backbone_grad":
        return [{"images": x, "labels": labels}]
    return [{"center": x, "labels": labels, "noise": noise, "eps": np.array(EPS, np.float32),
             "direction": np.array(sign, np.float32)} for sign in (1.0, -1.0)]


@pytest.mark.gpu
@needs_trt
@pytest.mark.parametrize("graph", ["backbone", "classifier", "backbone_grad", "mcgs_step"])
def test_trt_graphs_match_ort_cpu(graph, tiny_bundle, cifar_images, tmp_path):
    """Polygraphy's Comparator: each engine against ONNX Runtime on the CPU, output by output."""
    x = model_input(cifar_images[0][:B])
    labels = cifar_images[1][:B].astype(np.int64)
    noise = draw_noise(0, N, x.shape, 1)[0]
    shapes = TrtBackend(tiny_bundle, max_batch=B, n_samples=N).profile(graph)
    engine = trt.TrtGraph(tiny_bundle / f"{graph}.onnx", shapes, cache_dir=tmp_path)
    reference = OnnxRuntimeRunner(tiny_bundle / f"{graph}.onnx", threads=1, name="ort-cpu")
    flip = 2 * EPS / N   # one copy's step sign flipped on a near-zero gradient entry
    tolerances = Tolerances(max_rel_err=flip) if graph == "mcgs_step" else Tolerances()
    report = compare_graphs([reference.polygraphy_runner(), engine.polygraphy_runner()],
                            _feeds(graph, x, labels, noise), tolerances)
    assert all(r["ok"] for r in report[engine.name].values()), report


@pytest.mark.gpu
@needs_trt
def test_device_cascade_matches_host_cascade(tiny_bundle, cifar_images, tmp_path, monkeypatch):
    """With torch CUDA the cascade of a part stays on the GPU; it equals the numpy algebra."""
    _cuda_torch_or_skip()
    x = model_input(cifar_images[0][:8])
    labels = cifar_images[1][:8].astype(np.int64)
    noise = draw_noise(5, N, x.shape, 2)
    settings = Settings(eps=EPS, n_samples=N, seed=5)
    with TrtBackend(tiny_bundle, cache_dir=tmp_path, max_batch=B, n_samples=N) as backend:
        on_device = backend.run(x, labels, noise, settings)
        assert backend.runner("mcgs_step").torch is not None
    monkeypatch.setattr(trt, "cuda_torch", lambda: None)
    with TrtBackend(tiny_bundle, cache_dir=tmp_path, max_batch=B, n_samples=N) as backend:
        on_host = backend.run(x, labels, noise, settings)
        assert backend.runner("mcgs_step").torch is None
    diff = np.abs(on_device - on_host)
    assert diff.max() <= 2 * EPS / N + 1e-6 and (diff > 1e-6).mean() < 0.01


@pytest.mark.gpu
@needs_trt
def test_trt_refuses_a_tampered_engine(tiny_bundle, cifar_images, tmp_path):
    x = model_input(cifar_images[0][:2])
    with TrtBackend(tiny_bundle, cache_dir=tmp_path, max_batch=2) as backend:
        want = backend.logits(x, "backbone")
    engine = next(tmp_path.glob("backbone-*.engine"))
    engine.write_bytes(engine.read_bytes()[:-16])     # damaged after it was cached
    with pytest.raises(StaleEngineError):
        TrtBackend(tiny_bundle, cache_dir=tmp_path, max_batch=2, rebuild=False).logits(x, "backbone")
    with TrtBackend(tiny_bundle, cache_dir=tmp_path, max_batch=2) as backend:   # rebuilt
        assert np.allclose(backend.logits(x, "backbone"), want, atol=1e-4)
        assert backend.runner("backbone").built


@pytest.mark.gpu
@pytest.mark.parametrize("provider", ["cuda", "tensorrt"])
def test_ort_gpu_providers(provider, tiny_bundle, cifar_images, tmp_path):
    reason = _ort_provider_reason(provider)
    if reason:
        pytest.skip(reason)
    images = list(cifar_images[0][:8])
    with OrtBackend(tiny_bundle, provider=provider, cache_dir=tmp_path, max_batch=B, n_samples=N) as gpu:
        _parity_against_cpu(gpu, tiny_bundle, images)
    # IOBinding: a device input is used in place, outputs can stay on the device
    with OnnxRuntimeRunner(tiny_bundle / "backbone.onnx", provider="cuda") as runner:
        x = model_input(cifar_images[0][:2])
        on_device = runner.infer({"images": runner.to_device(x)}, copy_outputs_to_host=False)
        host = runner.infer({"images": x})
        assert np.allclose(on_device["logits"].numpy(), host["logits"])
