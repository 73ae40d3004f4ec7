"""What a Ray cluster that mspd-edge starts on this machine reads from the environment (Ray reads
it as it loads or as the cluster starts: set it before either). Imports no Ray."""
import os

LOCAL_CLUSTER_ENV = {
    # Ray's single-machine mode: its services listen on 127.0.0.1, not the network address.
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    # Ray starts its workers at nice 15 (its worker_niceness setting): beside two busy processes
    # on 2 cores the protecting actors got 2-4% of a core. The job runs at the caller's
    # priority instead, as the local engine does.
    "RAY_worker_niceness": "0",
}


def prepare_local_cluster():
    """Set (where the caller has not) the environment of a cluster of this machine."""
    for key, value in LOCAL_CLUSTER_ENV.items():
        os.environ.setdefault(key, value)
