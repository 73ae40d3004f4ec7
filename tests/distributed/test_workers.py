"""The actor pool's reservations (actors never hold the CPUs that reading and writing need) and
the groups of files that make its tasks."""
import pytest

from mspd_edge.distributed.ray_job import (IO_CPUS, IO_SHARE, PHOTO_FILE_BYTES, PHOTO_GROUP_BYTES, group_plans,
                                           plan_workers)


@pytest.mark.parametrize("cpus, workers, threads", [(2, None, None), (2, None, 2), (2, 4, 1), (2, 1, 8),
                                                    (64, None, 4), (3, 2, 1)])
def test_actors_leave_a_share_of_the_cpus_to_the_tasks(cpus, workers, threads):
    pool = plan_workers({"CPU": cpus}, workers, threads)
    assert pool.count == (workers or max(1, round(cpus / (threads or 1)))) and pool.gpus == 0
    assert pool.count * pool.cpus <= cpus * (1 - IO_SHARE) + 1e-9
    assert cpus - pool.count * pool.cpus >= IO_CPUS and pool.cpus <= (threads or 1)


def test_the_defaults_on_two_cpus_and_on_gpus():
    assert plan_workers({"CPU": 2}) == plan_workers({"CPU": 2}, 2, 1)
    assert (plan_workers({"CPU": 2}).count, plan_workers({"CPU": 2}).cpus) == (2, 0.75)
    gpu = plan_workers({"CPU": 8, "GPU": 2}, gpus_per_worker=0.5)
    assert (gpu.count, gpu.gpus, gpu.cpus) == (4, 0.5, 1.0)


@pytest.mark.parametrize("cluster, gpus", [({"CPU": 8}, 1), ({"CPU": 0.5}, 0)])
def test_a_cluster_without_what_the_workers_need_is_refused(cluster, gpus):
    with pytest.raises(ValueError, match="the Ray cluster has"):
        plan_workers(cluster, gpus_per_worker=gpus)


def test_photos_travel_in_small_groups_apart_from_other_files():
    plans = [{"bytes": size, "photo": size >= PHOTO_FILE_BYTES}
             for size in (2_000, 2_000, 600_000, 600_000, 300_000, 200_000, 2_000, 3 * PHOTO_GROUP_BYTES)]
    groups = [[plan["bytes"] for plan in group] for group in group_plans(plans, batch_size=16)]
    assert groups == [[2_000, 2_000], [600_000], [600_000, 300_000], [200_000], [2_000],
                      [3 * PHOTO_GROUP_BYTES]]
    assert [len(g) for g in group_plans([{"bytes": 10, "photo": False}] * 5, batch_size=2)] == [2, 2, 1]
