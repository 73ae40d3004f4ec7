"""Runtime tests: a tiny random-weight model pair, as zoo manifests and as an export bundle.

The bundle is exported once per session (a few seconds); every test that needs a model uses
it, so the machinery is tested whether or not the shipped weights exist yet. Torch runs on one
thread here (a shared, busy machine).
"""
import json
import shutil
from pathlib import Path

import pytest
from model_helpers import randomize_batchnorm

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


@pytest.fixture(scope="session")
def cifar_images(cifar10_dir):
    """16 CIFAR-10 test images (uint8 HWC) and their labels."""
    from mspd_edge.data import load_npz

    images, labels, _ = load_npz(cifar10_dir / "test.npz", limit=16)
    return images, labels
