"""TensorRT through NVIDIA Polygraphy: engines built from the exported graphs, cached, and run.

* **Build** (:func:`build_settings`): ``NetworkFromOnnxPath(path, strongly_typed=True)`` and
  ``CreateConfig(tf32=..., profiles=[...])``, built by ``EngineBytesFromNetwork``. A strongly
  typed network takes its precision from the graph's types (an fp32 export gives an fp32
  engine, an fp16 graph an fp16 engine), so no precision builder flag is set: TensorRT 11
  removed them (FP16, BF16, INT8, FP8), and the strongly-typed flag that 10.x needs is
  accepted and ignored by 11.x. TF32 is cleared unless asked for: it flips the sign of
  near-zero gradient entries and so changes protected images (docs/runtime.md, parity).
* **Cache** (:class:`CachedEngine`): Polygraphy keeps no engine cache, and its ``SaveEngine``
  writes in place without a key, so the engine bytes go through the project's keyed, validated
  :class:`~mspd_edge.runtime.engine_cache.EngineCache` (atomic writes, a key sidecar) and are
  deserialized with Polygraphy's ``EngineFromBytes``.
* **Run** (:class:`TrtGraph`): Polygraphy's ``TrtRunner`` on that engine. It owns its CUDA
  stream and synchronises each call. When torch with CUDA is importable (Polygraphy imports
  torch on its first call anyway, to recognise torch tensors), feeds are torch CUDA tensors and
  outputs may stay on the device (``copy_outputs_to_host=False``); without torch it runs on
  numpy arrays.

Polygraphy, TensorRT and torch are imported on first use, never at import time.
"""
from contextlib import contextmanager
from importlib import import_module
from pathlib import Path

import numpy as np

from .engine_cache import EngineCache, EngineKey, StaleEngineError, profile_key
from .gpu import device_count, device_info, set_device
from .runners import ProviderUnavailable, Runner, TensorMeta

MIN_TENSORRT_MAJOR = 10


def tensorrt():
    """The ``tensorrt`` module; :class:`ProviderUnavailable` with install advice when absent."""
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise ProviderUnavailable(
            "TensorRT's Python bindings are not installed: on a Jetson they come with JetPack "
            "(apt install python3-libnvinfer; in a venv use --system-site-packages), on a "
            "desktop GPU pip install tensorrt") from exc
    if int(trt.__version__.split(".")[0]) < MIN_TENSORRT_MAJOR:
        raise ProviderUnavailable(f"TensorRT {trt.__version__} found; the runner needs "
                                  f"{MIN_TENSORRT_MAJOR} or newer")
    return trt


def trt_available():
    """``(True, "")`` when Polygraphy, TensorRT 10+ and a CUDA device are present, else
    ``(False, why)``: one line naming everything that is missing."""
    missing = []
    try:
        import_module("polygraphy.backend.trt")   # pure Python; imports without TensorRT
    except ImportError:
        missing.append("polygraphy is not installed (pip install polygraphy)")
    try:
        tensorrt()
    except ProviderUnavailable as exc:
        missing.append(str(exc))
    if device_count() < 1:
        missing.append("no CUDA device visible")
    return not missing, "; ".join(missing)


@contextmanager
def quiet():
    """Polygraphy's log without its INFO lines (they go to stdout); warnings and errors stay."""
    from polygraphy.logger import G_LOGGER

    with G_LOGGER.verbosity(G_LOGGER.WARNING):
        yield


def cuda_torch():
    """torch when it imports and sees a CUDA device, else None."""
    try:
        import torch
    except (ImportError, OSError):   # absent, blocked, or a build whose libraries do not load
        return None
    return torch if torch.cuda.is_available() else None


def build_settings(onnx_path, profile, *, tf32=False):
    """The Polygraphy loaders an engine is built from: ``(network, config)``.

    ``network``: ``NetworkFromOnnxPath`` with ``strongly_typed=True``; ``config``:
    ``CreateConfig`` with one optimisation profile (``{input: (min, opt, max)}``), TF32 as
    asked and no precision flags. Nothing here calls TensorRT (the loaders run when called).
    """
    from polygraphy.backend.trt import CreateConfig, NetworkFromOnnxPath, Profile

    shapes = Profile()
    for name, (low, opt, high) in profile.items():
        shapes.add(name, low, opt, high)
    with quiet():
        config = CreateConfig(tf32=bool(tf32), profiles=[shapes])
    return NetworkFromOnnxPath(str(onnx_path), strongly_typed=True), config


def engine_key(onnx_sha256, profile, *, precision, tf32, tensorrt_version, gpu):
    """The :class:`EngineKey` of an engine; ``gpu``: :func:`~mspd_edge.runtime.gpu.device_info`."""
    return EngineKey(onnx_sha256=onnx_sha256, tensorrt_version=tensorrt_version,
                     gpu_name=gpu["name"], compute_capability=gpu["compute_capability"],
                     profile=profile_key(profile), precision=precision, tf32=bool(tf32))


class CachedEngine:
    """A Polygraphy engine loader backed by :class:`EngineCache`: calling it returns a
    deserialized engine, built once per key. ``built`` says whether the last call built it.

    ``onnx_sha256`` (from the bundle manifest) keys the cache; ``precision`` names the graph's
    precision in the key; ``rebuild``: rebuild a stale, foreign or refused engine (False: raise
    :class:`StaleEngineError`).
    """

    def __init__(self, onnx_path, profile, *, onnx_sha256=None, cache_dir=None, precision="fp32",
                 tf32=False, device_id=0, rebuild=True, log=None):
        self.onnx_path, self.profile = Path(onnx_path), dict(profile)
        self.onnx_sha256, self.cache = onnx_sha256, EngineCache(cache_dir)
        self.precision, self.tf32, self.device_id = precision, bool(tf32), device_id
        self.rebuild, self.log = rebuild, log
        self.built = None

    def key(self):
        from mspd_edge.digest import sha256_file

        return engine_key(self.onnx_sha256 or sha256_file(self.onnx_path), self.profile,
                          precision=self.precision, tf32=self.tf32,
                          tensorrt_version=tensorrt().__version__, gpu=device_info(self.device_id))

    def build(self):
        """Serialized engine bytes, built by Polygraphy from :func:`build_settings`."""
        from polygraphy.backend.trt import EngineBytesFromNetwork

        if self.log:
            self.log(f"building a TensorRT engine for {self.onnx_path} (once; cached in "
                     f"{self.cache.root})")
        network, config = build_settings(self.onnx_path, self.profile, tf32=self.tf32)
        with quiet():
            return bytes(EngineBytesFromNetwork(network, config=config)())

    def __call__(self):
        from polygraphy.backend.trt import EngineFromBytes
        from polygraphy.exception import PolygraphyException

        set_device(self.device_id)
        graph, key = self.onnx_path.stem, self.key()
        data, self.built = self.cache.load_or_build(graph, key, self.build, rebuild=self.rebuild,
                                                    log=self.log)
        try:
            with quiet():
                return EngineFromBytes(data)()
        except PolygraphyException:
            if self.built:
                raise RuntimeError(f"{graph}: TensorRT could not deserialize the engine it has "
                                   "just built (see its log above)") from None
            if not self.rebuild:
                raise StaleEngineError(f"{graph}: TensorRT refused the cached engine (see its "
                                       "log above)") from None
        # A cached engine whose key matched but that TensorRT refuses (e.g. a driver update).
        self.cache.remove(graph, key)
        data, self.built = self.cache.load_or_build(graph, key, self.build)
        with quiet():
            return EngineFromBytes(data)()


class TrtGraph(Runner):
    """One exported graph on TensorRT: Polygraphy's ``TrtRunner`` on a :class:`CachedEngine`, as a
    :class:`~mspd_edge.runtime.runners.Runner` (``activate``, ``infer``, ``deactivate``, ``with``).

    ``engine_options``: those of :class:`CachedEngine`. ``torch`` (set on activation): the torch
    module when the graph runs on torch CUDA tensors, else None (numpy arrays).
    """

    def __init__(self, onnx_path, profile, *, name=None, **engine_options):
        self.engine = CachedEngine(onnx_path, profile, **engine_options)
        super().__init__(name or f"trt:{Path(onnx_path).stem}")
        self.runner = self.torch = None

    @property
    def built(self):
        return self.engine.built

    def polygraphy_runner(self):
        """A fresh, inactive Polygraphy ``TrtRunner`` on this graph's engine (for ``Comparator``)."""
        from polygraphy.backend.trt import TrtRunner

        return TrtRunner(self.engine, name=self.name)

    def activate_impl(self):
        self.torch = cuda_torch()
        if self.torch is not None:
            self.torch.cuda.set_device(self.engine.device_id)   # Polygraphy allocates there
        runner = self.polygraphy_runner()
        with quiet():
            runner.activate()
        self.runner = runner

    def deactivate_impl(self):
        try:
            self.runner.deactivate()
        finally:
            self.runner = None

    def get_input_metadata_impl(self):
        meta = {}
        for name, (dtype, shape) in self.runner.get_input_metadata().items():
            numpy_type = getattr(dtype, "numpy", None)   # Polygraphy's DataType, or a numpy dtype
            meta[name] = TensorMeta(np.dtype(numpy_type() if callable(numpy_type) else dtype),
                                    tuple(shape))
        return meta

    def infer(self, feed_dict, output_names=None, copy_outputs_to_host=True, check_inputs=False):
        """``{output: array}`` for ``output_names`` (default all); see :meth:`infer_impl`.
        TensorRT checks the inputs against the engine's profile itself (``check_inputs``: the
        runner's check of names, dtypes and ranks too)."""
        return super().infer(feed_dict, check_inputs, output_names=output_names,
                             copy_outputs_to_host=copy_outputs_to_host)

    def to_device(self, array):
        """``array`` as this graph takes it: a torch CUDA tensor, or a contiguous numpy array."""
        if self.torch is None:
            return np.ascontiguousarray(array)
        device = f"cuda:{self.engine.device_id}"
        if isinstance(array, self.torch.Tensor):
            return array.to(device).contiguous()
        return self.torch.as_tensor(np.ascontiguousarray(array), device=device)

    def infer_impl(self, feed_dict, output_names=None, copy_outputs_to_host=True):
        """Host outputs are numpy arrays of their own. With ``copy_outputs_to_host=False`` the
        outputs are the runner's device buffers (torch CUDA tensors when ``torch`` is set),
        valid until this graph's next call. Torch inputs must come from torch's default stream
        (which the runner's stream waits for).
        """
        feed = {name: self.to_device(value) for name, value in feed_dict.items()}
        outputs = self.runner.infer(feed, copy_outputs_to_host=False)
        names = output_names or list(outputs)
        if not copy_outputs_to_host:
            return {name: outputs[name] for name in names}
        if self.torch is not None:
            return {name: outputs[name].cpu().numpy() for name in names}
        return {name: outputs[name].numpy() for name in names}
