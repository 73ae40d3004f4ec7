"""The bundle contract without torch or onnx: metadata, signatures, integrity checks."""
import json

import pytest

from mspd_edge.digest import sha256_file
from mspd_edge.bundle import Bundle, BundleError


def test_bundle_metadata(tiny_bundle):
    bundle = Bundle(tiny_bundle)
    assert bundle.input_size == (3, 32, 32)
    assert bundle.eps == pytest.approx(8 / 255)
    assert bundle.classes[0] == "airplane" and len(bundle.classes) == bundle.num_classes == 10
    assert all(bundle.has(g) for g in ("backbone", "backbone_grad", "mcgs_step", "classifier"))
    assert bundle.meta("backbone").name == "tiny-back"
    assert bundle.meta("classifier").name == "tiny-cls"
    step_inputs = [i["name"] for i in bundle.signature("mcgs_step")["inputs"]]
    assert step_inputs == ["center", "labels", "noise", "eps", "direction"]
    path = bundle.path("mcgs_step")
    assert path.is_file() and sha256_file(path) == bundle.sha256("mcgs_step")


def test_changed_graph_is_refused(bundle_copy):
    graph = bundle_copy / "backbone_grad.onnx"
    graph.write_bytes(graph.read_bytes() + b"\0")
    bundle = Bundle(bundle_copy)
    bundle.path("backbone")          # other graphs are still fine
    with pytest.raises(BundleError, match="sha256 does not match"):
        bundle.path("backbone_grad")


def test_not_a_bundle(tmp_path, bundle_copy):
    with pytest.raises(BundleError, match="no manifest"):
        Bundle(tmp_path)
    manifest = bundle_copy / "manifest.json"
    data = json.loads(manifest.read_text())
    del data["classifier"]
    manifest.write_text(json.dumps(data))
    with pytest.raises(BundleError, match="no classifier graph"):
        Bundle(bundle_copy).path("classifier")
    manifest.write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(BundleError, match="not an mspd-edge"):
        Bundle(bundle_copy)


def _manifest_list(bundle):
    (bundle / "manifest.json").write_text("[]")


def _edit_manifest(**changes):
    def edit(bundle):
        path = bundle / "manifest.json"
        data = json.loads(path.read_text())
        for key, value in changes.items():
            if value is None:
                del data[key]
            else:
                data[key] = value
        path.write_text(json.dumps(data))
    return edit


def _remove_graph(bundle):
    (bundle / "mcgs_step.onnx").unlink()


def _change_graph(bundle):
    with open(bundle / "backbone_grad.onnx", "ab") as graph:
        graph.write(b"\0")


MALFORMED = {
    "a list": (_manifest_list, "not an mspd-edge ONNX bundle manifest"),
    "missing keys": (_edit_manifest(input_size=None, eps=None), "missing keys ['input_size', 'eps']"),
    "format version": (_edit_manifest(format_version=2), "format version 2, this mspd-edge reads version 1"),
    "graph absent": (_remove_graph, "mcgs_step.onnx: missing (listed in manifest.json)"),
    "graph changed": (_change_graph, "backbone_grad.onnx: sha256 does not match manifest.json"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_check_and_the_runtime_refuse_a_malformed_bundle_with_the_same_line(case, bundle_copy, tmp_path):
    """``mspd-edge check DIR`` and ``protect --backend ort --model-dir DIR`` print the same
    one-line error, and neither writes anything."""
    from click.testing import CliRunner
    from PIL import Image

    from mspd_edge.cli import main

    damage, reason = MALFORMED[case]
    damage(bundle_copy)
    image = tmp_path / "in.png"
    Image.new("RGB", (32, 32), (90, 120, 30)).save(image)
    runner = CliRunner()
    check = runner.invoke(main, ["check", str(bundle_copy)])
    protect = runner.invoke(main, ["protect", "--backend", "ort", "--model-dir", str(bundle_copy),
                                   "--labels", "couple", "--seed", "0", "-q", "-o", str(tmp_path / "out"),
                                   str(image)])
    check_lines, protect_lines = check.output.strip().splitlines(), protect.output.strip().splitlines()
    assert check.exit_code == 1 and len(check_lines) == 1, check.output
    assert protect.exit_code == 2 and protect_lines == check_lines, protect.output
    assert check_lines[0].startswith(f"error: {bundle_copy}") and reason in check_lines[0]
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())
