"""pull / verify against a real HTTP server on 127.0.0.1 serving a checkpoint made here: a clean
download, a connection dropped mid-file (resumed with Range, in one pull and across two), an
HTML page instead of a checkpoint, a wrong architecture, 404, a stalled server, local files."""
import io
import json

import pytest
import torch

from checkpoint_server import offline_url, running_server
from model_helpers import REDUCED
from mspd_edge.digest import sha256_file
from mspd_edge.zoo import checksums, load_model, locate
from mspd_edge.zoo.pull import PullError, pull
from mspd_edge.zoo.registry import build
from mspd_edge.zoo.robustbench_ids import ROBUSTBENCH

ID = "Wong2020Fast"
RELATIVE = "cifar10/Linf/Wong2020Fast.pt"
FAST = {"retries": 0, "timeout": 10.0, "quiet": True}
# What Google Drive sends instead of a large file (its virus-scan warning), in short.
VIRUS_SCAN_PAGE = (b"<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning</title>"
                   b"</head><body><form id=\"download-form\"></form></body></html>")


@pytest.fixture
def server():
    pytest.importorskip("gdown")     # the models extra: downloads need it
    with running_server() as running:
        yield running


@pytest.fixture
def root(tmp_path, monkeypatch):
    """$MSPD_EDGE_MODELS in tmp_path, the working folder too (so ./models is the test's)."""
    monkeypatch.setenv(locate.MODELS_ENV, str(tmp_path / "zoo"))
    monkeypatch.chdir(tmp_path)
    return tmp_path / "zoo"


@pytest.fixture(scope="module")
def reference():
    """A width-16 PreActResNet-18 (Wong2020Fast's architecture, 2.8 MB: several download chunks)."""
    torch.manual_seed(0)
    return build("preact_resnet", **{**REDUCED["preact_resnet"], "base_width": 16}).eval()


@pytest.fixture
def checkpoint(reference, monkeypatch):
    """The bytes of a RobustBench-style checkpoint of the reduced Wong2020Fast (the zoo's id
    table is reduced to match for the test)."""
    spec = ROBUSTBENCH[ID]
    monkeypatch.setitem(ROBUSTBENCH, ID, {**spec, "arch_kwargs": {
        **spec["arch_kwargs"], **REDUCED["preact_resnet"], "base_width": 16}})
    buffer = io.BytesIO()
    torch.save({"state_dict": {f"module.{k}": v for k, v in reference.state_dict().items()}}, buffer)
    return buffer.getvalue()


def _robustbench(verdicts):
    """The verdicts of RobustBench checkpoints (:func:`checksums.verify` checks the shipped models too)."""
    return [v for v in verdicts if v.name in ROBUSTBENCH]


def _leftovers(root):
    return sorted(p.name for p in (root / "cifar10" / "Linf").iterdir() if p.suffix != ".pt")


def test_pull_places_checks_and_records(server, root, checkpoint, reference):
    url = server.serve("/wong.pt", checkpoint)
    done = pull(ID, url, **FAST)
    target = root / RELATIVE
    assert done.path == target and done.action == "downloaded" and done.load_checked
    assert target.read_bytes() == checkpoint and _leftovers(root) == []
    record = json.loads((root / checksums.CHECKSUMS).read_text())[RELATIVE]
    assert record["sha256"] == done.sha256 == sha256_file(target) and record["source"] == url
    x = torch.rand(2, 3, 32, 32)
    torch.testing.assert_close(load_model(ID)(x), reference(x))
    assert [v.status for v in _robustbench(checksums.verify())] == ["ok"]


def test_dropped_connection_resumes_within_one_pull(server, root, checkpoint):
    url = server.serve("/wong.pt", checkpoint)
    server.drop_once["/wong.pt"] = 0.6
    done = pull(ID, url, **{**FAST, "retries": 1})
    assert done.path.read_bytes() == checkpoint
    first, resumed = server.ranges("/wong.pt")
    offset = int(resumed.removeprefix("bytes=").rstrip("-"))
    assert first is None and 0 < offset <= 0.6 * len(checkpoint)   # resumed, not restarted


def test_dropped_connection_resumes_on_the_next_pull(server, root, checkpoint):
    url = server.serve("/wong.pt", checkpoint)
    server.drop_once["/wong.pt"] = 0.6
    with pytest.raises(PullError, match=r"download from .*wong\.pt failed: .*incomplete.* bytes "
                                         r"arrived and are kept: the same pull resumes them"):
        pull(ID, url, **FAST)
    assert not (root / RELATIVE).exists()
    partial = [name for name in _leftovers(root) if name.endswith(".part")]
    assert len(partial) == 1
    done = pull(ID, url, **FAST)
    assert done.path.read_bytes() == checkpoint and _leftovers(root) == []
    assert server.ranges("/wong.pt")[-1] not in (None, "bytes=0-")


def test_an_html_page_is_not_placed(server, root, checkpoint):
    url = server.serve("/uc", VIRUS_SCAN_PAGE, "text/html; charset=utf-8")
    with pytest.raises(PullError) as caught:
        pull(ID, url, **FAST)
    message = str(caught.value)
    assert "got an HTML page 'Google Drive - Virus scan warning'" in message and "\n" not in message
    bad = root / (RELATIVE + ".bad")
    assert not (root / RELATIVE).exists() and bad.read_bytes() == VIRUS_SCAN_PAGE
    assert _robustbench(checksums.verify()) == [] and checksums.read(root) == {}


def test_a_checkpoint_of_another_architecture_is_not_placed(server, root, checkpoint):
    buffer = io.BytesIO()
    torch.save(build("resnet", base_width=4).state_dict(), buffer)
    with pytest.raises(PullError, match=r"does not fit Wong2020Fast \(preact_resnet\): unexpected keys"):
        pull(ID, server.serve("/other.pt", buffer.getvalue()), **FAST)
    assert not (root / RELATIVE).exists()


def test_http_errors_and_stalls_are_one_line(server, root, checkpoint):
    with pytest.raises(PullError, match=r"failed: 404 Client Error"):
        pull(ID, server.url("/missing.pt"), **FAST)
    url = server.serve("/slow.pt", checkpoint)
    server.stall.add("/slow.pt")
    with pytest.raises(PullError, match=r"failed: .*[Tt]imed? ?out"):
        pull(ID, url, **{**FAST, "timeout": 0.5})


def test_a_pull_that_gets_nothing_leaves_nothing(tmp_path, monkeypatch):
    """Offline (a refused connection) or a missing local file: no folder made for it is left,
    and the message says that nothing arrived; a folder that was there before stays."""
    pytest.importorskip("gdown")
    monkeypatch.delenv(locate.MODELS_ENV, raising=False)
    monkeypatch.chdir(tmp_path)                                   # the root is ./models
    with offline_url() as url, pytest.raises(PullError) as caught:
        pull(ID, url, **FAST)
    message = str(caught.value)
    assert message.startswith(f"{ID}: download from {url} failed: ") and "refused" in message
    assert message.endswith("(nothing arrived)") and "kept" not in message
    with pytest.raises(PullError, match="no such file"):
        pull(ID, str(tmp_path / "nothing.pt"), **FAST)
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "models" / "cifar10").mkdir(parents=True)
    with offline_url() as url, pytest.raises(PullError, match="nothing arrived"):
        pull(ID, url, **FAST)
    assert [p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")] == ["models", "models/cifar10"]


def test_from_a_local_file_or_file_url(tmp_path, root, checkpoint):
    source = tmp_path / "mirror" / "wong.pt"
    source.parent.mkdir()
    source.write_bytes(checkpoint)
    done = pull(ID, str(source), **FAST)
    assert done.action == "copied" and done.path.read_bytes() == checkpoint
    assert source.read_bytes() == checkpoint                          # the input is untouched
    again = pull(ID, source.as_uri(), force=True, **FAST)
    assert again.action == "copied" and checksums.recorded(root, RELATIVE)["source"] == source.as_uri()
    with pytest.raises(PullError, match="no such file"):
        pull(ID, str(tmp_path / "nothing.pt"), force=True, **FAST)


def test_in_place_files_are_recorded_checked_and_guarded(tmp_path, root, checkpoint):
    target = root / RELATIVE
    target.parent.mkdir(parents=True)
    target.write_bytes(checkpoint)                                     # placed by hand
    assert [v.status for v in _robustbench(checksums.verify())] == ["unrecorded"]
    assert pull(ID, **FAST).action == "recorded"                       # no network needed
    assert pull(ID, **FAST).action == "present"
    target.write_bytes(checkpoint[:1000] + bytes([checkpoint[1000] ^ 1]) + checkpoint[1001:])
    assert [v.status for v in checksums.verify([ID])] == ["mismatch"]
    with pytest.raises(PullError, match="differs from the sha256 recorded"):
        pull(ID, **FAST)


def test_verify_names_missing_and_bad_files(root, checkpoint):
    assert [(v.name, v.status) for v in checksums.verify([ID])] == [(ID, "missing")]
    target = root / RELATIVE
    target.parent.mkdir(parents=True)
    target.write_bytes(VIRUS_SCAN_PAGE)
    (verdict,) = _robustbench(checksums.verify())
    assert verdict.status == "bad" and "HTML page" in verdict.detail
    with pytest.raises(ValueError, match="unknown RobustBench id"):
        checksums.verify(["Nobody2099"])


def test_every_listed_location_goes_to_the_right_gdown_route():
    """The Drive ids reach gdown as Drive downloads (gdown's own URL parser; no network here:
    the Drive transfer itself is untested in this sandbox), DeiT-B as a plain URL."""
    parse_url = pytest.importorskip("gdown.parse_url").parse_url

    from mspd_edge.zoo.pretrained import PUBLISHED

    assert set(PUBLISHED) == set(ROBUSTBENCH)
    for name, entry in PUBLISHED.items():
        file_id, is_download_link = parse_url(entry.location)
        assert (file_id, is_download_link) == ((entry.gdrive_id, True) if entry.gdrive_id else (None, False)), name
