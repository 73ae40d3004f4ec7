"""The TensorRT path without TensorRT or a GPU: what Polygraphy is handed (a strongly typed
network, the profiles, no precision flags, TF32 cleared), the engine keys, the profiles of the
cascade's graphs, the cached-engine loader's rebuild rules, the CUDA device facts, and the
one-line reason the path is off."""
import ctypes
import inspect
import sys
import types

import pytest

from mspd_edge.runtime import gpu, trt
from mspd_edge.bundle import SIGNATURES
from mspd_edge.runtime.cascade import TrtBackend
from mspd_edge.runtime.engine_cache import EngineCache, StaleEngineError
from mspd_edge.runtime.profiles import graph_profile
from mspd_edge.runtime.runners import ProviderUnavailable

B, N, CHW = 4, 6, (3, 32, 32)
GPU = {"name": "NVIDIA H200", "compute_capability": "9.0"}


def profile(graph, batch=B, n_samples=N):
    return graph_profile(SIGNATURES[graph], graph, max_batch=batch, n_samples=n_samples,
                         input_size=CHW, num_classes=10)


def ranges(low, high, *rest):
    """``(min, opt, max)`` with the optimum at the maximum."""
    return ((low, *rest), (high, *rest), (high, *rest))


def test_profiles_of_the_cascade_graphs():
    for graph in ("backbone", "classifier"):
        assert profile(graph) == {"images": ranges(1, B, *CHW)}
    assert profile("backbone_grad") == {"images": ranges(1, B * N, *CHW), "labels": ranges(1, B * N)}
    step = profile("mcgs_step")
    assert step == {"center": ranges(1, B, *CHW), "labels": ranges(1, B),
                    "noise": ((1, 1, *CHW), (N, B, *CHW), (N, B, *CHW))}   # eps, direction: static
    assert profile("mcgs_step", batch=1, n_samples=20)["noise"][2] == (20, 1, *CHW)


@pytest.fixture
def trapped_tensorrt(monkeypatch):
    """A ``tensorrt`` module that fails on any use: the code under test must not call TensorRT."""
    class Trap(types.ModuleType):
        def __getattr__(self, name):
            if name.startswith("__"):
                raise AttributeError(name)
            raise AssertionError(f"TensorRT was used: tensorrt.{name}")

    monkeypatch.setitem(sys.modules, "tensorrt", Trap("tensorrt"))


@pytest.mark.parametrize("tf32", [False, True])
def test_polygraphy_build_settings(trapped_tensorrt, tmp_path, tf32):
    """Strongly typed, one profile, TF32 only when asked, and none of the weak-typing precision
    flags TensorRT 11 removed (precision comes from the graph's types, whatever the bundle's)."""
    onnx_path, shapes = tmp_path / "mcgs_step.onnx", profile("mcgs_step")
    network, config = trt.build_settings(onnx_path, shapes, tf32=tf32)
    assert network.strongly_typed is True and network.path == str(onnx_path)
    assert config.tf32 is tf32
    assert not any((config.fp16, config.bf16, config.int8, config.fp8, config.calibrator))
    assert config.precision_constraints is None
    (built,) = config.profiles
    assert {name: tuple(built[name]) for name in built} == shapes


def key(**changes):
    fields = dict(precision="fp32", tf32=False, tensorrt_version="10.8.0", gpu=GPU)
    fields.update(changes)
    return trt.engine_key("a" * 64, profile("mcgs_step"), **fields)


@pytest.mark.parametrize("change", [{"precision": "fp16"}, {"tf32": True},
                                    {"tensorrt_version": "11.0.0"},
                                    {"gpu": {"name": "Orin", "compute_capability": "8.7"}},
                                    {"gpu": {"name": "NVIDIA H200", "compute_capability": "9.1"}}])
def test_engine_keys(change):
    base = key()
    assert (base.precision, base.tf32, base.tensorrt_version) == ("fp32", False, "10.8.0")
    assert (base.gpu_name, base.compute_capability) == ("NVIDIA H200", "9.0")
    assert dict((name, shapes) for name, *shapes in base.profile)["noise"][2] == (N, B, *CHW)
    assert key(**change).digest() != base.digest()
    other_profile = trt.engine_key("a" * 64, profile("mcgs_step", batch=B + 1), precision="fp32",
                                   tf32=False, tensorrt_version="10.8.0", gpu=GPU)
    assert other_profile.digest() != base.digest()


@pytest.fixture
def fake_polygraphy_engines(monkeypatch):
    """TensorRT's part faked: its version, the GPU, and ``EngineFromBytes`` (which refuses the
    bytes b"refused"). Returns the list of engines built."""
    from polygraphy.backend import trt as polygraphy_trt
    from polygraphy.exception import PolygraphyException

    class FromBytes:
        def __init__(self, data):
            self.data = data

        def __call__(self):
            if self.data == b"refused":
                raise PolygraphyException("could not deserialize")
            return ("engine", self.data)

    built = []

    def build(self):
        built.append(self.precision)
        return f"engine {len(built)}".encode()

    monkeypatch.setattr(trt, "tensorrt", lambda: types.SimpleNamespace(__version__="10.8.0"))
    monkeypatch.setattr(trt, "device_info", lambda device_id: GPU)
    monkeypatch.setattr(trt, "set_device", lambda device_id: None)
    monkeypatch.setattr(trt.CachedEngine, "build", build)
    monkeypatch.setattr(polygraphy_trt, "EngineFromBytes", FromBytes)
    return built


def test_cached_engine_builds_once_per_key(fake_polygraphy_engines, tmp_path):
    def engine(**options):
        return trt.CachedEngine(tmp_path / "mcgs_step.onnx", profile("mcgs_step"), onnx_sha256="a" * 64,
                                cache_dir=tmp_path / "engines", **options)

    first = engine()
    assert first() == ("engine", b"engine 1") and first.built
    again = engine()
    assert again() == ("engine", b"engine 1") and not again.built
    assert engine(precision="fp16")() == ("engine", b"engine 2")
    assert fake_polygraphy_engines == ["fp32", "fp16"]
    stored = sorted(p.name for p in (tmp_path / "engines").glob("mcgs_step-*"))
    assert len(stored) == 4    # two engines, each with its key sidecar


def test_refused_engine_is_rebuilt_or_reported(fake_polygraphy_engines, tmp_path):
    loader = trt.CachedEngine(tmp_path / "backbone.onnx", profile("backbone"), onnx_sha256="b" * 64,
                              cache_dir=tmp_path)
    EngineCache(tmp_path).store("backbone", loader.key(), b"refused")   # e.g. after a driver update
    strict = trt.CachedEngine(tmp_path / "backbone.onnx", profile("backbone"), onnx_sha256="b" * 64,
                              cache_dir=tmp_path, rebuild=False)
    with pytest.raises(StaleEngineError, match="refused"):
        strict()
    assert loader() == ("engine", b"engine 1") and loader.built
    assert EngineCache(tmp_path).load("backbone", loader.key()) == b"engine 1"


def test_trt_backend_keywords():
    params = inspect.signature(TrtBackend).parameters
    assert {"bundle", "device_id", "max_batch", "n_samples", "cache_dir", "route", "max_copy_values",
            "copies_per_call", "rebuild", "log", "verify", "precision", "tf32"} == set(params)
    assert params["precision"].default == "fp32" and params["tf32"].default is False


def test_trt_backend_profiles_and_precision(tiny_bundle, monkeypatch):
    """The profiles a TrtBackend hands TensorRT for the exported graphs, grown for more copies;
    a precision the bundle's graphs do not have is refused (no engine is built for either)."""
    monkeypatch.setattr(trt, "trt_available", lambda: (True, ""))
    backend = TrtBackend(tiny_bundle, max_batch=B, n_samples=N)
    for graph in ("backbone", "classifier", "backbone_grad", "mcgs_step"):
        assert backend.profile(graph) == profile(graph)
    backend.prepare(N + 2)
    assert backend.profile("mcgs_step")["noise"][2] == (N + 2, B, *CHW)
    assert backend.route == "step" and backend.images_per_call(N) <= B
    with pytest.raises(ValueError, match="precision 'fp16' asked.*'fp32'"):
        TrtBackend(tiny_bundle, precision="fp16")


@pytest.mark.skipif(trt.trt_available()[0], reason="TensorRT, Polygraphy and a GPU are all here")
def test_unavailable_reason_is_one_line(tiny_bundle):
    ok, why = trt.trt_available()
    assert not ok and why and "\n" not in why
    with pytest.raises(ProviderUnavailable) as error:
        TrtBackend(tiny_bundle)
    assert str(error.value) == why
    print(f"TensorRT path off here: {why}")


class FakeCudart:
    """The few ``libcudart`` functions :mod:`~mspd_edge.runtime.gpu` calls, as ctypes would."""

    def __init__(self, devices=1, status=0):
        self.devices, self.status, self.current = devices, status, None

    def cudaGetDeviceCount(self, count):
        count._obj.value = self.devices
        return self.status

    def cudaSetDevice(self, device):
        self.current = device.value
        return self.status

    def cudaGetDeviceProperties_v2(self, props, device):
        ctypes.memmove(props, b"NVIDIA H200\0garbage", 19)
        return self.status

    def cudaDeviceGetAttribute(self, value, attribute, device):
        value._obj.value = {gpu.ATTR_COMPUTE_CAPABILITY_MAJOR: 9,
                            gpu.ATTR_COMPUTE_CAPABILITY_MINOR: 0}[attribute]
        return self.status


def test_device_facts_through_the_cuda_runtime(monkeypatch):
    cudart = FakeCudart()
    monkeypatch.setattr(gpu, "_cudart", lambda: cudart)
    assert gpu.device_count() == 1 and gpu.device_info(0) == GPU
    gpu.set_device(0)
    assert cudart.current == 0
    cudart.status = 100   # cudaErrorNoDevice
    assert gpu.device_count() == 0
    with pytest.raises(gpu.CudaUnavailable, match="cudaSetDevice failed with CUDA error 100"):
        gpu.set_device(0)
