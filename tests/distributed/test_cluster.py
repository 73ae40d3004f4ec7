"""A job on a 2-node Ray cluster (``ray.cluster_utils.Cluster``, one CPU per node): an actor
reserves 0.75 CPU, so the two actors must run on different nodes, each beside its I/O tasks."""
import pytest
import ray
from ray_helpers import OBJECT_STORE_BYTES, own_processes, wait_until_gone
from ray_helpers import COUNTS, hidden, local_protect, pngs, run_ray


@pytest.mark.slow   # two more nodes to start and stop: the suite's second-slowest test
def test_two_nodes_write_what_the_local_engine_writes(ray_home, inputs, tiny_bundle, tmp_path):
    from ray.cluster_utils import Cluster

    node = {"num_cpus": 1, "object_store_memory": OBJECT_STORE_BYTES}
    cluster = Cluster(initialize_head=True, head_node_args={**node, "include_dashboard": False})
    try:
        cluster.add_node(**node)
        ray.init(address=cluster.address, log_to_driver=False, logging_level="error")
        cluster.wait_for_nodes()
        assert [n["Resources"]["CPU"] for n in ray.nodes() if n["Alive"]] == [1.0, 1.0]
        result = run_ray(inputs, tmp_path / "out", tiny_bundle, workers=2)
        assert (result.workers.count, result.workers.cpus) == (2, 0.75)
    finally:
        processes = own_processes()
        ray.shutdown()
        cluster.shutdown()
    assert local_protect(inputs, tmp_path / "local", tiny_bundle).exit_code == 1
    assert result.counts == COUNTS
    assert pngs(tmp_path / "out") == pngs(tmp_path / "local") and hidden(tmp_path / "out") == []
    assert wait_until_gone(processes) == [], "Ray processes left running (killed)"
