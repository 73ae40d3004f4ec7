"""Runtime tests: copies of the tiny bundle (tests/conftest.py) and CIFAR-10 images."""
import shutil
from pathlib import Path

import pytest


@pytest.fixture
def bundle_copy(tiny_bundle, tmp_path):
    """A private copy of the tiny bundle (for tests that damage it)."""
    return Path(shutil.copytree(tiny_bundle, tmp_path / "bundle"))


@pytest.fixture(scope="session")
def cifar_images(cifar10_dir):
    """16 CIFAR-10 test images (uint8 HWC) and their labels."""
    from mspd_edge.data import load_npz

    images, labels, _ = load_npz(cifar10_dir / "test.npz", limit=16)
    return images, labels
