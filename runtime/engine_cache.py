"""A cache of serialized TensorRT engines, keyed and validated (no TensorRT needed here).

An engine is only valid for the exact ONNX graph, TensorRT version, GPU model (compute
capability), optimisation profile shapes and precision it was built with; TensorRT itself
refuses some mismatches at deserialisation and silently misbehaves on none, but a stale
engine for an older graph would deserialize fine and compute the wrong thing. So each engine
``<graph>-<key digest>.engine`` has a sidecar ``.json`` holding its full :class:`EngineKey`
and the engine's own sha256. :meth:`EngineCache.load` returns the engine only when the
sidecar's key equals the wanted key and the bytes hash to the recorded sha256; otherwise it
raises :class:`StaleEngineError` naming the fields that differ. :meth:`load_or_build`
rebuilds in that case (or re-raises with ``rebuild=False``).

Default folder: ``$MSPD_EDGE_CACHE/engines`` or ``~/.cache/mspd-edge/engines``.
"""
import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mspd_edge.util import write_atomic

# 2: engines built by Polygraphy (strongly typed, no workspace cap); 1: the hand-written builder.
ENGINE_FORMAT = 2
CACHE_ENV = "MSPD_EDGE_CACHE"


def cache_root():
    """``$MSPD_EDGE_CACHE``, else ``$XDG_CACHE_HOME/mspd-edge``, else ``~/.cache/mspd-edge``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "mspd-edge"


def default_engine_dir():
    return cache_root() / "engines"


class StaleEngineError(RuntimeError):
    """A cached engine does not belong to the wanted graph, TensorRT, GPU or shapes."""


@dataclass(frozen=True)
class EngineKey:
    """Everything an engine depends on. ``profile``: ``((input, min, opt, max), ...)``."""

    onnx_sha256: str
    tensorrt_version: str
    gpu_name: str
    compute_capability: str
    profile: tuple
    precision: str = "fp32"
    tf32: bool = False
    format: int = ENGINE_FORMAT
    extra: dict = field(default_factory=dict, hash=False)

    def as_dict(self):
        """JSON-ready (tuples as lists), as stored in the sidecar."""
        return json.loads(json.dumps(asdict(self)))

    def digest(self):
        blob = json.dumps(self.as_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


def profile_key(profile):
    """A canonical tuple for a ``{input: (min, opt, max)}`` profile."""
    return tuple((name, *(tuple(int(d) for d in shape) for shape in shapes))
                 for name, shapes in sorted(profile.items()))


def _differences(stored, wanted):
    keys = sorted(set(stored) | set(wanted))
    return [f"{k}: cached {stored.get(k)!r}, wanted {wanted.get(k)!r}"
            for k in keys if stored.get(k) != wanted.get(k)]


class EngineCache:
    """Engines and their key sidecars in one folder (created on first store)."""

    def __init__(self, root=None):
        self.root = Path(root) if root is not None else default_engine_dir()

    def paths(self, graph, key):
        stem = self.root / f"{graph}-{key.digest()}"
        return stem.with_suffix(".engine"), stem.with_suffix(".json")

    def load(self, graph, key, engine_path=None):
        """The engine bytes for ``key``; None when absent; :class:`StaleEngineError` when the
        engine at that place (or at ``engine_path``, e.g. one copied from another device) was
        built for another key, has no sidecar, or its bytes changed."""
        default_engine, default_meta = self.paths(graph, key)
        engine = Path(engine_path) if engine_path is not None else default_engine
        meta = engine.with_suffix(".json") if engine_path is not None else default_meta
        if not engine.exists():
            return None
        if not meta.is_file():
            raise StaleEngineError(f"{engine}: no key file {meta.name} (a foreign engine: "
                                   "unknown graph, TensorRT version and GPU)")
        try:
            stored = json.loads(meta.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise StaleEngineError(f"{meta}: unreadable key file ({exc})") from None
        wanted = key.as_dict()
        diffs = _differences(stored.get("key", {}), wanted)
        if diffs:
            raise StaleEngineError(f"{engine}: built for another setup: " + "; ".join(diffs))
        data = engine.read_bytes()
        if hashlib.sha256(data).hexdigest() != stored.get("engine_sha256"):
            raise StaleEngineError(f"{engine}: the engine bytes do not match their key file "
                                   "(changed or truncated)")
        return data

    def store(self, graph, key, data):
        """Write the engine and then its sidecar, each atomically; returns the engine path."""
        engine, meta = self.paths(graph, key)
        self.root.mkdir(parents=True, exist_ok=True)
        write_atomic(engine, bytes(data))
        sidecar = {"graph": graph, "key": key.as_dict(),
                   "engine_sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
        write_atomic(meta, (json.dumps(sidecar, indent=2) + "\n").encode())
        return engine

    def remove(self, graph, key):
        for path in self.paths(graph, key):
            path.unlink(missing_ok=True)

    def load_or_build(self, graph, key, build, rebuild=True, log=None):
        """``(engine bytes, built)``: the cached engine, else ``build()`` stored under ``key``.

        A stale or foreign engine at the key's place is rebuilt (``log`` gets one line why) or,
        with ``rebuild=False``, reported as :class:`StaleEngineError`.
        """
        try:
            data = self.load(graph, key)
        except StaleEngineError as exc:
            if not rebuild:
                raise
            if log:
                log(f"rebuilding the TensorRT engine: {exc}")
            self.remove(graph, key)
            data = None
        if data is not None:
            return data, False
        data = build()
        self.store(graph, key, data)
        return data, True

