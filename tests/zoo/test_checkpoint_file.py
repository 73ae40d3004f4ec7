"""format_problem: what a file is, from its bytes, for files that are and are not checkpoints."""
import gzip
import io

import pytest
import torch

from mspd_edge.zoo.checkpoint_file import format_problem


def _saved(**kwargs):
    buffer = io.BytesIO()
    torch.save({"w": torch.ones(3)}, buffer, **kwargs)
    return buffer.getvalue()


@pytest.mark.parametrize("legacy", [False, True])
def test_real_checkpoints_pass(tmp_path, legacy):
    path = tmp_path / "ok.pt"
    path.write_bytes(_saved(_use_new_zipfile_serialization=not legacy))
    assert format_problem(path) is None


@pytest.mark.parametrize("content, expected", [
    (b"", "the file is empty"),
    (b"\n  <!DOCTYPE html>\n<html><head><title>Google Drive - Quota exceeded</title></head></html>",
     "got an HTML page 'Google Drive - Quota exceeded' (a Google Drive quota or virus-scan page?)"),
    (b"<HTML><body>no title</body></HTML>", "got an HTML page (a Google Drive quota"),
    (b"Not Found", "got text: 'Not Found'"),
    (gzip.compress(b"x"), "got a gzip file"),
    (b"\x00\x01\x02\x03garbage", "got unknown bytes: it starts with b'\\x00\\x01"),
])
def test_what_else_arrives_is_named(tmp_path, content, expected):
    path = tmp_path / "x.pt"
    path.write_bytes(content)
    assert format_problem(path).startswith(expected)


def test_a_zip_cut_short_is_an_interrupted_download(tmp_path):
    data = _saved()
    path = tmp_path / "cut.pt"
    path.write_bytes(data[: len(data) // 2])
    assert format_problem(path) == "a zip archive cut short (an interrupted download?)"
