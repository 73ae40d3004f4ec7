"""The TensorRT runner: builds (or loads from the engine cache) and runs one exported graph.

TensorRT 10+ Python API only: name-based I/O tensors (``num_io_tensors``,
``get_tensor_name``/``mode``/``dtype``), ``build_serialized_network``, one optimisation
profile over the dynamic dimensions, ``set_input_shape``, ``set_tensor_address`` and
``execute_async_v3``. Networks are created strongly typed (the flag is required for strong
typing on 10.x and is the only mode on 11.x): an fp32 graph gives an fp32 engine. FP16 on
TensorRT 10 uses the weak-typing ``BuilderFlag.FP16``; TensorRT 11 removed that flag, so there
FP16 needs an FP16 graph (ModelOpt AutoCast) and ``fp16=True`` is refused with that advice.
TF32 is cleared unless asked for: it changes the sign of near-zero gradients and so the
protected image (see docs/runtime.md, parity).

``tensorrt`` and cuda-python are imported when a runner is activated, never at import time.
"""
import os

import numpy as np

from . import cuda_buffers as cb
from .engine_cache import EngineCache, EngineKey, profile_key
from .runners import ProviderUnavailable, Runner, TensorMeta

DEFAULT_WORKSPACE = 1 << 30


def tensorrt():
    """The ``tensorrt`` module; :class:`ProviderUnavailable` with install advice when absent."""
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise ProviderUnavailable(
            "TensorRT's Python bindings are not installed: on a Jetson they come with JetPack "
            "(apt install python3-libnvinfer; in a venv use --system-site-packages), on a "
            "desktop GPU pip install tensorrt") from exc
    major = int(trt.__version__.split(".")[0])
    if major < 10:
        raise ProviderUnavailable(f"TensorRT {trt.__version__} found; the runner needs 10 or newer")
    return trt


def trt_available():
    """``(True, "")`` when TensorRT, cuda-python and a GPU are present, else ``(False, why)``."""
    try:
        tensorrt()
        cb.cudart()
    except (ProviderUnavailable, cb.CudaUnavailable) as exc:
        return False, str(exc)
    if cb.device_count() < 1:
        return False, "no CUDA device visible"
    return True, ""


class _Logger:
    _instance = None

    @classmethod
    def get(cls, trt):
        if cls._instance is None:
            cls._instance = trt.Logger(trt.Logger.WARNING)
        return cls._instance


def build_engine(onnx_path, profile, *, fp16=False, tf32=False, workspace=DEFAULT_WORKSPACE):
    """Serialized engine bytes for ``onnx_path`` with one profile ``{input: (min, opt, max)}``."""
    trt = tensorrt()
    logger = _Logger.get(trt)
    builder = trt.Builder(logger)
    major = int(trt.__version__.split(".")[0])
    weak_fp16 = fp16 and hasattr(trt.BuilderFlag, "FP16")
    if fp16 and not weak_fp16:
        raise ProviderUnavailable(
            f"TensorRT {trt.__version__} has no FP16 builder flag (strong typing only): convert "
            "the graph to FP16 first (python -m modelopt.onnx.autocast) and build that")
    flags = 0
    if not weak_fp16:   # strongly typed: the graph's types decide (fp32 export -> fp32 engine)
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise RuntimeError(f"TensorRT could not parse {onnx_path}: " + "; ".join(errors[:3]))
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace))
    if weak_fp16:
        config.set_flag(trt.BuilderFlag.FP16)
    if hasattr(trt.BuilderFlag, "TF32"):
        (config.set_flag if tf32 else config.clear_flag)(trt.BuilderFlag.TF32)
    opt_profile = builder.create_optimization_profile()
    inputs = [network.get_input(i) for i in range(network.num_inputs)]
    for tensor in inputs:
        if tensor.name in profile:
            low, opt, high = profile[tensor.name]
            opt_profile.set_shape(tensor.name, tuple(low), tuple(opt), tuple(high))
        elif any(d < 0 for d in tensor.shape):
            raise ValueError(f"input {tensor.name} has dynamic shape {tuple(tensor.shape)} "
                             "but no profile")
    config.add_optimization_profile(opt_profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError(f"TensorRT {major}.x failed to build an engine for {onnx_path} "
                           "(see the TensorRT log above)")
    return bytes(serialized)


class TrtRunner(Runner):
    """One exported graph as a TensorRT engine, cached by :class:`EngineCache`.

    ``profile``: ``{input: (min, opt, max)}`` shapes of the dynamic inputs. ``onnx_sha256``
    (from the bundle manifest) keys the cache; ``cache_dir``: engine folder (default
    ``~/.cache/mspd-edge/engines``); ``rebuild``: rebuild a stale or foreign cached engine
    (False: raise :class:`~mspd_edge.runtime.engine_cache.StaleEngineError`).
    """

    def __init__(self, onnx_path, profile, *, onnx_sha256=None, cache_dir=None, fp16=False,
                 tf32=False, device_id=0, workspace=DEFAULT_WORKSPACE, rebuild=True, log=None,
                 name=None):
        super().__init__(name or f"trt:{os.path.basename(str(onnx_path))}")
        self.onnx_path, self.profile = onnx_path, dict(profile)
        self.onnx_sha256 = onnx_sha256
        self.cache = EngineCache(cache_dir)
        self.fp16, self.tf32, self.device_id = fp16, tf32, device_id
        self.workspace, self.rebuild, self.log = workspace, rebuild, log
        self.built = None

    def engine_key(self, trt):
        from mspd_edge.digest import sha256_file

        gpu = cb.device_info(self.device_id)
        return EngineKey(onnx_sha256=self.onnx_sha256 or sha256_file(self.onnx_path),
                         tensorrt_version=trt.__version__, gpu_name=gpu["name"],
                         compute_capability=gpu["compute_capability"],
                         profile=profile_key(self.profile),
                         precision="fp16" if self.fp16 else "fp32", tf32=bool(self.tf32))

    def activate_impl(self):
        trt = tensorrt()
        cb.set_device(self.device_id)
        key = self.engine_key(trt)
        graph = os.path.splitext(os.path.basename(str(self.onnx_path)))[0]

        def build():
            if self.log:
                self.log(f"building a TensorRT engine for {self.onnx_path} (once; cached in "
                         f"{self.cache.root})")
            return build_engine(self.onnx_path, self.profile, fp16=self.fp16, tf32=self.tf32,
                                workspace=self.workspace)

        data, self.built = self.cache.load_or_build(graph, key, build, rebuild=self.rebuild,
                                                    log=self.log)
        self.runtime = trt.Runtime(_Logger.get(trt))
        self.engine = self.runtime.deserialize_cuda_engine(data)
        if self.engine is None and not self.built:
            # TensorRT refused a cached engine whose key matched (e.g. a driver update): rebuild.
            self.cache.remove(graph, key)
            data, self.built = self.cache.load_or_build(graph, key, build)
            self.engine = self.runtime.deserialize_cuda_engine(data)
        if self.engine is None:
            raise RuntimeError(f"{self.name}: TensorRT could not deserialize the engine")
        self.context = self.engine.create_execution_context()
        self.stream = cb.Stream()
        if not self.context.set_optimization_profile_async(0, self.stream.handle):
            raise RuntimeError(f"{self.name}: cannot select optimisation profile 0")
        self.names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.inputs = [n for n in self.names
                       if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.outputs = [n for n in self.names if n not in self.inputs]
        self.buffers = {n: cb.DeviceBuffer() for n in self.names}
        self.trt = trt

    def deactivate_impl(self):
        for buffer in self.buffers.values():
            buffer.free()
        self.stream.free()
        del self.context, self.engine, self.runtime, self.buffers, self.stream

    def _dtype(self, name):
        return np.dtype(self.trt.nptype(self.engine.get_tensor_dtype(name)))

    def get_input_metadata_impl(self):
        return {n: TensorMeta(self._dtype(n), tuple(d if d >= 0 else None
                                                    for d in self.engine.get_tensor_shape(n)))
                for n in self.inputs}

    @property
    def output_names(self):
        return list(self.outputs)

    def infer_impl(self, feed_dict, output_names=None):
        keep = []   # host arrays that must outlive the asynchronous copies
        for name in self.inputs:
            array = np.ascontiguousarray(feed_dict[name], dtype=self._dtype(name))
            if not self.context.set_input_shape(name, array.shape):
                raise ValueError(f"{self.name}: input {name} shape {array.shape} is outside the "
                                 f"engine's profile {self.profile.get(name)}")
            if self.engine.is_shape_inference_io(name):   # shape tensors are read on the host
                keep.append(array)
                ptr = array.ctypes.data
            else:
                keep.append(self.buffers[name].copy_from(array, self.stream))
                ptr = self.buffers[name].ptr
            self.context.set_tensor_address(name, ptr)
        results = {}
        for name in self.outputs:
            shape = tuple(self.context.get_tensor_shape(name))
            host = np.empty(shape, self._dtype(name))
            self.buffers[name].reserve(max(host.nbytes, 1))
            self.context.set_tensor_address(name, self.buffers[name].ptr)
            results[name] = host
        if not self.context.execute_async_v3(self.stream.handle):
            raise RuntimeError(f"{self.name}: execute_async_v3 failed (see the TensorRT log)")
        wanted = output_names or self.outputs
        for name in wanted:
            self.buffers[name].copy_to(results[name], self.stream)
        self.stream.synchronize()
        return {name: results[name] for name in wanted}
