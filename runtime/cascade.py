"""The MCGS cascade on exported graphs: pipeline backends for ONNX Runtime and TensorRT.

:class:`OrtBackend` and :class:`TrtBackend` implement the backend protocol of
``mspd_edge.pipeline`` (``input_size``, ``default_eps``, ``predict(x, model)``,
``run(x, labels, noise, settings)``), so the CLI, the camera and every job share the
pipeline's batching, noise contract, resizing and 8-bit budget rule with the torch reference.

Per batch: the label pass runs the ``classifier`` (or ``backbone``) graph; each epoch of the
cascade (MCGS.md) is one SmoothStep, through one of two routes:

* ``"step"``: the ``mcgs_step`` graph does the whole SmoothStep (N noisy copies, gradient,
  signed step, projection, mean) in one call; the N x B copies never leave the engine;
* ``"grad"``: numpy makes the copies, the ``backbone_grad`` graph returns their gradients,
  numpy takes the signed steps and the mean.

Between epochs the cascade algebra runs in float32 and in the reference's order, in numpy (or
on torch CUDA tensors for TensorRT when torch is at hand, with the same float32 results)::

    F:  x_F = clip01(proj(x   + lr (step - x  ), x))
    B:  x_B = clip01(proj(x_F - lr (step - x_F), x))

``route="auto"`` picks the route measured faster for the backend (``DEFAULT_ROUTES``; see
docs/runtime.md for the numbers and ``mspd-edge bench --backends ort:step,ort:grad`` to
measure again). Batches are split so that one engine call holds at most ``max_copy_values``
float32 values of noisy copies (the pipeline's ``MAX_COPY_VALUES`` by default), and at most
the TensorRT profile's batch; images are independent, so splitting never changes a result.

Imports numpy only (onnxruntime, Polygraphy, TensorRT and torch are loaded by the runners).
"""
import numpy as np

from mspd_edge import defaults
from mspd_edge.bundle import CENTER, DIRECTION, EPS, GRAD, IMAGES, LABELS, LOGITS, NOISE, STEPPED, load_bundle
from mspd_edge.pipeline import MAX_COPY_VALUES
from mspd_edge.protocol import AUTO_ROUTE, ROUTES, Backend

from .profiles import graph_profile
from .runners import OnnxRuntimeRunner, ProviderUnavailable

# Measured with `mspd-edge bench --backends ort:step,ort:grad` (docs/runtime.md): on the CPU
# the two routes are within noise of each other (the convolutions dominate; the elementwise
# step is < 2% of the time either way), so the single-call graph wins on simplicity. On a GPU
# the step route keeps the N x B copies and gradients on the device (the grad route moves
# 2 x N x B x C x H x W floats across the bus per epoch), so it is the default there too.
DEFAULT_ROUTES = {"ort": "step", "ort-cuda": "step", "ort-tensorrt": "step", "trt": "step"}
# Noisy copies per ORT call on the CPU: the per-copy cost grows with the call size once the
# activations leave the cache (docs/runtime.md); GPUs want the largest calls (None: no cap).
CPU_COPIES_PER_CALL = 20
# Graphs whose ORT thread pools may spin between calls (OrtBackend ``spinning=True``): the
# cascade's hot loop. The label graphs run once per batch and never spin: their spinning threads
# stole the two cores from the cascade's pool (91 -> 60 ms per image at batch 1, docs/runtime.md).
# Off by default: spinning bought ~15% on an idle 2-core machine and cost ~2x beside two busy
# processes (50 vs 58 ms quiet, 127-154 vs 76-82 ms loaded per 20-copy call; README "Under load").
SPINNING_GRAPHS = ("mcgs_step", "backbone_grad")
LOGIT_CHUNK = 256           # images per classifier call at most (memory bound; any size works)


def project(z, center, eps):
    """Clamp ``z`` elementwise into ``[center - eps, center + eps]`` (``eps`` rounded to float32).

    Written with array methods only, so numpy arrays and torch tensors give the same float32
    results (the TensorRT backend keeps a batch on the GPU as torch tensors when it can)."""
    e = float(np.float32(eps))
    return z.clip(center - e, center + e)


def clip01(z):
    return z.clip(0, 1)


def numpy_smooth_step(grad_fn, center, labels, noise, eps, direction):
    """SmoothStep of MCGS.md in numpy around ``grad_fn(images, labels) -> d sum-CE / d images``."""
    n = noise.shape[0]
    e = np.float32(eps)
    copies = clip01(center[None] + e * noise)
    grad = grad_fn(copies.reshape(-1, *center.shape[1:]), np.tile(labels, n)).reshape(copies.shape)
    moved = copies + np.float32(direction * eps) * np.sign(grad)
    return clip01(project(moved, center, eps)).mean(axis=0, dtype=np.float32)


def cascade(x, labels, noise, *, eps, lr, epochs, smooth_step):
    """The cascade of MCGS.md with ``smooth_step(center, labels, noise, eps, direction)``."""
    current = x
    for epoch, draws in zip(epochs, noise):
        direction = defaults.FORWARD if epoch == "F" else defaults.BACKWARD
        stepped = smooth_step(current, labels, draws, eps, direction)
        step = float(np.float32(lr if epoch == "F" else -lr))
        current = clip01(project(current + (stepped - current) * step, x, eps))
    return current


def _check_run_inputs(x, labels, noise, settings, input_size):
    if x.ndim != 4 or tuple(x.shape[1:]) != tuple(input_size):
        raise ValueError(f"images must be [B, {', '.join(map(str, input_size))}], got {x.shape}")
    if len(noise) != len(settings.epochs):
        raise ValueError(f"noise has {len(noise)} epochs, the cascade {len(settings.epochs)}")
    for draws in noise:
        if draws.shape[1:] != x.shape or draws.shape[0] != settings.n_samples:
            raise ValueError(f"noise shape {draws.shape} does not fit images {x.shape} with "
                             f"n_samples={settings.n_samples}")
    if labels.shape != (x.shape[0],):
        raise ValueError(f"labels must be [{x.shape[0]}], got {labels.shape}")


def step_feed(center, labels, noise, eps, direction):
    """The ``mcgs_step`` feed: the arrays as given, ``eps`` and ``direction`` as float32 scalars."""
    return {CENTER: center, LABELS: labels, NOISE: noise,
            EPS: np.array(eps, np.float32), DIRECTION: np.array(direction, np.float32)}


class CascadeBackend(Backend):
    """The shared part of the runtime backends: lazy runners, chunking, the numpy algebra.

    Subclasses provide ``_make_runner(graph)`` and may cap ``max_batch``. Use as a context
    manager (or call ``close()``) to free sessions and engines.
    """

    name = "runtime"
    max_batch = None   # a hard cap on images per engine call (TensorRT profiles), None: none
    profile_samples = defaults.N_SAMPLES   # copies per image the engine profiles hold

    def __init__(self, bundle, route="auto", max_copy_values=None, copies_per_call=None, verify=True):
        self.bundle = load_bundle(bundle, verify=verify)
        self.precision = self.bundle.precision   # of the gradient graphs (the label graphs: fp32)
        self.input_size = self.bundle.input_size
        self.default_eps = self.bundle.eps
        self.classes = self.bundle.classes
        if route not in (AUTO_ROUTE, *ROUTES):
            raise ValueError(f"route must be one of {(AUTO_ROUTE, *ROUTES)}, got {route!r}")
        self.route = DEFAULT_ROUTES.get(self.name, "step") if route == AUTO_ROUTE else route
        self.max_copy_values = int(max_copy_values or MAX_COPY_VALUES)
        self.copies_per_call = copies_per_call
        self._runners = {}

    # -- runners --------------------------------------------------------------------------
    def _make_runner(self, graph):
        raise NotImplementedError

    def runner(self, graph):
        """The active runner of ``graph`` (made and activated on first use)."""
        if graph not in self._runners:
            runner = self._make_runner(graph)
            runner.activate()
            self._runners[graph] = runner
        return self._runners[graph]

    def close(self):
        """Deactivate every runner (sessions, engines)."""
        while self._runners:
            _, runner = self._runners.popitem()
            runner.deactivate()

    # -- sizes ----------------------------------------------------------------------------
    @property
    def _chw(self):
        return int(np.prod(self.input_size))

    def images_per_call(self, n_samples):
        """Images per cascade call: the memory bound, the speed bound, the engine's cap."""
        per = max(1, self.max_copy_values // (n_samples * self._chw))
        if self.copies_per_call:
            per = min(per, max(1, self.copies_per_call // n_samples))
        return min(per, self.max_batch) if self.max_batch else per

    def rows_per_grad_call(self):
        """Images per ``backbone_grad`` call: the memory bound, the speed bound, the engine's cap."""
        rows = max(1, self.max_copy_values // self._chw)
        if self.copies_per_call:
            rows = min(rows, self.copies_per_call)
        if self.max_batch:
            rows = min(rows, self.max_batch * self.profile_samples)
        return rows

    # -- the protocol ---------------------------------------------------------------------
    def logits(self, x, model="classifier"):
        """Logits of ``"classifier"`` or ``"backbone"`` for float32 images [B,C,H,W]."""
        graph = "backbone" if model == "backbone" else "classifier"
        if graph == "classifier" and not self.bundle.has("classifier"):
            raise ValueError(f"label mode 'classifier' needs a classifier model, and the bundle "
                             f"{self.bundle.root} has none: use --labels couple or gt, or export "
                             "with a classifier")
        x = np.ascontiguousarray(x, np.float32)
        step = min(LOGIT_CHUNK, self.max_batch or LOGIT_CHUNK)
        runner = self.runner(graph)
        parts = [runner.infer({IMAGES: x[s:s + step]}, output_names=[LOGITS])[LOGITS]
                 for s in range(0, len(x), step)]
        return np.concatenate(parts) if parts else np.zeros((0, self.bundle.num_classes), np.float32)

    def predict(self, x, model):
        """Argmax labels (int64) of ``model`` ("classifier" or "backbone")."""
        return self.logits(x, model).argmax(1).astype(np.int64)

    def input_grad(self, images, labels):
        """``d sum-CE(backbone(images), labels) / d images`` from the ``backbone_grad`` graph."""
        images = np.ascontiguousarray(images, np.float32)
        labels = np.ascontiguousarray(labels, np.int64)
        rows = self.rows_per_grad_call()
        runner = self.runner("backbone_grad")
        out = np.empty_like(images)
        for s in range(0, len(images), rows):
            out[s:s + rows] = runner.infer({IMAGES: images[s:s + rows], LABELS: labels[s:s + rows]},
                                           output_names=[GRAD])[GRAD]
        return out

    def smooth_step(self, center, labels, noise, eps, direction, route=None):
        """One SmoothStep through ``route`` (default: the backend's)."""
        route = route or self.route
        if route == "grad":
            return numpy_smooth_step(self.input_grad, center, labels, noise, eps, direction)
        feed = step_feed(np.ascontiguousarray(center, np.float32), np.ascontiguousarray(labels, np.int64),
                         np.ascontiguousarray(noise, np.float32), eps, direction)
        return self.runner("mcgs_step").infer(feed, output_names=[STEPPED])[STEPPED]

    def prepare(self, n_samples):
        """Hook before a cascade with ``n_samples`` copies (TensorRT sizes its profile here)."""

    def run(self, x, labels, noise, settings):
        """The protected batch (float32) for images ``x``, ``labels`` and per-epoch ``noise``."""
        x = np.ascontiguousarray(x, np.float32)
        labels = np.asarray(labels, np.int64)
        noise = [np.asarray(draws, np.float32) for draws in noise]
        _check_run_inputs(x, labels, noise, settings, self.input_size)
        self.prepare(settings.n_samples)
        per = self.images_per_call(settings.n_samples)
        out = np.empty_like(x)
        for s in range(0, len(x), per):
            part = slice(s, s + per)
            out[part] = self.cascade_part(x[part], labels[part], [draws[:, part] for draws in noise],
                                          settings)
        return out

    def cascade_part(self, x, labels, noise, settings):
        """The cascade of one engine-sized part of a batch."""
        return cascade(x, labels, noise, eps=settings.eps, lr=settings.lr, epochs=settings.epochs,
                       smooth_step=self.smooth_step)


class _ProfiledBackend(CascadeBackend):
    """Backends whose engines may need shape profiles (TensorRT, ORT's TensorRT EP)."""

    uses_profiles = True

    def __init__(self, bundle, *, max_batch, n_samples, **kwargs):
        self.profile_batch, self.profile_samples = int(max_batch), int(n_samples)
        super().__init__(bundle, **kwargs)

    def profile(self, graph):
        """``{input: (min, opt, max)}`` of ``graph`` (:func:`~mspd_edge.runtime.profiles.graph_profile`)."""
        return graph_profile(self.bundle.signature(graph), graph, max_batch=self.profile_batch,
                             n_samples=self.profile_samples, input_size=self.input_size,
                             num_classes=self.bundle.num_classes)

    def prepare(self, n_samples):
        if self.uses_profiles and n_samples > self.profile_samples:   # rebuild with a wider profile
            self.profile_samples = n_samples
            for graph in ("mcgs_step", "backbone_grad"):
                runner = self._runners.pop(graph, None)
                if runner is not None:
                    runner.deactivate()


class OrtBackend(_ProfiledBackend):
    """The cascade on ONNX Runtime. ``provider``: "cpu", "cuda" or "tensorrt".

    ``threads``: intra-op threads (None: ORT's default, one per physical core); ``spinning``:
    let the cascade graphs' threads spin between calls (faster on an idle machine only, see
    :data:`SPINNING_GRAPHS`); ``optimization_level``: "disable", "basic", "extended" or "all"; ``fp16``/``cache_dir``/
    ``tf32``: see :func:`~mspd_edge.runtime.runners.provider_chain` (TensorRT EP engines are
    cached in ``cache_dir``, default ``~/.cache/mspd-edge/ort-trt``). ``max_batch``/
    ``n_samples``: the TensorRT EP profile (other providers take any size).
    """

    def __init__(self, bundle, *, provider="cpu", device_id=0, threads=None,
                 optimization_level="all", fp16=False, tf32=False, cache_dir=None, route="auto",
                 max_copy_values=None, copies_per_call="auto", max_batch=16,
                 n_samples=defaults.N_SAMPLES, session_options=None, verify=True, spinning=False):
        self.name = "ort" if provider == "cpu" else f"ort-{provider}"
        self.spinning = spinning
        self.provider, self.device_id, self.threads = provider, device_id, threads
        self.optimization_level, self.fp16, self.tf32 = optimization_level, fp16, tf32
        self.cache_dir, self.session_options = cache_dir, session_options
        self.uses_profiles = provider == "tensorrt"
        if self.uses_profiles:
            self.max_batch = int(max_batch)   # TensorRT EP engines are built for the profile
        if copies_per_call == "auto":
            copies_per_call = CPU_COPIES_PER_CALL if provider == "cpu" else None
        super().__init__(bundle, max_batch=max_batch, n_samples=n_samples, route=route,
                         max_copy_values=max_copy_values, copies_per_call=copies_per_call,
                         verify=verify)

    def _make_runner(self, graph):
        trt_ep = self.provider == "tensorrt"
        cache = self.cache_dir
        if trt_ep and cache is None:
            from .engine_cache import cache_root
            cache = cache_root() / "ort-trt"
        if trt_ep:
            cache.mkdir(parents=True, exist_ok=True)
        return OnnxRuntimeRunner(self.bundle.path(graph), provider=self.provider,
                                 device_id=self.device_id, fp16=self.fp16, tf32=self.tf32,
                                 cache_dir=cache, profile=self.profile(graph) if trt_ep else None,
                                 threads=self.threads, optimization_level=self.optimization_level,
                                 session_options=self.session_options,
                                 spinning=self.spinning and graph in SPINNING_GRAPHS,
                                 name=f"{self.name}:{graph}")


class TrtBackend(_ProfiledBackend):
    """The cascade on TensorRT engines through NVIDIA Polygraphy (:mod:`~mspd_edge.runtime.trt`),
    built once per graph, GPU and profile and cached (:mod:`~mspd_edge.runtime.engine_cache`).

    ``max_batch``: images per engine call (the profile's maximum; larger batches are split);
    ``n_samples``: the profile's copies (grown on demand). ``precision``: the precision of the
    bundle's graphs ("fp32" for a plain export): networks are strongly typed, so TensorRT
    builds what the graph's types say; a bundle of another precision is refused, and the
    precision is part of the engine key. ``tf32``: allow TF32 (off by default, for parity).

    With torch and CUDA importable, each part of a batch stays on the GPU between the engine
    calls of its cascade (``step`` route): the images and noise go up once, the cascade algebra
    runs on torch CUDA tensors, the protected images come down once. Without torch the algebra
    runs in numpy on the host.
    """

    name = "trt"

    def __init__(self, bundle, *, device_id=0, max_batch=16, n_samples=defaults.N_SAMPLES,
                 precision="fp32", tf32=False, cache_dir=None, route="auto", max_copy_values=None,
                 copies_per_call=None, rebuild=True, log=None, verify=True):
        from .trt import trt_available

        ok, why = trt_available()
        if not ok:   # fail early, with install advice
            raise ProviderUnavailable(why)
        self.device_id, self.precision, self.tf32 = device_id, precision, tf32
        self.cache_dir, self.rebuild, self.log = cache_dir, rebuild, log
        self.max_batch = int(max_batch)
        super().__init__(bundle, max_batch=max_batch, n_samples=n_samples, route=route,
                         max_copy_values=max_copy_values, copies_per_call=copies_per_call,
                         verify=verify)
        if self.bundle.precision != precision:
            raise ValueError(f"precision {precision!r} asked, but the graphs of {self.bundle.root} "
                             f"are {self.bundle.precision!r} (TensorRT builds what the graph's "
                             "types say: use a bundle of that precision)")

    def _make_runner(self, graph):
        from .trt import TrtGraph

        return TrtGraph(self.bundle.path(graph), self.profile(graph), name=f"trt:{graph}",
                        onnx_sha256=self.bundle.sha256(graph), cache_dir=self.cache_dir,
                        precision=self.precision, tf32=self.tf32, device_id=self.device_id,
                        rebuild=self.rebuild, log=self.log)

    def cascade_part(self, x, labels, noise, settings):
        step = self.runner("mcgs_step") if self.route == "step" else None
        if step is None or step.torch is None:
            return super().cascade_part(x, labels, noise, settings)
        up = step.to_device
        return super().cascade_part(up(x), up(labels), [up(draws) for draws in noise],
                                    settings).cpu().numpy()

    def smooth_step(self, center, labels, noise, eps, direction, route=None):
        if isinstance(center, np.ndarray):
            return super().smooth_step(center, labels, noise, eps, direction, route)
        feed = step_feed(center, labels, noise, eps, direction)   # on the device already
        return self.runner("mcgs_step").infer(feed, output_names=[STEPPED],
                                              copy_outputs_to_host=False)[STEPPED]

