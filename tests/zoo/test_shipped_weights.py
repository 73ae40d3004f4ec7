"""The shipped models: manifests complete, weights intact, and they classify real test images."""
import json

import pytest
import torch

from mspd_edge.data import load_npz
from mspd_edge.digest import sha256_file
from mspd_edge.zoo import load_model
from mspd_edge.zoo.embedded import EMBEDDED
from mspd_edge.zoo.locate import WEIGHTS_DIR

MANIFESTS = sorted(WEIGHTS_DIR.glob("*.json"))
N_IMAGES = 100
MIN_ACCURACY = 0.4            # chance is 0.1; the weakest shipped model is about 0.55 clean
MAX_TOTAL_MB = 25
MANIFEST_KEYS = ("name", "role", "arch", "arch_kwargs", "recipe", "train_seconds", "machine",
                 "data_sha256", "weights_sha256", "training_check")


@pytest.fixture(scope="module")
def test_images(cifar10_dir):
    images, labels, _ = load_npz(cifar10_dir / "test.npz", limit=N_IMAGES)
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div(255), torch.from_numpy(labels)


def test_weights_fit_the_budget():
    total = sum(p.stat().st_size for p in WEIGHTS_DIR.glob("*.pt"))
    assert MANIFESTS and total <= MAX_TOTAL_MB * 2 ** 20


@pytest.mark.parametrize("manifest_path", MANIFESTS, ids=[p.stem for p in MANIFESTS])
def test_manifest_is_complete_and_weights_intact(manifest_path):
    manifest = json.loads(manifest_path.read_text())
    assert all(key in manifest for key in MANIFEST_KEYS)
    assert manifest["recipe"]["seed"] is not None
    assert sha256_file(manifest_path.with_suffix(".pt")) == manifest["weights_sha256"]


@pytest.mark.parametrize("manifest_path", MANIFESTS, ids=[p.stem for p in MANIFESTS])
def test_shipped_model_classifies_real_images(manifest_path, test_images):
    x, y = test_images
    model = load_model(manifest_path.stem)
    if model.info.smoothing_sigma:       # a smoothing base classifier is meant for noisy images
        x = x + model.info.smoothing_sigma * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        accuracy = (model(x).argmax(1) == y).float().mean().item()
    assert accuracy >= MIN_ACCURACY, f"{manifest_path.stem}: {accuracy:.2f} on {N_IMAGES} test images"


@pytest.mark.parametrize("manifest_path", MANIFESTS, ids=[p.stem for p in MANIFESTS])
def test_manifest_matches_its_spec(manifest_path):
    """A shipped embedded model is the one its spec describes (role, architecture, recipe, and the
    smoothing sigma that `evaluate --certify` reads)."""
    manifest = json.loads(manifest_path.read_text())
    spec = EMBEDDED.get(manifest_path.stem)
    if spec is None:
        pytest.skip("not an embedded spec")
    assert (manifest["role"], manifest["arch"]) == (spec["role"], spec["arch"])
    assert manifest["recipe"]["recipe"] == spec["train"]["recipe"]
    assert manifest.get("smoothing_sigma") == spec.get("smoothing_sigma")
    assert manifest["recipe"].get("noise_sigma", 0.0) == spec["train"].get("noise_sigma", 0.0)
    assert load_model(manifest_path.stem).info.smoothing_sigma == spec.get("smoothing_sigma")
