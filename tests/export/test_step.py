"""mcgs_step: one whole SmoothStep in ONNX vs ``mspd_edge.reference.smooth_step`` on the same noise.

Both compute the same float32 operations in the same order; the only way they can differ is a
gradient component so close to 0 that rounding flips its sign, which moves one copy's value by
2 eps, i.e. the mean by 2 eps / N. We measured bit-identical outputs for every architecture; the
test allows such flips on at most 0.1% of the values.
"""
import numpy as np
import onnx
import pytest
import torch

from mspd_edge.export.gradient import gradient_graph
from mspd_edge.export.graphs import torch_forward_graph
from mspd_edge.export.step import mcgs_step_graph
from mspd_edge.export.trt_support import check_model
from mspd_edge.reference import mcgs, smooth_step

from export_helpers import INPUT, REDUCED, make_model, session

EPS = 8 / 255


def _feeds(center, labels, noise, eps, direction):
    return {"center": center, "labels": labels, "noise": noise,
            "eps": np.array(eps, np.float32), "direction": np.array(direction, np.float32)}


def assert_same_step(got, ref, eps, n):
    diff = np.abs(got - ref)
    flips = diff > 1e-6
    assert flips.mean() <= 1e-3, f"{flips.sum()} of {diff.size} values differ (max {diff.max():.2e})"
    assert diff.max() <= 2 * eps * 2 / n + 1e-6


@pytest.fixture(scope="module")
def tiny_step():
    model = make_model("dm_preact_resnet")
    return model, mcgs_step_graph(gradient_graph(torch_forward_graph(model, INPUT)))


def test_signature_and_checks(tiny_step):
    _, step = tiny_step
    assert [i.name for i in step.graph.input] == ["center", "labels", "noise", "eps", "direction"]
    assert [o.name for o in step.graph.output] == ["stepped"]
    dims = [[d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in step.graph.input]
    assert dims == [["batch", 3, 32, 32], ["batch"], ["n_samples", "batch", 3, 32, 32], [], []]
    onnx.checker.check_model(step, full_check=True)
    onnx.shape_inference.infer_shapes(step, strict_mode=True)
    assert check_model(step).ok


@pytest.mark.parametrize("arch", sorted(REDUCED))
def test_step_matches_reference(arch):
    model = make_model(arch)
    sess = session(mcgs_step_graph(gradient_graph(torch_forward_graph(model, INPUT))))
    rng = np.random.default_rng(3)
    for b, n in ((1, 3), (2, 2)):    # one graph: batch and sample counts are dynamic
        x = rng.random((b, *INPUT), dtype=np.float32)
        y = rng.integers(0, 10, b).astype(np.int64)
        noise = rng.uniform(-1, 1, (n, b, *INPUT)).astype(np.float32)
        for direction in (-1.0, 1.0):
            got = sess.run(None, _feeds(x, y, noise, EPS, direction))[0]
            ref = smooth_step(model, torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(noise),
                              EPS, direction).numpy()
            assert got.shape == (b, *INPUT)
            assert_same_step(got, ref, EPS, n)


def test_cascade_from_steps_matches_mcgs(tiny_step):
    """The runtime's job in miniature: F then B steps plus the epoch update equal ``mcgs``."""
    model, step = tiny_step
    sess = session(step)
    rng = np.random.default_rng(5)
    x = rng.random((2, *INPUT), dtype=np.float32)
    y = np.array([1, 7], np.int64)
    noise = [rng.uniform(-1, 1, (4, 2, *INPUT)).astype(np.float32) for _ in range(2)]
    eps = 4 / 255
    current = x
    for e, (direction, sign) in zip(noise, ((-1.0, 1.0), (1.0, -1.0))):
        stepped = sess.run(None, _feeds(current, y, e, eps, direction))[0]
        current = np.clip(np.clip(current + sign * (stepped - current), x - eps, x + eps), 0, 1)
    ref = mcgs(model, torch.from_numpy(x), torch.from_numpy(y), eps=eps, n_samples=4,
               noise=[torch.from_numpy(e) for e in noise]).numpy()
    np.testing.assert_allclose(current, ref, atol=1e-6)
