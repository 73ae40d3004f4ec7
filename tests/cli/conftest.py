"""Fixtures of the CLI tests: the embedded default models (skipped when not shipped)."""
import pytest


@pytest.fixture(scope="session")
def embedded_models():
    from mspd_edge.zoo.locate import WEIGHTS_DIR

    files = [WEIGHTS_DIR / f"{name}{ext}" for name in ("cifar10-backbone", "cifar10-classifier")
             for ext in (".json", ".pt")]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        pytest.skip(f"embedded model weights not shipped yet: {', '.join(missing)}")
