"""The runtime imports and protects with torch blocked from import (a device without torch)."""
import json

from torch_free import run_without_torch


def test_protect_without_torch(tiny_bundle, cifar10_dir, tmp_path):
    """In one fresh interpreter where ``import torch`` fails: import the runtime, protect two
    CIFAR-10 images through the pipeline, probe the TensorRT path, then run ``mspd-edge protect
    --backend ort``, and ask for an automatic export (which needs torch: a clean usage error)."""
    code = f"""
import json, sys
import numpy as np
import mspd_edge.runtime as rt
from mspd_edge.data import load_npz
from mspd_edge.pipeline import Settings, protect_images
images = list(load_npz({str(cifar10_dir / 'test.npz')!r}, limit=2)[0])
with rt.OrtBackend({str(tiny_bundle)!r}, threads=1) as backend:
    settings = Settings(n_samples=2, seed=5).resolved(backend)
    out = [img for _, img, _ in protect_images(images, backend, settings)]
levels = max(int(np.abs(a.astype(int) - b.astype(int)).max()) for a, b in zip(out, images))
trt_ok, trt_why = rt.trt_available()     # imports Polygraphy, probes TensorRT and CUDA
heavy = sorted(m for m in sys.modules if m.split(".")[0] == "onnx" or m.startswith("mspd_edge.export"))
from mspd_edge.cli import main
import cv2
for i, img in enumerate(images):
    cv2.imwrite({str(tmp_path)!r} + f"/in{{i}}.png", img[:, :, ::-1])
codes = []
for args in (["--model-dir", {str(tiny_bundle)!r}], []):
    try:
        main(["protect", {str(tmp_path)!r} + "/in0.png", "-o", {str(tmp_path / 'out')!r}, "-q",
              "--backend", "ort", "--n-samples", "2", "--seed", "1", *args], standalone_mode=False)
        codes.append(0)
    except SystemExit as exc:
        codes.append(exc.code)
    except Exception as exc:
        codes.append(type(exc).__name__ + ": " + str(exc))
print(json.dumps({{"shapes": [list(o.shape) for o in out], "levels": levels, "codes": codes,
                  "heavy": heavy, "trt": [trt_ok, trt_why],
                  "torch": [m for m in sys.modules if m == "torch" or m.startswith("torch.")]}}))
"""
    done = run_without_torch(code, env={"MSPD_EDGE_CACHE": str(tmp_path / "cache")})
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["torch"] == []
    assert result["heavy"] == []      # the runtime needs neither onnx nor the exporter
    assert result["trt"][0] or result["trt"][1]   # available, or one line saying why not
    assert result["shapes"] == [[32, 32, 3], [32, 32, 3]] and 0 < result["levels"] <= 8
    assert result["codes"][0] == 0 and (tmp_path / "out" / "in0.png").is_file()
    assert "UsageError" in str(result["codes"][1]) and "needs torch" in str(result["codes"][1])


def test_locator_and_models_command_without_torch(tmp_path):
    """With torch blocked: the export cache keys a RobustBench checkpoint found by the zoo's
    locator, and ``mspd-edge models pull --from FILE`` / ``verify`` / ``list`` run (the file's
    bytes are checked; its keys need torch)."""
    import torch

    source = tmp_path / "wong.pt"
    torch.save({"w": torch.ones(2)}, source)
    code = f"""
import json, sys
from mspd_edge.cli import main
from mspd_edge.runtime import exports
codes = []
for args in (["pull", "Wong2020Fast", "--from", {str(source)!r}], ["verify"], ["list"]):
    try:
        main(["models", *args])
    except SystemExit as exc:
        codes.append(exc.code)
print(json.dumps({{"codes": codes, "export": str(exports.export_dir("Wong2020Fast", root="x")),
                  "torch": [m for m in sys.modules if m == "torch" or m.startswith("torch.")]}}))
"""
    done = run_without_torch(code, env={"MSPD_EDGE_MODELS": str(tmp_path / "zoo")})
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    result = json.loads(lines[-1])
    assert result["torch"] == [] and result["codes"] == [0, 0, 0]
    assert "bytes only: keys unchecked without torch" in lines[0] and lines[1].startswith("ok ")
    assert result["export"].startswith("x/Wong2020Fast-")
