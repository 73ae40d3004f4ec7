"""The ONNX Runtime runner (Polygraphy-style protocol), provider options and Polygraphy's Comparator."""
import numpy as np
import pytest

from mspd_edge.measure.compare import Tolerances, array_error, compare_graphs
from mspd_edge.runtime.runners import (OnnxRuntimeRunner, ProviderUnavailable, available_providers,
                                       provider_chain)


def test_runner_protocol(tiny_bundle):
    runner = OnnxRuntimeRunner(tiny_bundle / "backbone_grad.onnx", threads=1)
    x = np.random.default_rng(0).random((3, 3, 32, 32), dtype=np.float32)
    y = np.array([1, 2, 3], np.int64)
    with pytest.raises(RuntimeError, match="activate"):
        runner.infer({"images": x, "labels": y})
    with runner:
        meta = runner.get_input_metadata()
        assert list(meta) == ["images", "labels"]
        assert meta["images"].dtype == np.float32 and meta["images"].shape[1:] == (3, 32, 32)
        assert meta["labels"].dtype == np.int64
        out = runner.infer({"images": x, "labels": y})
        assert set(out) >= {"grad"} and out["grad"].shape == x.shape
        assert runner.last_inference_time() > 0
        only = runner.infer({"images": x, "labels": y}, output_names=["grad"])
        assert list(only) == ["grad"] and np.array_equal(only["grad"], out["grad"])
        with pytest.raises(ValueError, match="dtype int32"):
            runner.infer({"images": x, "labels": y.astype(np.int32)})
        with pytest.raises(ValueError, match="missing"):
            runner.infer({"images": x})
    assert not runner.is_active


def test_provider_options():
    names, options = provider_chain("tensorrt", device_id=1, fp16=True, cache_dir="/c",
                                    profile={"images": ((1, 3, 32, 32), (8, 3, 32, 32), (16, 3, 32, 32)),
                                             "eps": ((), (), ())})
    assert names == ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    trt = options[0]
    assert trt["device_id"] == "1" and trt["trt_fp16_enable"] == "True"
    assert trt["trt_engine_cache_enable"] == "True" and trt["trt_engine_cache_path"] == "/c"
    assert trt["trt_profile_min_shapes"] == "images:1x3x32x32"
    assert trt["trt_profile_max_shapes"] == "images:16x3x32x32"
    assert options[1]["use_tf32"] == "0"          # fp32 parity: no TF32 on CUDA
    assert provider_chain("cpu") == (["CPUExecutionProvider"], [{}])
    with pytest.raises(ValueError):
        provider_chain("rocm")


@pytest.mark.skipif("cuda" in available_providers(), reason="this onnxruntime has CUDA")
def test_missing_provider_is_explained(tiny_bundle):
    with pytest.raises(ProviderUnavailable, match="onnxruntime-gpu"):
        OnnxRuntimeRunner(tiny_bundle / "backbone.onnx", provider="cuda").activate()


def test_compare_graphs_with_polygraphy(tiny_bundle):
    """Polygraphy's Comparator on two ORT CPU sessions of one graph (optimised, unoptimised):
    they agree to float32 rounding, and a tolerance tighter than that rounding fails."""
    runners = [OnnxRuntimeRunner(tiny_bundle / "backbone_grad.onnx", optimization_level=level,
                                 threads=1, name=level).polygraphy_runner() for level in ("all", "disable")]
    rng = np.random.default_rng(1)
    feeds = [{"images": rng.random((n, 3, 32, 32), dtype=np.float32),
              "labels": rng.integers(0, 10, n).astype(np.int64)} for n in (1, 5)]
    report = compare_graphs(runners, feeds)
    grad = report["disable"]["grad"]
    assert set(report["disable"]) == {"grad", "loss", "logits"}
    assert grad["ok"] and grad["cosine"] > 0.999999 and grad["max_abs"] <= grad["atol"]
    impossible = compare_graphs(runners, feeds, Tolerances(min_cosine=1.5))   # cosine <= 1
    assert not impossible["disable"]["grad"]["ok"]
    same = array_error([1.0, 2.0], [1.0, 2.0])
    assert same["max_abs"] == same["rel_err"] == 0 and same["cosine"] == pytest.approx(1)
