"""``mspd-edge models list|path|pull|verify`` against a real HTTP server on 127.0.0.1, and bad
checkpoints given to ``--backbone``: one ``error:`` line naming the file and the reason."""
import io
import os

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from checkpoint_server import offline_url, running_server
from model_helpers import REDUCED
from mspd_edge.cli import main
from mspd_edge.digest import sha256_file
from mspd_edge.zoo import locate
from mspd_edge.zoo.registry import build
from mspd_edge.zoo.robustbench_ids import ROBUSTBENCH

ID = "Wong2020Fast"
RELATIVE = "cifar10/Linf/Wong2020Fast.pt"
HTML = b"<!DOCTYPE html><html><head><title>Google Drive - Quota exceeded</title></head></html>"


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture
def root(tmp_path, monkeypatch):
    monkeypatch.setenv(locate.MODELS_ENV, str(tmp_path / "zoo"))
    monkeypatch.chdir(tmp_path)
    return tmp_path / "zoo"


@pytest.fixture
def gdown():
    return pytest.importorskip("gdown")      # the models extra: downloads need it


@pytest.fixture
def checkpoint(monkeypatch):
    """A checkpoint of Wong2020Fast's architecture at width 4 (the id table reduced to match)."""
    spec = ROBUSTBENCH[ID]
    monkeypatch.setitem(ROBUSTBENCH, ID, {**spec, "arch_kwargs": {**spec["arch_kwargs"],
                                                                  **REDUCED["preact_resnet"]}})
    buffer = io.BytesIO()
    torch.save(build("preact_resnet", **REDUCED["preact_resnet"]).state_dict(), buffer)
    return buffer.getvalue()


def test_pull_list_path_verify(root, checkpoint, gdown):
    before = invoke("models", "list")
    shipped = locate.shipped_models()
    assert before.exit_code == 0 and len(before.stdout.splitlines()) == 1 + len(shipped) + len(ROBUSTBENCH)
    assert invoke("models", "path", ID).exit_code == 1
    with running_server() as server:
        result = invoke("models", "pull", ID, "--from", server.serve("/w.pt", checkpoint))
    assert result.exit_code == 0, result.output
    target = root / RELATIVE
    assert result.stdout.startswith(f"downloaded {ID}: {target} sha256 ")
    assert "loads into the zoo's architecture" in result.stdout
    assert "100%" in result.stderr or os.environ.get("TQDM_DISABLE")     # gdown's progress bar, unless turned off
    row = next(line for line in invoke("models", "list").stdout.splitlines() if line.startswith(ID))
    assert row.split()[1:] == ["cifar10", "Linf", "target", "drive", "yes", str(target)]
    assert invoke("models", "path", ID).stdout.strip() == str(target)
    verified = invoke("models", "verify")
    assert verified.exit_code == 0 and f"\nok          {ID}  {target}  sha256 " in verified.stdout
    target.write_bytes(checkpoint[:100] + bytes([checkpoint[100] ^ 1]) + checkpoint[101:])
    tampered = invoke("models", "verify", ID)
    assert tampered.exit_code == 1 and tampered.stdout.startswith("mismatch")
    assert len(tampered.stdout.splitlines()) == 1


def test_a_page_instead_of_a_checkpoint_is_one_error_line(root, checkpoint, gdown):
    with running_server() as server:
        result = invoke("models", "pull", ID, "-q", "--retries", "0",
                        "--from", server.serve("/uc", HTML, "text/html"))
    assert result.exit_code == 1 and result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"error: {ID}: what arrived from http://127.0.0.1:") and \
        "got an HTML page 'Google Drive - Quota exceeded'" in line and line.endswith(".pt.bad)")
    assert not (root / RELATIVE).exists()


def test_the_shipped_models_are_listed_located_and_verified(root):
    """The embedded cifar10-* models every command uses by default: in the list (first), their
    path, their weights against the sha256 of their manifests; pull has nothing to fetch."""
    lines = invoke("models", "list").stdout.splitlines()
    shipped = locate.shipped_models()
    assert [line.split()[0] for line in lines[1:1 + len(shipped)]] == list(shipped)
    assert list(shipped)[:2] == ["cifar10-backbone", "cifar10-classifier"]
    weights = locate.WEIGHTS_DIR / "cifar10-backbone.pt"
    assert lines[1].split()[1:] == ["cifar10", "Linf", "backbone", "shipped", "yes", str(weights)]
    assert lines[2].split()[1:4] == ["cifar10", "none", "classifier"]
    assert invoke("models", "path", "cifar10-backbone").stdout == f"{weights}\n"
    verified = invoke("models", "verify", "cifar10-backbone")
    assert verified.exit_code == 0
    assert verified.stdout == f"ok          cifar10-backbone  {weights}  sha256 {sha256_file(weights)} (shipped)\n"
    pulled = invoke("models", "pull", "cifar10-backbone")
    assert pulled.exit_code == 0 and pulled.stdout.startswith(f"shipped cifar10-backbone: {weights} (nothing to pull")
    assert list(root.parent.iterdir()) == []                           # no ./models, no $MSPD_EDGE_MODELS


def test_a_changed_or_missing_shipped_model_fails_verify(root, tmp_path, monkeypatch):
    weights = tmp_path / "weights"
    weights.mkdir()
    for suffix in (".json", ".pt"):
        data = (locate.WEIGHTS_DIR / f"cifar10-classifier{suffix}").read_bytes()
        (weights / f"cifar10-classifier{suffix}").write_bytes(data)
    monkeypatch.setattr(locate, "WEIGHTS_DIR", weights)
    pt = weights / "cifar10-classifier.pt"
    pt.write_bytes(pt.read_bytes()[:-1] + bytes([pt.read_bytes()[-1] ^ 1]))
    changed = invoke("models", "verify")
    assert changed.exit_code == 1 and changed.stdout.startswith(f"mismatch    cifar10-classifier  {pt}  sha256 ")
    pt.unlink()
    assert invoke("models", "verify").stdout.startswith("missing     cifar10-classifier  -  no weights")
    row = invoke("models", "list").stdout.splitlines()[1].split()
    assert row[0] == "cifar10-classifier" and row[5:] == ["no", str(pt)]
    located = invoke("models", "path", "cifar10-classifier")
    assert located.exit_code == 1 and f"looked for {pt}" in located.stderr


def test_an_offline_pull_leaves_nothing_and_says_nothing_arrived(root, gdown):
    with offline_url() as url:
        result = invoke("models", "pull", ID, "-q", "--retries", "0", "--from", url)
    assert result.exit_code == 1 and result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"error: {ID}: download from {url} failed: ") and line.endswith("(nothing arrived)")
    assert list(root.parent.iterdir()) == []                           # no empty zoo/cifar10/Linf


@pytest.mark.parametrize("args, expected", [
    (["pull", ID, "Addepalli2022Efficient_RN18", "--from", "x.pt"], "error: --from takes exactly one ID"),
    (["pull", "Nobody2099"], "is not one of"),
    (["path"], "Missing argument"),
])
def test_usage_errors(root, args, expected):
    result = invoke("models", *args)
    assert result.exit_code == 2 and expected in result.stderr


@pytest.mark.parametrize("content, reason", [
    (HTML, "is not a torch checkpoint: got an HTML page 'Google Drive - Quota exceeded'"),
    (b"hello world\n", "is not a torch checkpoint: got text: 'hello world'"),
    (b"", "is not a torch checkpoint: the file is empty"),
])
def test_a_bad_backbone_file_is_one_line_naming_it(tmp_path, content, reason):
    bad = tmp_path / "backbone.pt"
    bad.write_bytes(content)
    image = tmp_path / "in.png"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(image)
    result = invoke("protect", image, "-o", tmp_path / "out", "--backbone", bad, "--labels", "couple")
    (line,) = result.stderr.splitlines()
    assert result.exit_code == 2 and line.startswith(f"error: {bad} {reason}")
    assert bad.read_bytes() == content and not (tmp_path / "out").exists()
