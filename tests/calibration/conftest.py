"""Calibration tests: the shipped backbone's real graphs, reduced with real CIFAR-10 images.

The fp32 bundle of the shipped pair is exported once per session; its fp16 and int8 bundles
are made from it (int8 calibrated on 8 training images); accuracy is scored on test images.
"""
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("torch")

CALIBRATION_IMAGES = 8


@pytest.fixture(scope="session")
def shipped_bundle(tmp_path_factory):
    """The fp32 export bundle of the shipped backbone and classifier."""
    from mspd_edge.export import export_bundle
    from mspd_edge.zoo import load_model

    out = tmp_path_factory.mktemp("fp32")
    export_bundle(load_model("cifar10-backbone"), out, classifier=load_model("cifar10-classifier"),
                  verify=False)
    return out


@pytest.fixture(scope="session")
def train_images(cifar10_dir):
    from mspd_edge.data import load_npz

    return list(load_npz(cifar10_dir / "train.npz", limit=CALIBRATION_IMAGES)[0])


@pytest.fixture(scope="session")
def test_images(cifar10_dir):
    from mspd_edge.data import load_npz

    images, labels, _ = load_npz(cifar10_dir / "test.npz", limit=16)
    return list(images), labels


@pytest.fixture(scope="session")
def reduced(shipped_bundle, train_images, tmp_path_factory):
    """``{precision: bundle folder}`` for fp16 and int8, made from the shipped fp32 bundle."""
    from mspd_edge.calibration.bundle import reduce_bundle

    out = {}
    for precision in ("fp16", "int8"):
        out[precision] = tmp_path_factory.mktemp(precision)
        reduce_bundle(shipped_bundle, out[precision], precision, train_images,
                      image_set=f"cifar10 train.npz[:{len(train_images)}]")
    return out


def gradients(bundle, images, n_samples=20, seed=5):
    """The input gradient of ``bundle`` on the images' first-epoch noisy copies (fp32 labels)."""
    import numpy as np

    from mspd_edge.calibration.feeds import calibration_feeds
    from mspd_edge.runtime.cascade import OrtBackend

    with OrtBackend(bundle, threads=1) as backend:
        feeds = calibration_feeds(backend, images, n_samples, seed)
        return np.concatenate([backend.input_grad(f["images"], f["labels"]) for f in feeds])
