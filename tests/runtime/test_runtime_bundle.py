"""Reading an export bundle without torch or onnx: metadata, signatures, integrity checks."""
import json

import pytest

from mspd_edge.digest import sha256_file
from mspd_edge.runtime.bundle import Bundle, BundleError


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
