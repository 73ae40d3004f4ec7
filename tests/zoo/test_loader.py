"""load_model / list_models: names, files, checkpoint layouts, locations and error messages."""
import argparse
import json

import pytest
import torch

from mspd_edge.zoo import ModelInfo, list_models, load_model, loader, locate, save_weights
from mspd_edge.zoo.embedded import EMBEDDED
from mspd_edge.zoo.registry import build
from mspd_edge.zoo.robustbench_ids import ROBUSTBENCH

TINY_WONG = {**ROBUSTBENCH["Wong2020Fast"], "arch_kwargs": {
    **ROBUSTBENCH["Wong2020Fast"]["arch_kwargs"], "base_width": 4}}
TINY_VIT = {**ROBUSTBENCH["Singh2023Revisiting_ViT-S-ConvStem"], "arch_kwargs": {
    **ROBUSTBENCH["Singh2023Revisiting_ViT-S-ConvStem"]["arch_kwargs"],
    "img_size": 32, "embed_dim": 16, "depth": 1, "num_heads": 2, "conv_stem_width": 2}}


@pytest.fixture
def tiny_ids(monkeypatch):
    """Reduced sizes for two RobustBench ids, so their checkpoints are small."""
    monkeypatch.setitem(ROBUSTBENCH, "Wong2020Fast", TINY_WONG)
    monkeypatch.setitem(ROBUSTBENCH, "Singh2023Revisiting_ViT-S-ConvStem", TINY_VIT)


@pytest.fixture
def weights_dir(tmp_path, monkeypatch):
    """An empty embedded-weights folder (nothing shipped yet)."""
    folder = tmp_path / "weights"
    folder.mkdir()
    monkeypatch.setattr(locate, "WEIGHTS_DIR", folder)
    return folder


def tiny_wong():
    torch.manual_seed(0)
    model = build("preact_resnet", **TINY_WONG["arch_kwargs"]).eval()
    for name, tensor in model.state_dict().items():  # non-trivial BatchNorm statistics
        if "running" in name:
            tensor.uniform_(0.5, 1.5)
    return model


def same_function(a, b, size=32):
    x = torch.rand(2, 3, size, size)
    torch.testing.assert_close(a(x), b(x))


def test_list_models_lists_embedded_and_robustbench(weights_dir):
    names = list_models()
    assert set(EMBEDDED) <= set(names)
    assert set(ROBUSTBENCH) <= set(names)


@pytest.mark.parametrize("layout", ["plain", "state_dict", "model", "model_state_dict", "module.",
                                    "state_dict+module.", "model.", "module.model."])
def test_checkpoint_layouts(layout, tiny_ids, tmp_path):
    reference = tiny_wong()
    state = reference.state_dict()
    for prefix in ("module.model.", "model.", "module."):
        if layout.endswith(prefix):
            state = {prefix + k: v for k, v in state.items()}
            break
    wrapper = layout.split("+")[0]
    if wrapper in ("state_dict", "model", "model_state_dict"):
        state = {wrapper: state, "epoch": 3}
    path = tmp_path / "ckpt.pt"
    torch.save(state, path)
    model = load_model("Wong2020Fast", checkpoint=path)
    same_function(model, reference)


def test_returned_model_is_frozen_float32_eval_with_info(tiny_ids, tmp_path):
    path = tmp_path / "ckpt.pt"
    torch.save({k: v.half() if v.is_floating_point() else v
                for k, v in tiny_wong().state_dict().items()}, path)
    model = load_model("Wong2020Fast", checkpoint=path)
    assert not model.training
    assert all(p.dtype == torch.float32 and not p.requires_grad for p in model.parameters())
    info = model.info
    assert isinstance(info, ModelInfo)
    assert (info.name, info.arch, info.dataset) == ("Wong2020Fast", "preact_resnet", "cifar10")
    assert info.input_size == (3, 32, 32) and info.eps == pytest.approx(8 / 255)
    assert info.classes[0] == "airplane" and len(info.classes) == 10
    assert str(path) in info.source


def test_imagenet_id_with_normalizer_wrapper(tiny_ids, tmp_path):
    """RobustBench/timm ImageNet layout: ``normalize.mean``/``std`` plus ``model.``-prefixed keys."""
    torch.manual_seed(0)
    reference = build("vit_convstem", num_classes=1000, **TINY_VIT["arch_kwargs"]).eval()
    state = {f"model.{k}": v for k, v in reference.state_dict().items()}
    state["normalize.mean"] = reference.normalize.mean.clone()
    state["normalize.std"] = reference.normalize.std.clone()
    path = tmp_path / "vit.pt"
    torch.save(state, path)
    model = load_model("Singh2023Revisiting_ViT-S-ConvStem", checkpoint=path)
    same_function(model, reference)
    assert model.info.eps == pytest.approx(4 / 255) and model.info.input_size == (3, 224, 224)
    assert len(model.info.classes) == 1000 and model.info.classes[0] == "tench"


def test_normalisation_buffers_in_checkpoint_are_used(tiny_ids, tmp_path):
    state = {**tiny_wong().state_dict(), "mu": torch.full((1, 3, 1, 1), 0.25), "sigma": torch.ones(3)}
    path = tmp_path / "ckpt.pt"
    torch.save(state, path)
    model = load_model("Wong2020Fast", checkpoint=path)
    assert torch.all(model.normalize.mean == 0.25) and torch.all(model.normalize.std == 1)


def test_missing_and_unexpected_keys_are_named(tiny_ids, tmp_path):
    state = tiny_wong().state_dict()
    state["fc.weight"] = state.pop("linear.weight")
    path = tmp_path / "ckpt.pt"
    torch.save(state, path)
    with pytest.raises(ValueError, match="does not fit Wong2020Fast") as err:
        load_model("Wong2020Fast", checkpoint=path)
    assert "missing keys ['linear.weight']" in str(err.value)
    assert "unexpected keys ['fc.weight']" in str(err.value)


def test_wrong_shapes_are_named(tiny_ids, tmp_path):
    state = tiny_wong().state_dict()
    state["linear.bias"] = torch.zeros(100)
    path = tmp_path / "ckpt.pt"
    torch.save(state, path)
    with pytest.raises(ValueError, match=r"wrong shapes .*linear\.bias \(100,\) vs \(10,\)"):
        load_model("Wong2020Fast", checkpoint=path)


def test_pickled_objects_need_weights_only_false(tiny_ids, tmp_path):
    path = tmp_path / "ckpt.pt"
    torch.save({"model": tiny_wong().state_dict(), "args": argparse.Namespace(lr=0.1)}, path)
    with pytest.raises(ValueError, match="weights_only=False"):
        load_model("Wong2020Fast", checkpoint=path)
    same_function(load_model("Wong2020Fast", checkpoint=path, weights_only=False), tiny_wong())


def test_files_that_are_no_checkpoint_are_named_before_torch_reads_them(tiny_ids, tmp_path):
    page = tmp_path / "page.pt"
    page.write_bytes(b"<!DOCTYPE html><html><title>Google Drive - Virus scan warning</title></html>")
    with pytest.raises(ValueError, match=rf"^{page} is not a torch checkpoint: got an HTML page"):
        load_model("Wong2020Fast", checkpoint=page)
    legacy = tmp_path / "legacy.pt"
    torch.save(tiny_wong().state_dict(), legacy, _use_new_zipfile_serialization=False)
    legacy.write_bytes(legacy.read_bytes()[:-100])       # a truncated legacy (pickle) file
    with pytest.raises(ValueError, match=rf"^{legacy} cannot be read as a torch checkpoint \(.*truncated"):
        load_model("Wong2020Fast", checkpoint=legacy)


def test_check_checkpoint_reports_without_loading(tiny_ids, tmp_path):
    good, other = tmp_path / "good.pt", tmp_path / "other.pt"
    torch.save({"state_dict": tiny_wong().state_dict()}, good)
    torch.save(build("resnet", base_width=4).state_dict(), other)
    assert loader.check_checkpoint("Wong2020Fast", good) is None
    assert loader.check_checkpoint("Wong2020Fast", other).startswith(
        "it does not fit Wong2020Fast (preact_resnet): unexpected keys")


def _robustbench_file(root):
    path = root / "cifar10" / "Linf" / "Wong2020Fast.pt"
    path.parent.mkdir(parents=True)
    torch.save({"state_dict": tiny_wong().state_dict()}, path)
    return path


def test_robustbench_location_in_current_dir(tiny_ids, tmp_path, monkeypatch):
    monkeypatch.delenv(locate.MODELS_ENV, raising=False)
    path = _robustbench_file(tmp_path / "models")
    monkeypatch.chdir(tmp_path)
    model = load_model("Wong2020Fast")
    same_function(model, tiny_wong())
    assert "models/cifar10/Linf/Wong2020Fast.pt" in model.info.source
    assert locate.robustbench_checkpoint("Wong2020Fast").resolve() == path


def test_robustbench_location_from_env(tiny_ids, tmp_path, monkeypatch):
    path = _robustbench_file(tmp_path / "zoo")
    monkeypatch.setenv(locate.MODELS_ENV, str(tmp_path / "zoo"))
    monkeypatch.chdir(tmp_path)
    assert locate.robustbench_checkpoint("Wong2020Fast") == path
    same_function(load_model("Wong2020Fast"), tiny_wong())


def test_robustbench_missing_file_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.delenv(locate.MODELS_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    expected = r"models/imagenet/corruptions/Tian2022Deeper_DeiT-B\.pt.*tian2022deeper-deit-b\.pth"
    with pytest.raises(FileNotFoundError, match=expected):
        load_model("Tian2022Deeper_DeiT-B")


def test_embedded_not_shipped_yet(weights_dir):
    with pytest.raises(FileNotFoundError, match="not shipped yet"):
        load_model("cifar10-backbone")


def _ship(weights_dir, name, arch, arch_kwargs, role="target", **extra):
    torch.manual_seed(0)
    reference = build(arch, **arch_kwargs).eval()
    torch.save({k: v.half() if v.is_floating_point() else v
                for k, v in reference.state_dict().items()}, weights_dir / f"{name}.pt")
    manifest = {"name": name, "role": role, "arch": arch, "arch_kwargs": arch_kwargs,
                "dataset": "cifar10", "input_size": [3, 32, 32], "eps": 8 / 255,
                "classes": [f"c{i}" for i in range(10)], **extra}
    (weights_dir / f"{name}.json").write_text(json.dumps(manifest))
    return reference.float()


def test_embedded_manifest_and_fp16_weights(weights_dir):
    reference = _ship(weights_dir, "cifar10-backbone", "dm_preact_resnet",
                      {"base_width": 4, "activation": "swish"}, role="backbone")
    model = load_model("cifar10-backbone")
    x = torch.rand(2, 3, 32, 32)
    torch.testing.assert_close(model(x), reference(x), atol=1e-2, rtol=1e-2)
    assert model.info.classes[3] == "c3" and model.info.arch == "dm_preact_resnet"
    assert next(model.parameters()).dtype == torch.float32


def test_other_manifests_are_listed_and_loadable_by_name_or_path(weights_dir):
    _ship(weights_dir, "cifar10-test-wrn", "dm_wide_resnet", {"depth": 10, "width": 1})
    assert "cifar10-test-wrn" in list_models()
    assert load_model("cifar10-test-wrn").info.arch == "dm_wide_resnet"
    assert load_model(weights_dir / "cifar10-test-wrn.json").info.name == "cifar10-test-wrn"


def test_smoothed_targets_carry_their_sigma(weights_dir):
    for name in ("cifar10-smoothed-025", "cifar10-smoothed-050"):
        spec = EMBEDDED[name]
        assert spec["smoothing_sigma"] == spec["train"]["noise_sigma"] and spec["train"]["recipe"] == "gaussian"
        _ship(weights_dir, name, spec["arch"], {**spec["arch_kwargs"], "base_width": 4}, role="smoothed",
              smoothing_sigma=spec["smoothing_sigma"])
        assert load_model(name).info.smoothing_sigma == spec["smoothing_sigma"]
    assert EMBEDDED["cifar10-target-l0"]["train"]["recipe"] == "fast-ls-l0"
    _ship(weights_dir, "plain", "resnet", {"depth": 18, "base_width": 4})
    assert load_model("plain").info.smoothing_sigma is None


def test_checkpoint_path_named_after_its_model(tiny_ids, tmp_path):
    path = tmp_path / "Wong2020Fast.pt"
    torch.save(tiny_wong().state_dict(), path)
    assert load_model(path).info.name == "Wong2020Fast"


def test_checkpoint_path_recognised_by_its_keys(tiny_ids, tmp_path, weights_dir):
    path = tmp_path / "downloaded.pt"
    torch.save({"state_dict": tiny_wong().state_dict()}, path)
    same_function(load_model(path), tiny_wong())


def test_checkpoint_path_that_fits_two_models(tiny_ids, tmp_path, weights_dir):
    _ship(weights_dir, "cifar10-test-preact", "preact_resnet", TINY_WONG["arch_kwargs"])
    path = tmp_path / "downloaded.pt"
    torch.save(tiny_wong().state_dict(), path)
    with pytest.raises(ValueError, match=r"fits \['cifar10-test-preact', 'Wong2020Fast'\]"):
        load_model(path)


def test_checkpoint_path_that_fits_nothing(tmp_path, weights_dir):
    path = tmp_path / "mystery.pt"
    torch.save({"w": torch.zeros(3)}, path)
    with pytest.raises(ValueError, match=r"fits no known model.*load_model\(NAME, checkpoint="):
        load_model(path)


def test_unknown_name():
    with pytest.raises(ValueError, match="unknown model 'NoSuchModel'"):
        load_model("NoSuchModel")


def test_save_weights_writes_floats_in_fp16_and_loads_back(tiny_ids, tmp_path):
    torch.manual_seed(0)
    reference = tiny_wong().eval()
    path = tmp_path / "Wong2020Fast.pt"
    save_weights(reference.state_dict(), path)
    saved = torch.load(path, weights_only=True)
    assert {k: v.dtype for k, v in saved.items() if not v.is_floating_point()} == \
        {k: v.dtype for k, v in reference.state_dict().items() if not v.is_floating_point()}
    assert all(v.dtype == torch.float16 for v in saved.values() if v.is_floating_point())
    model = load_model("Wong2020Fast", checkpoint=path)
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(model(x), reference(x), atol=0.05)
