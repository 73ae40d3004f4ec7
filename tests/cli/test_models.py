"""``mspd-edge models list|path|pull|verify`` against a real HTTP server on 127.0.0.1, and bad
checkpoints given to ``--backbone``: one ``error:`` line naming the file and the reason."""
import io

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from checkpoint_server import running_server
from model_helpers import REDUCED
from mspd_edge.cli import main
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
    assert before.exit_code == 0 and len(before.stdout.splitlines()) == 1 + len(ROBUSTBENCH)
    assert invoke("models", "path", ID).exit_code == 1
    with running_server() as server:
        result = invoke("models", "pull", ID, "--from", server.serve("/w.pt", checkpoint))
    assert result.exit_code == 0, result.output
    target = root / RELATIVE
    assert result.stdout.startswith(f"downloaded {ID}: {target} sha256 ")
    assert "loads into the zoo's architecture" in result.stdout and "100%" in result.stderr  # progress bar
    row = next(line for line in invoke("models", "list").stdout.splitlines() if line.startswith(ID))
    assert row.split()[1:] == ["cifar10", "Linf", "target", "drive", "yes", str(target)]
    assert invoke("models", "path", ID).stdout.strip() == str(target)
    verified = invoke("models", "verify")
    assert verified.exit_code == 0 and verified.stdout.startswith(f"ok          {ID}  {target}  sha256 ")
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
