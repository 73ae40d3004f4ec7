"""The backend protocol: every backend derives from :class:`mspd_edge.protocol.Backend`, has every
member, and closes (also as a context manager)."""
import inspect

import numpy as np
import pytest

from mspd_edge.backends import BackendOptions, build_backend
from mspd_edge.pipeline import Settings, protect_images
from mspd_edge.protocol import Backend
from mspd_edge.runtime.cascade import OrtBackend, TrtBackend
from mspd_edge.torch_backend import TorchBackend

MEMBERS = ("name", "precision", "route", "copies_per_call", "provider", "bundle", "input_size",
           "default_eps", "predict", "input_grad", "run", "close", "__enter__", "__exit__")


@pytest.mark.parametrize("cls", [TorchBackend, OrtBackend, TrtBackend])
def test_every_backend_class_implements_the_whole_protocol(cls):
    assert issubclass(cls, Backend) and not inspect.isabstract(cls)


def test_an_incomplete_backend_cannot_be_made():
    class NoGradient(Backend):
        def predict(self, x, model):
            return np.zeros(len(x), np.int64)

        def run(self, x, labels, noise, settings):
            return x

    with pytest.raises(TypeError, match="input_grad"):
        NoGradient()


@pytest.mark.parametrize("name", ["torch", "ort"])
def test_built_backends_have_every_member_and_close(name, tiny_bundle, cifar10):
    options = BackendOptions(precision="fp32", threads=1, model_dir=tiny_bundle if name == "ort" else None)
    models = build_backend(name, options)
    images = list(cifar10[0][:2])
    with models.backend as backend:
        assert isinstance(backend, Backend) and all(hasattr(backend, m) for m in MEMBERS)
        assert backend.name == name and backend.precision == "fp32"
        assert (backend.route is None) == (name == "torch") and (backend.bundle is None) == (name == "torch")
        settings = Settings(seed=0, n_samples=2).resolved(backend)
        protected = [out for _, out, _ in protect_images(images, backend, settings)]
        x = np.stack([image.transpose(2, 0, 1) / np.float32(255) for image in images]).astype(np.float32)
        grad = backend.input_grad(x, backend.predict(x, "backbone"))
        assert grad.shape == x.shape and np.abs(grad).max() > 0
    assert [p.shape for p in protected] == [i.shape for i in images]
    assert models.backbone.input_size == (3, 32, 32) and models.classifier is not None
