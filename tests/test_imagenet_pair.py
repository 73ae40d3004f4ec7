"""The paper's ImageNet pair end to end at 224x224, by RobustBench id, on real photos.

``--backbone Singh2023Revisiting_ViT-S-ConvStem --classifier Tian2022Deeper_DeiT-B`` through
protect/revert (torch and ORT), export + check, parity, bench, camera and evaluate. The two ids
are reduced in width and depth here (same architectures, same key layout, 224x224 input, 1000
classes) and their random checkpoints are written by ``scripts/make_random_imagenet_pair.py``
into RobustBench's folder layout under ``$MSPD_EDGE_MODELS``; benchmarks/imagenet_pair.py runs
the real sizes.
"""
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from mspd_edge import cli
from mspd_edge.zoo import load_model
from mspd_edge.zoo.registry import build
from mspd_edge.zoo.robustbench_ids import ROBUSTBENCH

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
skimage_data = pytest.importorskip("skimage.data")

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "make_random_imagenet_pair.py"
BACKBONE, CLASSIFIER = "Singh2023Revisiting_ViT-S-ConvStem", "Tian2022Deeper_DeiT-B"
PAIR = ["--backbone", BACKBONE, "--classifier", CLASSIFIER]
REDUCED = {BACKBONE: {"embed_dim": 32, "depth": 2, "num_heads": 2, "conv_stem_width": 4},
           CLASSIFIER: {"embed_dim": 32, "depth": 2, "num_heads": 2}}
FAST = ["--n-samples", "4", "--seed", "5", "--precision", "fp32"]   # fp32 parity: the reference precision
EPS_255 = 4   # the ImageNet budget, 4/255
# Pixels, torch vs ORT (the CIFAR tolerance, README): the cascade takes the sign of each
# gradient entry, and an entry within float32 rounding of zero may flip between engines, moving
# that value by 2 eps / N; such flips are rare (< 1% of values) and a level or two at most.
MAX_DIFF_255, MIN_IDENTICAL = 2, 0.99


def _script():
    spec = importlib.util.spec_from_file_location("make_random_imagenet_pair", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make_pair = _script()


def invoke(*args):
    return CliRunner().invoke(cli.main, [str(a) for a in args])


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    """``$MSPD_EDGE_MODELS`` holding the reduced pair, and an empty export cache, for the module."""
    root = tmp_path_factory.mktemp("robustbench-models")
    with pytest.MonkeyPatch.context() as patch:
        for name, reduced in REDUCED.items():
            spec = ROBUSTBENCH[name]
            patch.setitem(ROBUSTBENCH, name, {**spec, "arch_kwargs": {**spec["arch_kwargs"], **reduced}})
        patch.setenv("MSPD_EDGE_MODELS", str(root))
        patch.setenv("MSPD_EDGE_CACHE", str(tmp_path_factory.mktemp("cache")))
        make_pair.write_pair(root)
        yield root


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Two real photos (scikit-image), not 224x224 and not square: 512x512 and 300x451."""
    root = tmp_path_factory.mktemp("photos")
    for name in ("astronaut", "chelsea"):
        Image.fromarray(getattr(skimage_data, name)()).save(root / f"{name}.png")
    return root


def _pixels(folder):
    return {p.name: np.asarray(Image.open(p)).astype(int) for p in sorted(Path(folder).glob("*.png"))}


def test_random_pair_has_robustbench_layout_at_full_size():
    """The script's files at the real sizes (built on the meta device: no weights in memory)."""
    for name, prefix in ((BACKBONE, "model."), (CLASSIFIER, "")):
        with torch.device("meta"):
            state = make_pair.random_state(name, seed=0)
            own = build(ROBUSTBENCH[name]["arch"], num_classes=1000, **ROBUSTBENCH[name]["arch_kwargs"]).state_dict()
        wrapper = ["normalize.mean", "normalize.std"] if prefix else []
        assert list(state) == wrapper + [prefix + key for key in own]
        assert all(state[prefix + k].shape == v.shape for k, v in own.items())
    assert make_pair.checkpoint_path("R", BACKBONE) == Path("R/imagenet/Linf", f"{BACKBONE}.pt")
    assert make_pair.checkpoint_path("R", CLASSIFIER) == Path("R/imagenet/corruptions", f"{CLASSIFIER}.pt")


def test_ids_load_from_the_robustbench_folder(models_dir):
    saved = torch.load(models_dir / "imagenet" / "Linf" / f"{BACKBONE}.pt")
    assert {"normalize.mean", "normalize.std", "model.head.weight"} <= set(saved)
    for name in (BACKBONE, CLASSIFIER):
        info = load_model(name).info
        assert (info.dataset, info.input_size, len(info.classes)) == ("imagenet", (3, 224, 224), 1000)
        assert info.eps == pytest.approx(EPS_255 / 255) and str(models_dir) in info.source
    assert torch.equal(load_model(BACKBONE).state_dict()["head.weight"], saved["model.head.weight"])


def test_protect_torch_and_ort_agree_and_report_the_models(models_dir, photos, tmp_path):
    runs = {}
    for backend in ("torch", "ort"):
        report = tmp_path / f"{backend}.json"
        result = invoke("protect", photos, "-o", tmp_path / backend, "--backend", backend, *PAIR, *FAST,
                        "--report", report, "-q")
        assert result.exit_code == 0, result.output
        runs[backend] = json.loads(report.read_text())
    originals, torch_out, ort_out = _pixels(photos), _pixels(tmp_path / "torch"), _pixels(tmp_path / "ort")
    assert list(originals) == list(torch_out) == list(ort_out)
    for name, original in originals.items():
        assert torch_out[name].shape == original.shape
        assert np.abs(torch_out[name] - original).max() <= EPS_255
        # the whole photo is protected, borders included (no center crop)
        moved = np.abs(torch_out[name] - original).max(axis=2) > 0
        assert moved[:8].mean() > 0.3 and moved[-8:].mean() > 0.3 and moved[:, :8].mean() > 0.3
        diff = np.abs(torch_out[name] - ort_out[name])
        assert diff.max() <= MAX_DIFF_255 and (diff == 0).mean() >= MIN_IDENTICAL
    for backend, report in runs.items():
        settings = report["settings"]
        assert (settings["backbone"], settings["classifier"]) == (BACKBONE, CLASSIFIER)
        assert settings["dataset"] == "imagenet" and settings["input_size"] == [3, 224, 224]
        assert settings["eps_255"] == EPS_255 and settings["backend"] == backend
        assert all(image["resized"] and image["linf_255"] <= EPS_255 for image in report["images"])
    assert [i["label"] for i in runs["torch"]["images"]] == [i["label"] for i in runs["ort"]["images"]]


def test_revert(models_dir, photos, tmp_path):
    result = invoke("revert", photos / "chelsea.png", "-o", tmp_path, *PAIR, *FAST, "--labels", "couple", "-q")
    assert result.exit_code == 0, result.output
    original, reverted = _pixels(photos)["chelsea.png"], _pixels(tmp_path)["chelsea.png"]
    assert np.abs(reverted - original).max() <= EPS_255


def test_export_and_tensorrt_check(models_dir, tmp_path):
    out = tmp_path / "export"
    result = invoke("export", "--model", BACKBONE, "--classifier", CLASSIFIER, "-o", out)
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert (manifest["name"], manifest["classifier_name"], manifest["dataset"]) == (BACKBONE, CLASSIFIER, "imagenet")
    assert manifest["input_size"] == [3, 224, 224] and manifest["num_classes"] == 1000
    assert manifest["eps"] == pytest.approx(EPS_255 / 255)
    # reverse-mode graph vs torch autograd, fp32: ~2e-6 measured (full size too)
    assert manifest["verification"]["backbone_grad_vs_torch"]["max_rel_err"] < 1e-4
    assert all(graph["ok"] for graph in manifest["tensorrt"].values())
    check = invoke("check", out)
    assert check.exit_code == 0, check.output


def test_parity_torch_vs_ort(models_dir, photos, tmp_path):
    """Gradients at 224 (cosine >= 0.99999, relative error <= 1e-4: fp32 graph vs autograd, ~2e-6
    measured) and protected pixels (the tolerance above)."""
    report = tmp_path / "parity.json"
    result = invoke("parity", photos, *PAIR, "--backends", "torch,ort", *FAST, "--min-cosine", 0.99999,
                    "--max-rel-err", 1e-4, "--max-diff", MAX_DIFF_255, "--min-identical", MIN_IDENTICAL,
                    "--json", report)
    assert result.exit_code == 0, result.output
    ort = json.loads(report.read_text())["records"][1]
    assert ort["backend"] == "ort" and ort["ok"] and ort["images"] == 2


def test_bench(models_dir, photos, tmp_path):
    report = tmp_path / "bench.json"
    result = invoke("bench", "--backends", "torch,ort", "--batch-sizes", 1, "--images", 2, "--data", photos,
                    "--no-isolate", "--warmup", 0, *PAIR, *FAST, "--json", report)
    assert result.exit_code == 0, result.output
    records = json.loads(report.read_text())["records"]
    assert [r["backend"] for r in records] == ["torch", "ort"] and all(r["images_per_s"] > 0 for r in records)


def test_camera_on_a_folder_of_photos(models_dir, photos, tmp_path):
    from mspd_edge.cli.camera import camera_command

    result = CliRunner().invoke(camera_command, [str(a) for a in (
        "--source", photos, "--output", tmp_path / "frames", *PAIR, *FAST, "--stats-interval", 0)])
    assert result.exit_code == 0, result.output
    frames = sorted((tmp_path / "frames").glob("*.png"))
    originals = list(_pixels(photos).values())
    assert len(frames) == 2
    for frame, original in zip(frames, originals):
        pixels = np.asarray(Image.open(frame)).astype(int)
        assert pixels.shape == original.shape and np.abs(pixels - original).max() <= EPS_255


@pytest.fixture
def imagenet_target(tmp_path):
    """An unseen ImageNet-architecture target: a reduced DeiT with other random weights."""
    kwargs = {"embed_dim": 32, "depth": 1, "num_heads": 2}
    torch.manual_seed(7)
    torch.save(build("deit", num_classes=1000, **kwargs).state_dict(), tmp_path / "tiny-deit.pt")
    manifest = tmp_path / "tiny-deit.json"
    manifest.write_text(json.dumps({"name": "tiny-deit", "arch": "deit", "arch_kwargs": kwargs,
                                    "dataset": "imagenet"}))
    return manifest


@pytest.fixture
def labelled_photos(tmp_path):
    """A labelled set: one sub-folder per ImageNet class name."""
    for folder, name in (("tabby", "chelsea"), ("coffee_mug", "coffee")):
        (tmp_path / "data" / folder).mkdir(parents=True)
        Image.fromarray(getattr(skimage_data, name)()).save(tmp_path / "data" / folder / f"{name}.png")
    return tmp_path / "data"


def test_evaluate(models_dir, labelled_photos, imagenet_target, tmp_path):
    out = tmp_path / "eval"
    result = invoke("evaluate", "--data", labelled_photos, "--images", 2, "-o", out, "--targets", imagenet_target,
                    "--attacks", "pgd-linf", "--pgd-steps", 1, "--conditions", "none,mspd,reverted-white",
                    *PAIR, *FAST, "-q")
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    assert results["config"]["images"] == 2 and results["config"]["defence"]["backbone"] == BACKBONE
    assert results["config"]["attacks"]["pgd-linf"]["eps"] == pytest.approx(EPS_255 / 255)
    # the default gray-box reverser is a CIFAR-10 model: refused with the reason
    refused = invoke("evaluate", "--data", labelled_photos, "--images", 2, "-o", tmp_path / "gray",
                     "--targets", imagenet_target, "--conditions", "reverted-gray", *PAIR, *FAST, "-q")
    assert refused.exit_code == 2 and "gray-box backbone cifar10-backbone-graybox takes" in refused.output
