"""Distributed tests: a real local Ray cluster and a real S3-compatible server on 127.0.0.1.

Everything Ray and moto write stays in the test's temporary folder: HOME (Ray's auth token),
RAY_TMPDIR and the cluster's temp dir (its session logs, Ray Data's ``ray-data.log``) point
there, and what the test process prints and logs (Ray Data, the raylet's error messages, the
core worker's log lines) goes to ``output.txt`` in the test's ``tmp_path``, so a failure report
shows the assertion and names that file. Each module's cluster is shut down and no process it started may
survive. The models: the tiny pair of tests/conftest.py (``tiny_bundle``).
"""
import numpy as np
import pytest
from PIL import Image
from ray_helpers import OBJECT_STORE_BYTES, PHOTO_SIDE, PHOTOS, own_processes, wait_until_gone

ray = pytest.importorskip("ray")
pytest.importorskip("moto.server")


OUTPUT_FILE = pytest.StashKey()


@pytest.fixture(autouse=True)
def _output_file(request, tmp_path):
    """Where :func:`pytest_runtest_makereport` puts what the test printed and logged."""
    request.node.stash[OUTPUT_FILE] = tmp_path / "output.txt"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Move the captured output of each phase (fd-level: Ray's C++ lines too) out of the report
    into the test's ``output.txt``; the report names the file."""
    report = yield
    path = item.stash.get(OUTPUT_FILE, None)
    captured = [(name, text) for name, text in report.sections if name.startswith("Captured ")]
    if path is None or not captured:
        return report
    with path.open("a") as out:
        for name, text in captured:
            if name.endswith(f" {call.when}"):
                out.write(f"----- {name}\n{text}\n")
    report.sections = [section for section in report.sections if section not in captured]
    report.sections.append(("Captured output", f"in {path}"))
    return report


@pytest.fixture(scope="session")
def ray_session_home(tmp_path_factory):
    """One private HOME for every module's cluster: Ray 2.60 keeps its auth token there
    (``~/.ray/auth_token``), and a process that started a cluster looks for it there again."""
    return tmp_path_factory.mktemp("ray-home")


@pytest.fixture(scope="module")
def ray_home(tmp_path_factory, ray_session_home):
    """A private HOME, RAY_TMPDIR and mspd-edge cache (where actors unpack the model bundle)
    for the module, no RAY_ADDRESS (a cluster someone else runs), and Ray Data's progress off
    (as the command sets it), restored afterwards; the temp root."""
    from ray.data import DataContext

    root = tmp_path_factory.mktemp("r")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(DataContext.get_current(), "enable_progress_bars", False)
        patch.delenv("RAY_ADDRESS", raising=False)
        patch.setenv("HOME", str(ray_session_home))
        for key, folder in (("RAY_TMPDIR", "t"), ("MSPD_EDGE_CACHE", "cache")):
            patch.setenv(key, str(root / folder))
        yield root


@pytest.fixture(scope="module")
def ray_cluster(ray_home):
    """A new local Ray cluster of 2 CPUs for the module (never one already running); its GCS
    address."""
    ray.init(address="local", num_cpus=2, _temp_dir=str(ray_home / "t"), include_dashboard=False,
             object_store_memory=OBJECT_STORE_BYTES, log_to_driver=False, logging_level="error")
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        processes = own_processes()
        ray.shutdown()
        assert wait_until_gone(processes) == [], "Ray processes left running (killed)"


@pytest.fixture(scope="module")
def s3_server():
    """moto's S3 server on 127.0.0.1 (a free port) and fake credentials; its ``host:port``."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_ACCESS_KEY_ID", "testing")
        patch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        server.start()
        try:
            yield f"127.0.0.1:{server._server.server_port}"
        finally:
            server.stop()


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """A folder of photos from ``skimage.data`` upscaled to PHOTO_SIDE x PHOTO_SIDE (JPEG q90):
    files large enough for the route that protects a file whole in its actor."""
    import cv2
    from skimage import data

    root = tmp_path_factory.mktemp("photos")
    for name in PHOTOS:
        photo = cv2.resize(getattr(data, name)()[:PHOTO_SIDE // 3, :PHOTO_SIDE // 3], (PHOTO_SIDE,) * 2,
                           interpolation=cv2.INTER_CUBIC)
        Image.fromarray(photo).save(root / f"{name}.jpg", quality=90)
    return root


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, cifar10_dir, photos):
    """A folder of real inputs: 24 CIFAR-10 test images (PNG, JPEG, gray, RGBA), a larger
    photo crop and two photos of a few MP in a subfolder, a truncated PNG and JPEG (a photo's),
    a text file with an image suffix and one without."""
    from skimage import data

    from mspd_edge.data import load_npz

    root = tmp_path_factory.mktemp("inputs")
    images, _, _ = load_npz(cifar10_dir / "test.npz", limit=24)
    for i, image in enumerate(images):
        if i % 4 == 1:
            Image.fromarray(image).save(root / f"img{i:02d}.jpg", quality=90)
        elif i % 4 == 2:
            Image.fromarray(image).convert("L").save(root / f"img{i:02d}.png")
        elif i % 4 == 3:
            alpha = np.full(image.shape[:2] + (1,), 200, np.uint8)
            Image.fromarray(np.concatenate([image, alpha], 2)).save(root / f"img{i:02d}.png")
        else:
            Image.fromarray(image).save(root / f"img{i:02d}.png")
    (root / "photos").mkdir()
    Image.fromarray(data.astronaut()[100:220, 150:310]).save(root / "photos" / "astronaut.jpg")
    for k, name in enumerate(PHOTOS[:2]):
        (root / "photos" / f"large{k}.jpg").write_bytes((photos / f"{name}.jpg").read_bytes())
    photo = (photos / f"{PHOTOS[0]}.jpg").read_bytes()
    (root / "truncated-photo.jpg").write_bytes(photo[: len(photo) * 9 // 10])
    good = (root / "img00.png").read_bytes()
    (root / "truncated.png").write_bytes(good[: len(good) // 2])
    (root / "notes.png").write_text("not an image")
    (root / "readme.txt").write_text("no image suffix: skipped as unsupported")
    return root   # the bad files: ray_helpers.BAD
