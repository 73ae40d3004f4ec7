"""Helpers of the distributed tests (import as ``ray_helpers``): both engines on a folder."""
import time
from pathlib import Path

from click.testing import CliRunner

from mspd_edge.backends import BackendOptions
from mspd_edge.cli import main
from mspd_edge.distributed import protect_dataset
from mspd_edge.pipeline import Settings

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


def ray_processes(root):
    """Pids of live processes whose command line names the folder ``root``."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and str(root) in (proc / "cmdline").read_bytes().decode(errors="replace"):
                if "Z" not in (proc / "stat").read_text().split(")")[-1].split()[0]:
                    found.append(int(proc.name))
        except OSError:
            continue
    return found


def wait_until_gone(root, timeout=30):
    """Wait for the Ray processes of ``root`` to end; the ones left after ``timeout``."""
    deadline = time.monotonic() + timeout
    while (left := ray_processes(root)) and time.monotonic() < deadline:
        time.sleep(0.5)
    return left
