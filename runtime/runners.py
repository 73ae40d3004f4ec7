"""The runner protocol (in the style of NVIDIA Polygraphy's runners) and the ONNX Runtime runner.

A runner wraps one graph on one engine. It is a context manager: ``activate()`` (``__enter__``)
makes the session, engine or context, ``infer(feed_dict)`` runs it on numpy arrays and returns
``{output name: array}``, ``deactivate()`` (``__exit__``) frees it. ``get_input_metadata()``
describes the inputs (name -> dtype and shape; a string or None is a dynamic dimension) and
``infer`` checks a feed against it. ``last_inference_time()`` is the seconds of the last call.

:class:`OnnxRuntimeRunner` runs on the CPU, CUDA or TensorRT execution provider. On a GPU it
uses IOBinding: inputs may be device ``OrtValue`` objects (``to_device``), outputs stay on the
device until asked for, so large tensors do not cross the bus between calls. Its
``polygraphy_runner()`` is a Polygraphy ``OnnxrtRunner`` on the same session settings, for
Polygraphy's ``Comparator`` (``compare.compare_graphs``).
"""
import os
import time
from dataclasses import dataclass

import numpy as np

from mspd_edge.util import first_line

PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider",
             "tensorrt": "TensorrtExecutionProvider"}
OPTIMIZATION_LEVELS = {"disable": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC",
                       "extended": "ORT_ENABLE_EXTENDED", "all": "ORT_ENABLE_ALL"}
_ORT_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
              "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(uint8)": np.uint8,
              "tensor(int8)": np.int8, "tensor(bool)": np.bool_}


class ProviderUnavailable(RuntimeError):
    """The requested engine or execution provider cannot run on this machine (says why)."""


@dataclass(frozen=True)
class TensorMeta:
    """One tensor of a graph: dtype (numpy) and shape (ints; str/None for dynamic dimensions)."""

    dtype: object
    shape: tuple

    def fits(self, array):
        """Why ``array`` does not fit (a string), or None when it does."""
        if np.dtype(array.dtype) != np.dtype(self.dtype):
            return f"dtype {np.dtype(array.dtype).name}, expected {np.dtype(self.dtype).name}"
        if len(array.shape) != len(self.shape):
            return f"shape {tuple(array.shape)}, expected rank {len(self.shape)} {self.shape}"
        for got, want in zip(array.shape, self.shape):
            if isinstance(want, int) and want >= 0 and got != want:
                return f"shape {tuple(array.shape)}, expected {self.shape}"
        return None


class Runner:
    """Base runner: the activate/infer/deactivate protocol; subclasses implement the ``*_impl``."""

    def __init__(self, name):
        self.name = name
        self.is_active = False
        self.inference_time = None
        self._input_metadata = None

    # -- protocol -------------------------------------------------------------------------
    def activate(self):
        if self.is_active:
            return self
        self.activate_impl()
        self.is_active = True
        return self

    def deactivate(self):
        if self.is_active:
            try:
                self.deactivate_impl()
            finally:
                self.is_active = False
                self._input_metadata = None

    def __enter__(self):
        return self.activate()

    def __exit__(self, *exc):
        self.deactivate()

    def get_input_metadata(self):
        """``{name: TensorMeta}`` of the graph inputs (the runner must be active)."""
        self._require_active("get_input_metadata")
        if self._input_metadata is None:
            self._input_metadata = self.get_input_metadata_impl()
        return self._input_metadata

    def infer(self, feed_dict, check_inputs=True, **kwargs):
        """Run on ``feed_dict`` ``{input name: array}``; ``{output name: array}``."""
        self._require_active("infer")
        if check_inputs:
            self._check(feed_dict)
        start = time.perf_counter()
        outputs = self.infer_impl(feed_dict, **kwargs)
        self.inference_time = time.perf_counter() - start
        return outputs

    def last_inference_time(self):
        return self.inference_time

    # -- for subclasses -------------------------------------------------------------------
    def activate_impl(self):
        raise NotImplementedError

    def deactivate_impl(self):
        raise NotImplementedError

    def get_input_metadata_impl(self):
        raise NotImplementedError

    def infer_impl(self, feed_dict, **kwargs):
        raise NotImplementedError

    def _require_active(self, what):
        if not self.is_active:
            raise RuntimeError(f"{self.name}: activate the runner (or use it in a with block) "
                               f"before {what}()")

    def _check(self, feed_dict):
        meta = self.get_input_metadata()
        missing = [name for name in meta if name not in feed_dict]
        extra = [name for name in feed_dict if name not in meta]
        if missing or extra:
            raise ValueError(f"{self.name}: inputs {sorted(feed_dict)} do not match the graph's "
                             f"{list(meta)} (missing {missing}, unknown {extra})")
        for name, value in feed_dict.items():
            if isinstance(value, np.ndarray):
                why = meta[name].fits(value)
                if why:
                    raise ValueError(f"{self.name}: input {name!r} has {why}")


def _ort():
    try:
        import onnxruntime
    except ImportError as exc:
        raise ProviderUnavailable("onnxruntime is not installed: pip install onnxruntime "
                                  "(CPU) or onnxruntime-gpu (CUDA/TensorRT)") from exc
    return onnxruntime


def _profile_option(profile, which):
    """TensorRT EP profile string ``name:1x3x32x32,other:...`` for min (0), opt (1) or max (2)."""
    parts = []
    for name, shapes in profile.items():
        shape = shapes[which]
        parts.append(f"{name}:{'x'.join(str(int(d)) for d in shape)}" if len(shape) else None)
    return ",".join(p for p in parts if p)


def provider_chain(provider="cpu", *, device_id=0, fp16=False, cache_dir=None, profile=None,
                   tf32=False, cuda_options=None, trt_options=None):
    """``(providers, provider_options)`` for ``InferenceSession``: the requested provider first,
    then its fallbacks (TensorRT -> CUDA -> CPU) for the nodes it does not take.

    ``fp16``: TensorRT EP builds FP16 engines (CUDA EP ignores it: export an FP16 graph).
    ``tf32``: let CUDA use TF32 math for fp32 (off by default: it breaks fp32 parity).
    ``cache_dir``: TensorRT EP engine and timing cache folder. ``profile``: ``{input: (min,
    opt, max) shapes}`` for TensorRT EP's explicit optimisation profile (dynamic batch).
    """
    if provider not in PROVIDERS:
        raise ValueError(f"provider must be one of {sorted(PROVIDERS)}, got {provider!r}")
    chain = []
    if provider == "tensorrt":
        options = {"device_id": str(device_id), "trt_fp16_enable": str(bool(fp16)),
                   "trt_engine_cache_enable": "True", "trt_timing_cache_enable": "True"}
        if cache_dir is not None:
            options["trt_engine_cache_path"] = str(cache_dir)
            options["trt_timing_cache_path"] = str(cache_dir)
        if profile:
            options.update(trt_profile_min_shapes=_profile_option(profile, 0),
                           trt_profile_opt_shapes=_profile_option(profile, 1),
                           trt_profile_max_shapes=_profile_option(profile, 2))
        options.update(trt_options or {})
        chain.append((PROVIDERS["tensorrt"], options))
    if provider in ("tensorrt", "cuda"):
        options = {"device_id": str(device_id), "use_tf32": "1" if tf32 else "0",
                   "cudnn_conv_algo_search": "EXHAUSTIVE"}
        options.update(cuda_options or {})
        chain.append((PROVIDERS["cuda"], options))
    chain.append((PROVIDERS["cpu"], {}))
    return [name for name, _ in chain], [options for _, options in chain]


def available_providers():
    """The short names (cpu, cuda, tensorrt) this onnxruntime build offers."""
    names = set(_ort().get_available_providers())
    return [short for short, long in PROVIDERS.items() if long in names]


class OnnxRuntimeRunner(Runner):
    """One ONNX graph in an ``onnxruntime.InferenceSession``.

    ``model``: path or serialized bytes. ``provider``: "cpu", "cuda" or "tensorrt" (see
    :func:`provider_chain` for ``device_id``, ``fp16``, ``cache_dir``, ``profile``, ``tf32``).
    ``threads``/``inter_op_threads``: intra-/inter-op thread pools (None: ORT's default, one
    per physical core); ``spinning``: let the pool's threads spin between calls (fast for a
    graph called in a loop, a thief of cores for one called now and then); ``optimization_level``: "disable", "basic", "extended" or "all";
    ``session_options``: an ``onnxruntime.SessionOptions`` used as given instead.
    """

    def __init__(self, model, *, provider="cpu", device_id=0, fp16=False, cache_dir=None,
                 profile=None, tf32=False, threads=None, inter_op_threads=None,
                 optimization_level="all", session_options=None, cuda_options=None,
                 trt_options=None, spinning=True, name=None):
        label = os.path.basename(str(model)) if isinstance(model, (str, os.PathLike)) else "model"
        super().__init__(name or f"ort-{provider}:{label}")
        if optimization_level not in OPTIMIZATION_LEVELS:
            raise ValueError(f"optimization_level must be one of {sorted(OPTIMIZATION_LEVELS)}")
        self.model = model
        self.provider, self.device_id = provider, device_id
        self.providers, self.provider_options = provider_chain(
            provider, device_id=device_id, fp16=fp16, cache_dir=cache_dir, profile=profile,
            tf32=tf32, cuda_options=cuda_options, trt_options=trt_options)
        self.threads, self.inter_op_threads = threads, inter_op_threads
        self.spinning = spinning
        self.optimization_level = optimization_level
        self.session_options = session_options
        self.on_device = provider != "cpu"
        self.session = None

    def make_session_options(self):
        """The ``SessionOptions`` this runner uses (threads, optimisation level, quiet log)."""
        ort = _ort()
        if self.session_options is not None:
            return self.session_options
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.graph_optimization_level = getattr(ort.GraphOptimizationLevel,
                                                   OPTIMIZATION_LEVELS[self.optimization_level])
        if self.threads:
            options.intra_op_num_threads = int(self.threads)
        if self.inter_op_threads:
            options.inter_op_num_threads = int(self.inter_op_threads)
        if not self.spinning:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return options

    def activate_impl(self):
        self.session = self.make_session()

    def polygraphy_runner(self):
        """A Polygraphy ``OnnxrtRunner`` on this runner's session settings (for ``Comparator``)."""
        from polygraphy.backend.onnxrt import OnnxrtRunner

        return OnnxrtRunner(self.make_session, name=self.name)

    def make_session(self):
        """A new ``InferenceSession`` with this runner's providers and options."""
        ort = _ort()
        wanted = self.providers[0]
        if wanted not in ort.get_available_providers():
            raise ProviderUnavailable(
                f"{wanted} is not in this onnxruntime build ({ort.__version__}: "
                f"{', '.join(ort.get_available_providers())}); install onnxruntime-gpu on a "
                "desktop GPU or the JetPack onnxruntime-gpu wheel on a Jetson")
        model = str(self.model) if isinstance(self.model, os.PathLike) else self.model
        try:
            session = ort.InferenceSession(model, self.make_session_options(),
                                           providers=self.providers,
                                           provider_options=self.provider_options)
        except Exception as exc:  # noqa: BLE001 - ORT raises its own exception types
            raise ProviderUnavailable(f"{self.name}: onnxruntime could not load the graph: "
                                      f"{first_line(exc)}") from exc
        active = session.get_providers()
        if active[0] != wanted:   # ORT falls back to the CPU silently when a GPU EP fails to load
            raise ProviderUnavailable(f"{wanted} failed to initialise (active: {active}); check "
                                      "the CUDA/cuDNN/TensorRT libraries onnxruntime-gpu needs")
        return session

    def deactivate_impl(self):
        self.session = None

    def get_input_metadata_impl(self):
        return {i.name: TensorMeta(_ORT_TYPES.get(i.type, np.float32), tuple(i.shape))
                for i in self.session.get_inputs()}

    @property
    def output_names(self):
        self._require_active("output_names")
        return [o.name for o in self.session.get_outputs()]

    def to_device(self, array):
        """``array`` as an ``OrtValue`` on this runner's device (a numpy array on the CPU)."""
        if not self.on_device:
            return np.ascontiguousarray(array)
        return _ort().OrtValue.ortvalue_from_numpy(np.ascontiguousarray(array), "cuda", self.device_id)

    def infer_impl(self, feed_dict, output_names=None, copy_outputs_to_host=True):
        """``output_names``: the outputs to compute (default all). On a GPU provider the inputs
        are bound with IOBinding (device ``OrtValue`` inputs are used in place) and the
        outputs bound on the device; ``copy_outputs_to_host=False`` returns them as
        ``OrtValue`` objects that can feed the next call without a round trip."""
        names = output_names or self.output_names
        if not self.on_device:
            feed = {k: np.ascontiguousarray(v) for k, v in feed_dict.items()}
            return dict(zip(names, self.session.run(names, feed)))
        ort = _ort()
        binding = self.session.io_binding()
        for name, value in feed_dict.items():
            if isinstance(value, ort.OrtValue):
                binding.bind_ortvalue_input(name, value)
            else:
                binding.bind_cpu_input(name, np.ascontiguousarray(value))
        for name in names:
            binding.bind_output(name, "cuda", self.device_id)
        self.session.run_with_iobinding(binding)
        values = binding.get_outputs()
        if copy_outputs_to_host:
            return {name: value.numpy() for name, value in zip(names, values)}
        return dict(zip(names, values))
