"""The shared small helpers: atomic files and folders, an exception's first line, lazy attributes,
Ctrl-C."""
import os
import signal
import threading

import pytest

from mspd_edge.util import atomic_folder, first_line, lazy_attributes, sigint_handler, write_atomic


def test_an_atomic_folder_appears_whole_or_not_at_all(tmp_path):
    target = tmp_path / "bundle"
    with pytest.raises(RuntimeError):
        with atomic_folder(target) as partial:
            (partial / "a").write_text("a")
            raise RuntimeError("half written")
    assert list(tmp_path.iterdir()) == []
    with atomic_folder(target) as partial:
        (partial / "a").write_text("new")
        assert not target.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["bundle"] and (target / "a").read_text() == "new"


def test_an_atomic_folder_replaces_or_keeps_what_is_there(tmp_path):
    target = tmp_path / "bundle"
    target.mkdir()
    (target / "old").write_text("old")
    with atomic_folder(target, replace=False) as partial:   # another writer was first: keep it
        (partial / "mine").write_text("mine")
    assert sorted(p.name for p in target.iterdir()) == ["old"]
    with atomic_folder(target) as partial:
        (partial / "mine").write_text("mine")
    assert sorted(p.name for p in target.iterdir()) == ["mine"]
    assert [p.name for p in tmp_path.iterdir()] == ["bundle"]


def test_first_line():
    assert first_line(ValueError("one\ntwo")) == "one"
    assert first_line(ValueError("  \n ")) == "ValueError"
    assert first_line(KeyError()) == "KeyError"


def test_lazy_attributes_import_on_first_use():
    get = lazy_attributes("mspd_edge", {"first_line": ".util", "environ": "os"})
    assert get("first_line") is first_line and get("environ") is os.environ
    with pytest.raises(AttributeError, match="no attribute 'other'"):
        get("other")


def test_sigint_handler_sets_and_restores_the_handlers():
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    seen = []

    def handler(signum, frame):
        seen.append(signum)

    with sigint_handler(handler, also=(signal.SIGTERM,)):
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGINT)
    assert seen == [signal.SIGTERM, signal.SIGINT]
    assert {s: signal.getsignal(s) for s in before} == before


def test_sigint_handler_leaves_other_threads_alone():
    before = signal.getsignal(signal.SIGINT)
    done = []

    def body():
        with sigint_handler(signal.SIG_IGN):
            done.append(signal.getsignal(signal.SIGINT))

    thread = threading.Thread(target=body)
    thread.start()
    thread.join()
    assert done == [before]


def test_a_ctrl_c_while_a_file_is_written_comes_after_it_is_whole(tmp_path):
    # The handler raising KeyboardInterrupt (Python's default) mid-write must not leave a
    # temporary file: the write ends first, then the interrupt is raised.
    def write(out):
        out.write(b"first half ")
        os.kill(os.getpid(), signal.SIGINT)
        out.write(b"second half")

    with sigint_handler(signal.default_int_handler):
        with pytest.raises(KeyboardInterrupt):
            write_atomic(tmp_path / "out.bin", write)
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]
    assert (tmp_path / "out.bin").read_bytes() == b"first half second half"


def test_a_failed_write_leaves_nothing_and_keeps_the_handlers(tmp_path):
    def write(out):
        out.write(b"partial")
        raise OSError("disk full")

    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(OSError, match="disk full"):
        write_atomic(tmp_path / "out.bin", write)
    assert list(tmp_path.iterdir()) == [] and signal.getsignal(signal.SIGINT) is before
