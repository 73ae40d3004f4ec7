"""Jobs cut short on a real local Ray cluster (2 CPUs): protector actors killed with SIGKILL
mid-job (between batches, and while writing a photo they protect whole) are restarted and
every input is written once with no partial file; Ctrl-C on the command writes the manifest
of what settled, and running the command again finishes the job."""
import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from limits import COMMAND_SECONDS, EVENT_SECONDS
from ray_helpers import COUNTS, SEED, cluster_actor_pids, hidden, kill_own, local_protect, pngs, run_ray

from mspd_edge.distributed.manifest import read_manifest
from mspd_edge.distributed.storage import PARTIAL_SUFFIX
from mspd_edge.job import FileOptions

PROTECTOR = "MapWorker(MapBatches(Protector))"   # a protector actor's class name (and process title)
SLOW_SAMPLES = 200   # ~0.3 s per CIFAR image on an idle 2-core machine (50 finished 30 images
# within a second of the half-way mark): the job still runs when its first output lands


@pytest.fixture(scope="module")
def slow_local(inputs, tiny_bundle, tmp_path_factory):
    """The local engine's outputs for ``inputs`` with SLOW_SAMPLES noise samples."""
    out = tmp_path_factory.mktemp("slow-local")
    assert local_protect(inputs, out, tiny_bundle, "--n-samples", SLOW_SAMPLES).exit_code == 1
    return pngs(out)


def protector_pids():
    """Pids of the job's live protector actors, from the test's own cluster."""
    return cluster_actor_pids(PROTECTOR)


def wait_for(condition, timeout=EVENT_SECONDS, poll=0.05):
    deadline = time.monotonic() + timeout
    while not (found := condition()) and time.monotonic() < deadline:
        time.sleep(poll)
    return found


def in_background(function):
    """``function()`` in a thread; ``(thread, {"result": ...} once it returned)``."""
    done = {}
    thread = threading.Thread(target=lambda: done.update(result=function()))
    thread.start()
    return thread, done


def assert_written_once(out, expected):
    rows = read_manifest((out / "manifest.jsonl").read_text())
    assert sorted(row["input"] for row in rows) == sorted({row["input"] for row in rows})
    assert pngs(out) == expected
    assert hidden(out) == []


def test_an_actor_killed_mid_job_is_restarted_and_every_input_written_once(ray_cluster, inputs, tiny_bundle,
                                                                         slow_local, tmp_path):
    out = tmp_path / "out"
    job, done = in_background(lambda: run_ray(inputs, out, tiny_bundle, samples=SLOW_SAMPLES, workers=2,
                                              batch_size=2))
    wait_for(lambda: list(out.glob("*.png")))
    victims = protector_pids()
    assert victims, "no protector actor found"
    assert any(kill_own(pid) for pid in victims), "every protector actor had exited before its kill"
    assert len(list(out.glob("*.png"))) < COUNTS["written"], "the job ended before the kill"
    job.join(timeout=COMMAND_SECONDS)
    assert not job.is_alive()
    assert set(protector_pids()) != set(victims) or not protector_pids()
    assert done["result"].counts == COUNTS
    assert_written_once(out, slow_local)


def kill_while_writing(out, tries=3):
    """SIGKILL every protector actor while one writes into ``out`` (the partial file it leaves
    outlives it); whether that happened within ``tries`` kills. An actor that exits between the
    listing and its kill (the pool shrinks as the job drains) is no failure: one kill that lands
    during a write is."""
    for _ in range(tries):
        victims = wait_for(protector_pids)
        if not wait_for(lambda: list(out.glob(f".*{PARTIAL_SUFFIX}")), poll=0.002):
            return False
        landed = [pid for pid in victims if kill_own(pid)]
        if landed and list(out.glob(f".*{PARTIAL_SUFFIX}")):
            return True
    return False


def test_actors_killed_while_writing_photos_leave_no_partial_file(ray_cluster, photos, tiny_bundle, tmp_path):
    """Photos go whole: read, protected and written by their actor; its retry replaces what the
    killed write left."""
    assert local_protect(photos, tmp_path / "local", tiny_bundle).exit_code == 0
    out = tmp_path / "out"
    job, done = in_background(lambda: run_ray(photos, out, tiny_bundle, workers=2,
                                              files=FileOptions(metrics=False)))
    assert kill_while_writing(out), "no kill landed during a write"
    job.join(timeout=COMMAND_SECONDS)
    assert not job.is_alive()
    assert done["result"].counts == {"written": len(list(photos.iterdir())), "skipped": 0, "failed": 0,
                                     "pending": 0}
    assert_written_once(out, pngs(tmp_path / "local"))


def test_ctrl_c_writes_the_manifest_so_far_and_the_command_again_finishes(ray_cluster, inputs, tiny_bundle,
                                                                          slow_local, tmp_path):
    out, report = tmp_path / "out", tmp_path / "report.json"
    job = [str(inputs), "-r", "-o", str(out), "--engine", "ray", "--address", ray_cluster, "--model-dir",
           str(tiny_bundle), "--seed", str(SEED), "--n-samples", str(SLOW_SAMPLES), "--batch-size", "2"]
    command = [sys.executable, "-m", "mspd_edge.cli", "protect", *job]
    child = subprocess.Popen([*command, "--report", str(report)], stderr=subprocess.PIPE, text=True)
    wait_for(lambda: any(out.glob("*.png")) or child.poll() is not None, poll=0.01)
    child.send_signal(signal.SIGINT)
    _, stderr = child.communicate(timeout=COMMAND_SECONDS)
    assert child.returncode == 130, stderr
    rows = read_manifest((out / "manifest.jsonl").read_text())
    counts = {status: sum(row["status"] == status for row in rows) for status in COUNTS}
    # Outputs on disk whose rows had not reached the driver are pending; the rerun skips them.
    assert counts["pending"] and sum(counts.values()) == sum(COUNTS.values())
    assert len({row["input"] for row in rows}) == len(rows)
    assert json.loads(report.read_text())["interrupted"] is True
    assert json.loads(report.read_text())["counts"] == counts
    assert f"interrupted: protected {counts['written']} image(s)" in stderr
    assert f"{counts['pending']} not started" in stderr
    assert f"run the same command with --seed {SEED} again to finish" in stderr
    outputs = {row["output"] for row in rows if row["status"] in ("written", "pending")}
    assert {str(p) for p in out.rglob("*.png")} <= outputs   # nothing else written
    assert all(Path(row["output"]).is_file() for row in rows if row["status"] == "written")

    pending = {row["input"] for row in rows if row["status"] == "pending"}
    again = subprocess.run(command, capture_output=True, text=True, timeout=COMMAND_SECONDS)
    assert again.returncode == 1, again.stderr   # the bad files
    rows = read_manifest((out / "manifest.jsonl").read_text())
    assert {row["input"] for row in rows if row["status"] == "written"} <= pending
    assert sum(row["status"] == "failed" for row in rows) == COUNTS["failed"]
    assert_written_once(out, slow_local)
