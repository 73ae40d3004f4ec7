"""The shared small helpers: atomic folders, an exception's first line, lazy attributes, Ctrl-C."""
import os
import signal
import threading

import pytest

from mspd_edge.util import atomic_folder, first_line, lazy_attributes, sigint_handler


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
