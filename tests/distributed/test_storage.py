"""Locations, listing and atomic writes on the local file system and a real S3 server (moto)."""
import fsspec
import pyarrow.fs as pafs
import pytest
from ray_helpers import s3_uri

from mspd_edge.distributed.storage import (PARTIAL_SUFFIX, is_file, list_sources, local_file, resolve,
                                           write_atomic)
from mspd_edge.distributed.uris import display_uri
from mspd_edge.io import discover

KEYS = ("in/a.png", "in/.hidden.png", "in/notes.txt", "in/sub/b.JPG", "in/sub/.dot/c.png", "in/out/x.png")


@pytest.fixture(scope="module")
def bucket(s3_server):
    s3 = pafs.S3FileSystem(endpoint_override=s3_server, scheme="http", region="us-east-1",
                           allow_bucket_creation=True)
    s3.create_dir("listing")
    for key in KEYS:
        with s3.open_output_stream(f"listing/{key}") as out:
            out.write(key.encode())
    return s3


def test_uris_name_their_bucket_and_key_without_query_or_credentials(s3_server):
    where = resolve(s3_uri(s3_server, "listing/in"))
    assert (where.path, where.uri, where.local) == ("listing/in", "s3://listing/in", False)
    assert where.child("sub/b.png").uri == "s3://listing/in/sub/b.png"
    assert display_uri("s3://key:secret@bucket/a/b?scheme=http") == "s3://bucket/a/b"


def test_local_paths_are_absolute_and_keep_how_they_were_named(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    where = resolve("out")
    assert where.local and where.path == str(tmp_path / "out") and where.uri == "out"
    assert resolve(f"file://{tmp_path}").path == str(tmp_path)


@pytest.mark.parametrize("recursive, expected", [(False, ["a.png"]), (True, ["a.png", "sub/b.JPG"])])
def test_object_prefixes_follow_the_folder_rules(bucket, s3_server, recursive, expected):
    exclude = resolve(s3_uri(s3_server, "listing/in/out"))
    sources, missing, unsupported = list_sources([s3_uri(s3_server, "listing/in")], recursive, exclude)
    assert [relative for _, relative, _ in sources] == expected and missing == []
    assert sources[0][0].uri == "s3://listing/in/a.png" and sources[0][2] == len(b"in/a.png")
    subfolder = [] if recursive else [("s3://listing/in/sub", "a subfolder")]   # not the output "folder"
    assert [(uri, why.split(" (")[0]) for uri, why in unsupported] == [
        ("s3://listing/in/notes.txt", "not a supported image file"), *subfolder]
    single, _, _ = list_sources([s3_uri(s3_server, "listing/in/sub/b.JPG")], False, exclude)
    assert [relative for _, relative, _ in single] == ["b.JPG"]
    none, missing, _ = list_sources([s3_uri(s3_server, "listing/nothing")], True, exclude)
    assert none == [] and missing == [s3_uri(s3_server, "listing/nothing")]


def test_local_inputs_are_listed_as_protect_lists_them(tmp_path):
    (tmp_path / "in" / "sub").mkdir(parents=True)
    for name in ("a.png", "sub/b.jpg", ".hidden.png", "c.txt"):
        (tmp_path / "in" / name).write_bytes(b"x")
    for recursive in (False, True):
        inputs = [tmp_path / "in", tmp_path / "in" / "a.png"]
        sources, _, unsupported = list_sources(inputs, recursive, resolve(tmp_path / "out"))
        skipped = []
        found, _ = discover(inputs, recursive, on_skip=lambda path, why: skipped.append((str(path), why)))
        assert [(w.path, r) for w, r, _ in sources] == [(str(s.path), s.relative.as_posix()) for s in found]
        assert unsupported == skipped and len(skipped) == (1 if recursive else 2)   # c.txt (and sub/)


def test_local_writes_replace_atomically_and_leave_no_partial_file(tmp_path):
    where = resolve(tmp_path / "deep" / "x.png")
    partial = tmp_path / "deep" / f".x.png{PARTIAL_SUFFIX}"
    write_atomic(where, b"one")
    partial.write_bytes(b"o")   # what a write killed mid-file leaves: the next one replaces it
    write_atomic(where, b"two")
    assert (tmp_path / "deep" / "x.png").read_bytes() == b"two" and not partial.exists()
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(OSError):
        write_atomic(resolve(tmp_path / "file" / "x.png"), b"three")
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["deep", "file", "x.png"]


def test_objects_are_written_and_read_back(bucket, s3_server):
    where = resolve(s3_uri(s3_server, "listing/written/y.png"))
    assert not is_file(where)
    write_atomic(where, b"payload")
    assert is_file(where)
    with local_file(where) as path:
        assert path.read_bytes() == b"payload"
    assert not path.exists()


def test_an_fsspec_file_system_is_used_through_pyarrow(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.png").write_bytes(b"a")
    filesystem = fsspec.filesystem("file")
    output = resolve(str(tmp_path / "out"), filesystem)
    sources, _, _ = list_sources([str(tmp_path / "in")], False, output, filesystem)
    assert [r for _, r, _ in sources] == ["a.png"] and not sources[0][0].local
    write_atomic(resolve(str(tmp_path / "out" / "a.png"), filesystem), b"b")
    assert (tmp_path / "out" / "a.png").read_bytes() == b"b"
