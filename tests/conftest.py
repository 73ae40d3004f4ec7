"""Shared fixtures: CIFAR-10 test images from the shared data folder, a fast fake backend, and a
tiny random-weight model pair as zoo manifests and as an export bundle (exported once per
session, a few seconds, so the machinery is tested whether or not shipped weights exist)."""
import os

# Before torch is imported (and inherited by every process a test starts): OpenMP threads that
# sleep when idle, not spin, so the suite shares a busy machine fairly.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# Before ray is imported: the clusters the tests start are set up as `protect --engine ray` sets
# up its own (services on 127.0.0.1; workers at the test's priority, not Ray's nice 15).
from mspd_edge.distributed.local import prepare_local_cluster  # noqa: E402  (imports no Ray)

prepare_local_cluster()

import json
import shutil
import signal
import struct
import zlib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from model_helpers import randomize_batchnorm

from mspd_edge.data import load_npz
from mspd_edge.protocol import Backend
from mspd_edge.zoo.info import ModelInfo

REPO = Path(__file__).resolve().parents[1]
CIFAR10_DIR = REPO.parent / "shared" / "data" / "cifar10"
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """One torch thread per test process: tests are small, and the machine may be shared."""
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _sigint_handler_restored():
    """Each test ends with this process's SIGINT handler as it found it: an interrupted in-process
    ``protect`` (CliRunner) ignores SIGINT on its way out, as a real process should, and a child
    started later by another test would inherit that and ignore its Ctrl-C."""
    handler = signal.getsignal(signal.SIGINT)
    yield
    signal.signal(signal.SIGINT, handler)


@pytest.fixture(scope="session")
def tiny_backend():
    """The reference TorchBackend with a random 4-wide PreActResNet as backbone and classifier."""
    import torch

    from mspd_edge.torch_backend import TorchBackend
    from mspd_edge.zoo.dm_resnet import DMPreActResNet

    torch.manual_seed(0)
    backbone = DMPreActResNet(base_width=4)
    backbone.info = SimpleNamespace(input_size=(3, 32, 32), eps=8 / 255)
    return TorchBackend(backbone, DMPreActResNet(base_width=4))


@pytest.fixture(scope="session")
def cifar10_dir():
    """The shared CIFAR-10 folder (``<repo>/../shared/data/cifar10``); skips the test when absent."""
    if not (CIFAR10_DIR / "test.npz").is_file():
        pytest.skip(f"CIFAR-10 data not found in {CIFAR10_DIR}")
    return CIFAR10_DIR


@pytest.fixture(scope="session")
def cifar10(cifar10_dir):
    """``(images uint8 [8, 32, 32, 3] RGB, labels, classes)`` from the CIFAR-10 test split."""
    return load_npz(cifar10_dir / "test.npz", limit=8)


class FakeBackend(Backend):
    """A numpy stand-in for a cascade backend: moves each value by eps along the first noise draw.

    Deterministic given the noise (so the seed matters), cheap, and never leaves the budget.
    """

    name = "fake"
    input_size = (3, 32, 32)
    default_eps = 8 / 255

    def __init__(self):
        self.calls = []

    def predict(self, x, model):
        return (x.mean(axis=(1, 2, 3)) * 10).astype(np.int64).clip(0, 9)

    def input_grad(self, images, labels):
        """The gradient of the score ``sum(images)``: ones."""
        return np.ones_like(images)

    def run(self, x, labels, noise, settings):
        self.calls.append(labels.tolist())
        return np.clip(x + settings.eps * np.sign(noise[0][0]), 0, 1).astype(np.float32)


def fake_info(name):
    return ModelInfo(name=name, classes=CIFAR10_CLASSES, input_size=(3, 32, 32), eps=8 / 255)


@pytest.fixture
def fake_backend():
    return FakeBackend()


@pytest.fixture
def fake_cli(monkeypatch):
    """Make the CPU backends of every command (``torch``, ``ort``, so ``--backend auto`` too) use
    :class:`FakeBackend`; returns the backend."""
    from dataclasses import replace

    from mspd_edge.backends import BACKENDS, Models, get_backend

    backend = FakeBackend()

    def models(options, need_classifier):
        return Models(backend, fake_info("fake-backbone"),
                      fake_info("fake-classifier") if need_classifier else None)

    for name in ("torch", "ort"):
        monkeypatch.setitem(BACKENDS, name, replace(get_backend(name), build=models,
                                                    check=lambda options: None))
    return backend


def _png_header_only(path, width, height):
    """Write a PNG whose header claims ``width`` x ``height`` RGB pixels, with no pixel data."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
                     + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))
    return path


@pytest.fixture
def png_header_only():
    """``(path, width, height) -> path``: a PNG that only claims a size (a decompression bomb)."""
    return _png_header_only


# Small widths of the shipped architectures (same code paths: pre-activation ResNet with
# Swish and BatchNorm for the backbone, CifarNet with max pooling and flip TTA for the labels).
TINY = {"tiny-back": ("dm_preact_resnet", {"base_width": 4, "activation": "swish"}),
        "tiny-cls": ("cifarnet", {"widths": [8, 16, 16], "stem": 8, "flip_tta": True})}


@pytest.fixture(scope="session")
def tiny_zoo(tmp_path_factory):
    """``{name: manifest path}`` of the tiny pair, loadable with ``load_model(path)``."""
    import torch

    from mspd_edge.zoo.registry import build

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("tiny-zoo")
    paths = {}
    for seed, (name, (arch, kwargs)) in enumerate(TINY.items()):
        torch.manual_seed(seed)
        model = randomize_batchnorm(build(arch, num_classes=10, **kwargs).eval(), seed)
        torch.save(model.state_dict(), root / f"{name}.pt")
        paths[name] = root / f"{name}.json"
        paths[name].write_text(json.dumps({"name": name, "arch": arch, "arch_kwargs": kwargs,
                                           "dataset": "cifar10"}))
    return paths


@pytest.fixture(scope="session")
def tiny_torch(tiny_zoo):
    """The tiny pair as torch modules ``(backbone, classifier)`` (with ``.info``)."""
    from mspd_edge.zoo import load_model

    return load_model(tiny_zoo["tiny-back"]), load_model(tiny_zoo["tiny-cls"])


@pytest.fixture(scope="session")
def tiny_bundle(tiny_torch, tmp_path_factory):
    """An export bundle of the tiny pair (all four graphs)."""
    from mspd_edge.export import export_bundle

    out = tmp_path_factory.mktemp("tiny-bundle")
    back, cls = tiny_torch
    export_bundle(back, out, classifier=cls, verify=False)
    return out


@pytest.fixture
def bundle_copy(tiny_bundle, tmp_path):
    """A private copy of the tiny bundle (for tests that damage it)."""
    return Path(shutil.copytree(tiny_bundle, tmp_path / "bundle"))
