"""ONNX Runtime vs the PyTorch reference: same images, same seed, compared as 8-bit files.

Tolerances (``compare.Tolerances``, the issue's targets): at least 99% of the 8-bit values
identical and max |d| <= 2/255; gradient cosine >= 0.9999 and relative error <= 1e-3. The
residue is sign flips: the cascade keeps only sign(gradient), and ORT sums each convolution
in another order than PyTorch (relative gradient error ~1e-6), so an entry within that
rounding of zero can change sign. One flipped copy moves its value by 2 eps / N before the
mean, which can cross an 8-bit rounding boundary; everything else is bit-identical.
"""
import pytest

from mspd_edge.pipeline import Settings
from mspd_edge.runtime.cascade import OrtBackend
from mspd_edge.measure.compare import Tolerances, parity
from mspd_edge.torch_backend import TorchBackend

DEFAULT_MODELS = ("cifar10-backbone", "cifar10-classifier")


def _check(records):
    ort = records[1]
    assert ort["ok"], ort["failures"]
    assert ort["identical"] >= 0.99 and ort["max_diff_255"] <= 2
    assert ort["grad_cosine"] >= 0.9999 and ort["grad_rel_err"] <= 1e-3
    return ort


def test_ort_parity_tiny_model(tiny_torch, tiny_bundle, cifar_images):
    """Always runs: random weights of the shipped architectures at a small width."""
    images = list(cifar_images[0])
    ref = TorchBackend(*tiny_torch)
    with OrtBackend(tiny_bundle, threads=1) as ort:
        settings = Settings(n_samples=8, seed=11).resolved(ref)
        records = parity({"torch": ref, "ort": ort}, images, settings, "torch", Tolerances())
    ort = _check(records)
    assert ort["label_agreement"] == 1.0


@pytest.mark.slow
def test_ort_parity_default_models(cifar10_dir, tmp_path):
    """The shipped defaults, paper settings (N=20, FB), 64 real CIFAR-10 test images.

    Marked slow: 2 x 64 cascades of the full backbone (about half a minute on an idle 2-core
    CPU; several minutes while the machine trains). Measured: 99.999% identical, max |d| 1/255.
    """
    from mspd_edge.data import load_npz
    from mspd_edge.export import export_bundle
    from mspd_edge.zoo import load_model

    try:
        back, cls = load_model(DEFAULT_MODELS[0]), load_model(DEFAULT_MODELS[1])
    except FileNotFoundError:
        pytest.skip("the default models are not shipped yet: mspd_edge/weights/"
                    "cifar10-backbone.{json,pt} and cifar10-classifier.{json,pt} are missing")
    export_bundle(back, tmp_path, classifier=cls, verify=False)
    images = list(load_npz(cifar10_dir / "test.npz", limit=64)[0])
    ref = TorchBackend(back, cls)
    with OrtBackend(tmp_path) as ort:
        settings = Settings(seed=0).resolved(ref)
        assert settings.n_samples == 20 and settings.epochs == "FB"
        records = parity({"torch": ref, "ort": ort}, images, settings, "torch", Tolerances())
    ort = _check(records)
    print(f"default models, 64 images: identical {ort['identical']:.5f}, max |d| "
          f"{ort['max_diff_255']}/255, grad cosine {ort['grad_cosine']:.9f}, rel err "
          f"{ort['grad_rel_err']:.2e}, labels {ort['label_agreement']:.3f}")
