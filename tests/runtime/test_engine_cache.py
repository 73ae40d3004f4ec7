"""The TensorRT engine cache accepts only an engine built for the wanted key (no TensorRT needed)."""
import json

import pytest

from mspd_edge.runtime.engine_cache import EngineCache, EngineKey, StaleEngineError, profile_key

PROFILE = profile_key({"center": ((1, 3, 32, 32), (16, 3, 32, 32), (16, 3, 32, 32))})


def key(**changes):
    fields = dict(onnx_sha256="a" * 64, tensorrt_version="10.3.0", gpu_name="Orin",
                  compute_capability="8.7", profile=PROFILE)
    fields.update(changes)
    return EngineKey(**fields)


def test_store_and_load(tmp_path):
    cache = EngineCache(tmp_path)
    builds = []

    def build():
        builds.append(1)
        return b"engine-bytes"

    assert cache.load("mcgs_step", key()) is None
    assert cache.load_or_build("mcgs_step", key(), build) == (b"engine-bytes", True)
    assert cache.load_or_build("mcgs_step", key(), build) == (b"engine-bytes", False)
    assert len(builds) == 1
    # another key lives in another file: both coexist
    assert cache.load_or_build("mcgs_step", key(tensorrt_version="10.4.0"), build)[1] is True


@pytest.mark.parametrize("field, value", [("onnx_sha256", "b" * 64), ("tensorrt_version", "11.0.0"),
                                          ("gpu_name", "H100"), ("compute_capability", "9.0"),
                                          ("profile", profile_key({"center": ((1, 3, 32, 32),) * 3})),
                                          ("precision", "fp16"), ("tf32", True)])
def test_stale_engine_is_rejected(tmp_path, field, value):
    cache = EngineCache(tmp_path)
    cache.store("mcgs_step", key(), b"old engine")
    stale = key(**{field: value})
    # an engine built for key() lying where stale's engine belongs (copied, or a digest clash)
    for old, new in zip(cache.paths("mcgs_step", key()), cache.paths("mcgs_step", stale)):
        new.write_bytes(old.read_bytes())
    with pytest.raises(StaleEngineError, match=field):
        cache.load("mcgs_step", stale)
    with pytest.raises(StaleEngineError):
        cache.load_or_build("mcgs_step", stale, lambda: b"new", rebuild=False)
    lines = []
    assert cache.load_or_build("mcgs_step", stale, lambda: b"new", log=lines.append) == (b"new", True)
    assert "rebuilding" in lines[0] and cache.load("mcgs_step", stale) == b"new"


def test_foreign_or_damaged_engine_is_rejected(tmp_path):
    cache = EngineCache(tmp_path)
    engine, meta = cache.paths("backbone_grad", key())
    tmp_path.mkdir(exist_ok=True)
    engine.write_bytes(b"an engine from elsewhere")          # no key file
    with pytest.raises(StaleEngineError, match="foreign"):
        cache.load("backbone_grad", key())
    cache.store("backbone_grad", key(), b"good engine")
    engine.write_bytes(b"good engine, truncated"[:8])
    with pytest.raises(StaleEngineError, match="do not match"):
        cache.load("backbone_grad", key())
    meta.write_text("{not json")
    with pytest.raises(StaleEngineError, match="unreadable"):
        cache.load("backbone_grad", key())
    # an explicit engine file (e.g. copied from another device) is validated the same way
    other = tmp_path / "copied.engine"
    other.write_bytes(b"x")
    other.with_suffix(".json").write_text(json.dumps({"key": key(gpu_name="Xavier").as_dict(),
                                                      "engine_sha256": "0"}))
    with pytest.raises(StaleEngineError, match="gpu_name"):
        cache.load("backbone_grad", key(), engine_path=other)
