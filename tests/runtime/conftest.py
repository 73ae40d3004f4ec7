"""Runtime tests: copies of the tiny bundle (tests/conftest.py) and CIFAR-10 images."""
import pytest


@pytest.fixture(scope="session")
def cifar_images(cifar10_dir):
    """16 CIFAR-10 test images (uint8 HWC) and their labels."""
    from mspd_edge.data import load_npz

    images, labels, _ = load_npz(cifar10_dir / "test.npz", limit=16)
    return images, labels
