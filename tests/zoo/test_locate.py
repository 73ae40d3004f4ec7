"""The torch-free locator: search roots and order, the files of each kind of model reference."""
import json

import pytest

from mspd_edge.zoo import locate

RELATIVE = "cifar10/Linf/Wong2020Fast.pt"


@pytest.fixture
def roots(tmp_path, monkeypatch):
    """``$MSPD_EDGE_MODELS`` = tmp/env and the working folder tmp (so ./models is tmp/models)."""
    monkeypatch.setenv(locate.MODELS_ENV, str(tmp_path / "env"))
    monkeypatch.chdir(tmp_path)
    return tmp_path / "env", tmp_path / "models"


def _place(root, relative=RELATIVE):
    path = root / relative
    path.parent.mkdir(parents=True)
    path.write_bytes(b"PK\x03\x04")
    return path


def test_the_environment_root_comes_first(roots, monkeypatch):
    env, local = roots
    assert locate.model_roots() == [env, locate.ROBUSTBENCH_MODEL_DIR] and locate.pull_root() == env
    in_local = _place(local)
    assert locate.find_robustbench("Wong2020Fast").resolve() == in_local
    in_env = _place(env)
    assert locate.robustbench_checkpoint("Wong2020Fast") == in_env
    monkeypatch.delenv(locate.MODELS_ENV)
    assert locate.model_roots() == [locate.ROBUSTBENCH_MODEL_DIR]
    assert locate.find_robustbench("Wong2020Fast").resolve() == in_local


def test_layout_of_every_id():
    assert locate.robustbench_relative("Tian2022Deeper_DeiT-B").as_posix() == \
        "imagenet/corruptions/Tian2022Deeper_DeiT-B.pt"
    assert locate.robustbench_relative("Wong2020Fast").as_posix() == RELATIVE
    with pytest.raises(ValueError, match="unknown RobustBench id 'Nobody2099': the zoo knows Gowal2021"):
        locate.robustbench_relative("Nobody2099")


def test_a_missing_checkpoint_says_where_and_how(roots):
    with pytest.raises(FileNotFoundError) as caught:
        locate.robustbench_checkpoint("Tian2022Deeper_DeiT-B")
    message = str(caught.value)
    assert "env/imagenet/corruptions/Tian2022Deeper_DeiT-B.pt" in message
    assert "`mspd-edge models pull Tian2022Deeper_DeiT-B`" in message and "tian2022deeper-deit-b.pth" in message


def test_model_files_of_each_reference(roots, tmp_path):
    env, _ = roots
    assert [p.name for p in locate.model_files("cifar10-backbone")] == ["cifar10-backbone.json",
                                                                        "cifar10-backbone.pt"]
    assert locate.model_files("Wong2020Fast") == [] and locate.model_files("no-such-model") == []
    checkpoint = _place(env)
    assert locate.model_files("Wong2020Fast") == [checkpoint]
    assert locate.model_files(checkpoint) == [checkpoint]
    manifest = tmp_path / "mine.json"
    manifest.write_text(json.dumps({"arch": "resnet"}))
    assert locate.model_files(manifest) == [manifest]
    manifest.with_suffix(".pt").write_bytes(b"PK\x03\x04")
    assert locate.model_files(manifest) == [manifest, manifest.with_suffix(".pt")]
