"""Fixtures of the camera tests: test-written videos, a tiny random torch backend, model files."""
import json

import pytest
import torch

from camera_helpers import EPS, decode_video, smooth_frames, write_video

from mspd_edge.zoo.locate import WEIGHTS_DIR

EMBEDDED = ("cifar10-backbone", "cifar10-classifier")


@pytest.fixture(scope="session")
def tiny_manifest(tmp_path_factory):
    """A zoo manifest (``tiny.json`` + ``tiny.pt``) of a random 4-wide PreActResNet: --backbone FILE."""
    from mspd_edge.zoo.registry import build

    folder = tmp_path_factory.mktemp("tiny-model")
    torch.manual_seed(0)
    torch.save(build("dm_preact_resnet", num_classes=10, base_width=4).state_dict(), folder / "tiny.pt")
    (folder / "tiny.json").write_text(json.dumps(
        {"name": "tiny", "arch": "dm_preact_resnet", "arch_kwargs": {"base_width": 4},
         "dataset": "cifar10", "input_size": [3, 32, 32], "eps": EPS}))
    return folder / "tiny.json"


@pytest.fixture(scope="session")
def embedded_models():
    """The CLI arguments of the embedded default models; skips when their weights are absent."""
    missing = [f"{name}{ext}" for name in EMBEDDED for ext in (".json", ".pt")
               if not (WEIGHTS_DIR / f"{name}{ext}").is_file()]
    if missing:
        pytest.skip(f"embedded default models not shipped yet (missing in {WEIGHTS_DIR}: "
                    f"{', '.join(missing)}); they appear when scripts/train_embedded.py finishes")
    return []   # the defaults: --backbone cifar10-backbone and its paired classifier


@pytest.fixture(scope="session")
def video(tmp_path_factory):
    """A 12-frame 80x60 MJPG video written by OpenCV, and its decoded frames (RGB)."""
    path = write_video(tmp_path_factory.mktemp("video") / "clip.avi", smooth_frames(12, (80, 60)))
    return path, decode_video(path)
