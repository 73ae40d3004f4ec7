"""The environment of a cluster mspd-edge starts on this machine (no Ray needed)."""
import os

from mspd_edge.distributed.local import LOCAL_CLUSTER_ENV, prepare_local_cluster


def test_what_the_caller_set_is_kept(monkeypatch):
    for key in LOCAL_CLUSTER_ENV:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("RAY_worker_niceness", "10")
    prepare_local_cluster()
    assert os.environ["RAY_worker_niceness"] == "10"
    assert os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] == "0"
