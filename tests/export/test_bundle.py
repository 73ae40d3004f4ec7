"""export_bundle / check_bundle, and the ``export`` and ``check`` commands."""
import json

import numpy as np
import onnx
import pytest
import torch
from click.testing import CliRunner

from mspd_edge.bundle import BundleError, read_manifest
from mspd_edge.export.bundle import check_bundle, export_bundle
from mspd_edge.cli.export import _paired_classifier, check_command, export_command
from mspd_edge.digest import sha256_file
from mspd_edge.export.onnxutil import ExportError
from mspd_edge.zoo.registry import build

from export_helpers import INPUT, make_model, randomize_batchnorm, session

KEYS = {"backbone", "backbone_grad", "mcgs_step", "input_size", "channels", "classes", "eps",
        "opset", "sha256", "versions"}


def _legacy_file(module, path, opset=17):
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), (torch.rand(1, *INPUT),), str(path), dynamo=False,
                          opset_version=opset, input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "b"}, "y": {0: "b"}})
    return path


@pytest.fixture(scope="module")
def tiny_zoo(tmp_path_factory):
    """A tiny backbone and classifier as model manifests + weights, as load_model reads them."""
    root = tmp_path_factory.mktemp("zoo")
    torch.manual_seed(0)
    specs = {"tiny-back": ("dm_preact_resnet", {"base_width": 4}),
             "tiny-cls": ("cifarnet", {"widths": [8, 16, 16], "stem": 8})}
    for name, (arch, kwargs) in specs.items():
        torch.save(build(arch, num_classes=10, **kwargs).state_dict(), root / f"{name}.pt")
        (root / f"{name}.json").write_text(json.dumps(
            {"name": name, "arch": arch, "arch_kwargs": kwargs, "dataset": "cifar10"}))
    return root


def test_export_bundle_from_torch_modules(tmp_path):
    backbone, classifier = make_model("dm_preact_resnet"), make_model("cifarnet")
    manifest = export_bundle(backbone, tmp_path, classifier=classifier, input_size=INPUT,
                             name="b", classifier_name="c")
    assert KEYS | {"classifier"} <= set(manifest)
    assert manifest["input_size"] == [3, 32, 32] and manifest["channels"] == 3
    assert manifest["eps"] == pytest.approx(8 / 255) and manifest["opset"] == 17
    assert all(r["ok"] for r in manifest["tensorrt"].values())
    assert manifest["verification"]["backbone_grad_vs_torch"]["max_rel_err"] < 1e-5
    assert set(manifest["versions"]) >= {"mspd_edge", "onnx", "torch"}
    on_disk = read_manifest(tmp_path)
    assert on_disk == json.loads(json.dumps(manifest))
    for graph in ("backbone", "backbone_grad", "mcgs_step", "classifier"):
        path = tmp_path / manifest[graph]
        assert manifest["sha256"][path.name] == sha256_file(path)
    logits = session(onnx.load(str(tmp_path / "classifier.onnx"))).run(
        None, {"images": np.zeros((2, *INPUT), np.float32)})[0]
    with torch.no_grad():
        np.testing.assert_allclose(logits, classifier(torch.zeros(2, *INPUT)).numpy(), atol=1e-5)
    reports = check_bundle(tmp_path)
    assert set(reports) == {"backbone", "backbone_grad", "mcgs_step", "classifier"}
    assert all(r.ok for r in reports.values())


def test_airbench_classifier_exports_with_its_tta(tmp_path):
    """The whitening stem and the reflect-padded translate TTA export to ONNX: logits as in
    PyTorch to float32 rounding (atol 1e-5 on logits of order 0.1: the 1/9 logit scale)."""
    torch.manual_seed(1)
    classifier = randomize_batchnorm(build("cifarnet", num_classes=10, widths=(8, 16, 16), stem=24, whiten=2,
                                           bn_eps=1e-12, logit_scale=1 / 9, translate_tta=True).eval())
    export_bundle(make_model("dm_preact_resnet"), tmp_path, classifier=classifier, input_size=INPUT)
    images = torch.rand(4, *INPUT)
    logits = session(onnx.load(str(tmp_path / "classifier.onnx"))).run(None, {"images": images.numpy()})[0]
    with torch.no_grad():
        np.testing.assert_allclose(logits, classifier(images).numpy(), atol=1e-5)


def test_export_bundle_from_onnx_and_tampering(tmp_path):
    source = _legacy_file(make_model("resnet"), tmp_path / "made_elsewhere.onnx", opset=13)
    out = tmp_path / "bundle"
    manifest = export_bundle(str(source), out)
    assert "classifier" not in manifest and manifest["classes"] is None
    assert manifest["num_classes"] == 10 and manifest["eps"] == pytest.approx(8 / 255)
    assert "verification" not in manifest and "torch" not in manifest["versions"]
    with open(out / "mcgs_step.onnx", "ab") as f:
        f.write(b"\0")
    with pytest.raises(BundleError, match="mcgs_step.onnx: sha256 does not match"):
        check_bundle(out)


def test_bundle_refuses_mismatched_classifier(tmp_path):
    with pytest.raises(ExportError, match="classifier has 7 classes"):
        export_bundle(make_model("resnet"), tmp_path, input_size=INPUT,
                      classifier=make_model("cifarnet", num_classes=7))


def test_cli_export_and_check(tiny_zoo, tmp_path):
    runner = CliRunner()
    out = tmp_path / "bundle"
    result = runner.invoke(export_command, ["--model", str(tiny_zoo / "tiny-back.json"),
                                            "--classifier", str(tiny_zoo / "tiny-cls.json"),
                                            "--eps", "4", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "backbone_grad.onnx: " in result.output and "TensorRT check ok" in result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["name"] == "tiny-back" and manifest["classifier_name"] == "tiny-cls"
    assert manifest["classifier"] == "classifier.onnx" and manifest["eps"] == pytest.approx(4 / 255)
    assert manifest["classes"][0] == "airplane"
    result = runner.invoke(check_command, [str(out)])
    assert result.exit_code == 0 and result.output.count(": OK (") == 4
    result = runner.invoke(check_command, [str(out), "--json"])
    assert json.loads(result.output)["mcgs_step"]["ok"] is True

    # --onnx: a classifier made elsewhere, with an ONNX label classifier
    back = _legacy_file(make_model("preact_resnet"), tmp_path / "back.onnx")
    cls = _legacy_file(make_model("cifarnet"), tmp_path / "cls.onnx")
    out2 = tmp_path / "bundle2"
    result = runner.invoke(export_command, ["--onnx", str(back), "--classifier", str(cls), "-o", str(out2)])
    assert result.exit_code == 0, result.output
    assert read_manifest(out2)["classifier"] == "classifier.onnx"
    result = runner.invoke(export_command, ["--onnx", str(back), "--no-classifier", "-o", str(out2)])
    assert result.exit_code == 0 and not (out2 / "classifier.onnx").exists()


def test_cli_errors(tmp_path):
    runner = CliRunner()
    assert runner.invoke(export_command, ["-o", str(tmp_path)]).exit_code == 2
    result = runner.invoke(export_command, ["--onnx", str(tmp_path / "missing.onnx"), "-o", str(tmp_path)])
    assert result.exit_code == 2 and "missing.onnx" in result.output

    class Upsampling(torch.nn.Module):
        def forward(self, x):
            x = torch.nn.functional.interpolate(x, scale_factor=2.0, mode="nearest")
            return x.mean(dim=(2, 3))

    bad = _legacy_file(Upsampling(), tmp_path / "bad.onnx")
    result = runner.invoke(export_command, ["--onnx", str(bad), "-o", str(tmp_path / "out")])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {bad}: cannot differentiate")
    assert "Resize" in lines[0]

    not_onnx = tmp_path / "junk.onnx"
    not_onnx.write_bytes(b"not a model")
    result = runner.invoke(export_command, ["--onnx", str(not_onnx), "-o", str(tmp_path / "out")])
    assert result.exit_code == 1 and "junk.onnx" in result.output

    result = runner.invoke(check_command, [str(tmp_path)])
    assert result.exit_code == 1 and "no manifest" in result.output
    from onnx import TensorProto, helper
    graph = helper.make_graph([helper.make_node("Unique", ["x"], ["y"], name="u")], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "unique.onnx"))
    result = runner.invoke(check_command, [str(tmp_path / "unique.onnx")])
    assert result.exit_code == 1 and "u (Unique): Unique is not supported" in result.output


def test_paired_classifier(tmp_path):
    from types import SimpleNamespace
    assert _paired_classifier(SimpleNamespace(info=SimpleNamespace(name="x", pair="y"))) == "y"
    assert _paired_classifier(SimpleNamespace(info=SimpleNamespace(name="cifar10-backbone", pair=None))) \
        == "cifar10-classifier"
    assert _paired_classifier(SimpleNamespace(info=SimpleNamespace(name="Wong2020Fast", pair=None))) is None


def test_fixed_batch_graph_is_refused(tmp_path):
    """A graph whose batch cannot be freed (a class token expanded to batch 1) is refused."""
    import warnings

    module = make_model("deit").eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.rand(1, *INPUT),), str(tmp_path / "fixed.onnx"), dynamo=False,
                          opset_version=17)          # no dynamic axes: batch 1 baked in
    try:
        export_bundle(str(tmp_path / "fixed.onnx"), tmp_path / "out")
    except ExportError as exc:
        assert "batch" in str(exc)
    else:   # the clean-up freed the batch: then batch 2 must really work
        sess = session(onnx.load(str(tmp_path / "out" / "backbone_grad.onnx")))
        x = np.random.default_rng(0).random((2, *INPUT), dtype=np.float32)
        assert sess.run(["grad"], {"images": x, "labels": np.array([1, 2])})[0].shape == (2, *INPUT)
