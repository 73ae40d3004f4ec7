"""Helpers of the distributed tests (import as ``ray_helpers``): both engines on a folder."""
import os
import select
import signal
import time
from pathlib import Path

from click.testing import CliRunner

from mspd_edge.backends import BackendOptions
from mspd_edge.cli import main
from mspd_edge.distributed import protect_dataset
from mspd_edge.pipeline import Settings
from limits import EVENT_SECONDS

SEED = 5
SAMPLES = 4
OBJECT_STORE_BYTES = 256 << 20
BAD = {"truncated.png": "truncated image", "notes.png": "not an image",
       "truncated-photo.jpg": "truncated image"}
COUNTS = {"written": 27, "skipped": 1, "failed": 3, "pending": 0}   # a job on the ``inputs`` fixture
PHOTO_SIDE = 1536   # 2.4 MP (over LARGE_PIXELS), some 300 KB as JPEG (over PHOTO_FILE_BYTES)
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")



def local_protect(inputs, out, bundle, *extra):
    """``mspd-edge protect`` (the local engine) on ``inputs``; the CLI result."""
    return CliRunner().invoke(main, [str(a) for a in (
        "protect", inputs, "-r", "-o", out, "--backend", "ort", "--model-dir", bundle,
        "--seed", SEED, "--n-samples", SAMPLES, "-q", *extra)])


def run_ray(inputs, out, bundle, samples=SAMPLES, **kwargs):
    settings = Settings(seed=SEED, n_samples=samples, batch_size=kwargs.pop("batch_size", None))
    return protect_dataset([str(inputs)], str(out), options=BackendOptions(model_dir=bundle),
                           settings=settings, recursive=True, log=lambda line, error: None, **kwargs)


def pngs(folder, pattern="*.png"):
    """``{relative path: bytes}`` of the outputs in ``folder``."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in Path(folder).rglob(pattern)}


def hidden(folder):
    return [p for p in Path(folder).rglob(".*")]


def s3_uri(endpoint, path):
    """The URI of ``path`` (bucket/key) on the test server, with the credentials: the Ray workers
    started before the server, so its variables are not in their environment."""
    return f"s3://testing:testing@{path}?endpoint_override={endpoint}&scheme=http&region=us-east-1"


def cluster_actor_pids(class_name):
    """Pids of this driver's live actors of ``class_name``, as its own cluster's GCS lists them
    (the actor table that ``ray.util.state.list_actors`` serves through the dashboard, which the
    test clusters do not start)."""
    import ray
    from ray._private.state import actors

    job = ray.JobID.from_hex(ray.get_runtime_context().get_job_id())
    return sorted(actor["Pid"] for actor in actors(job_id=job, actor_state_name="ALIVE").values()
                  if actor["ActorClassName"] == class_name and actor["Pid"])


def _state_and_parent(pid):
    stat = Path(f"/proc/{pid}/stat").read_text()
    state, parent = stat[stat.rindex(")") + 2:].split()[:2]
    return state, int(parent)


def _descends_from_this_process(pid):
    while pid > 1:
        pid = _state_and_parent(pid)[1]
        if pid == os.getpid():
            return True
    return False


def kill_own(pid):
    """SIGKILL ``pid``, a process of this test's own cluster; whether the signal landed (False:
    it had already exited). Refuses (AssertionError) a pid that does not descend from this
    process. The pidfd pins the process checked, so a reused pid is never signalled."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return False
    try:
        if _state_and_parent(pid)[0] == "Z":
            return False   # ended, not yet reaped
        assert _descends_from_this_process(pid), f"pid {pid} is not a process this test started"
        signal.pidfd_send_signal(fd, signal.SIGKILL)
        return True
    except (FileNotFoundError, ProcessLookupError):   # it ended meanwhile
        return False
    finally:
        os.close(fd)


def own_processes():
    """``{pid: pidfd}`` of every live descendant of this process (the Ray clusters it started:
    GCS, raylet, workers), from the kernel's child lists; the pidfds outlive a reused pid."""
    found, todo = {}, [os.getpid()]
    while todo:
        for task in Path(f"/proc/{todo.pop()}/task").glob("*"):
            try:
                children = [int(pid) for pid in (task / "children").read_text().split()]
            except OSError:
                continue
            for pid in children:
                try:
                    found[pid] = os.pidfd_open(pid)
                    todo.append(pid)
                except ProcessLookupError:
                    continue
    return found


def wait_until_gone(processes, timeout=EVENT_SECONDS):
    """Wait for ``processes`` (:func:`own_processes`) to end, closing their pidfds; SIGKILL those
    left after ``timeout`` (this test started them) and return their pids."""
    deadline = time.monotonic() + timeout
    left = dict(processes)
    while left and (wait := deadline - time.monotonic()) > 0:
        ended, _, _ = select.select(list(left.values()), [], [], wait)   # a pidfd reads when it ends
        for pid in [pid for pid, fd in left.items() if fd in ended]:
            os.close(left.pop(pid))
    for fd in left.values():
        try:
            signal.pidfd_send_signal(fd, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.close(fd)
    return sorted(left)
