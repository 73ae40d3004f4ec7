"""Fixtures of the verify tests: the embedded CIFAR-10 pair as a torch backend (2 noisy copies:
fast), and real images (CIFAR-10 test images, scikit-image photos) made small."""
import cv2
import numpy as np
import pytest
import skimage.data

from mspd_edge.backends import BackendOptions, build_backend
from mspd_edge.pipeline import Settings, protect_batch


@pytest.fixture(scope="session")
def models():
    from mspd_edge.zoo.locate import WEIGHTS_DIR

    if not (WEIGHTS_DIR / "cifar10-backbone.pt").is_file():
        pytest.skip("embedded model weights not shipped")
    return build_backend("torch", BackendOptions(precision="fp32"))


@pytest.fixture(scope="session")
def settings(models):
    return Settings(n_samples=2, seed=5).resolved(models.backend)


@pytest.fixture(scope="session")
def photos(cifar10):
    """Small real RGB images: CIFAR-10 test images upsampled to 128x128, and two skimage photos."""
    images = [cv2.resize(image, (128, 128), interpolation=cv2.INTER_CUBIC) for image in cifar10[0][:3]]
    images += [cv2.resize(skimage.data.coffee(), (160, 120), interpolation=cv2.INTER_AREA),
               cv2.resize(skimage.data.astronaut(), (128, 128), interpolation=cv2.INTER_AREA)]
    return [np.ascontiguousarray(image) for image in images]


@pytest.fixture(scope="session")
def protected(photos, models, settings):
    return [pixels for pixels, _ in protect_batch(photos, models.backend, settings)]
