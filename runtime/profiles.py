"""Optimisation profiles: the ``(min, opt, max)`` input shapes a TensorRT engine is built for.

TensorRT (and ONNX Runtime's TensorRT provider) builds an engine for a range of shapes of
each dynamic input. The cascade calls each graph with at most ``max_batch`` images and
``n_samples`` noisy copies per image, so the profiles are

* ``backbone``, ``classifier``: images 1..``max_batch``;
* ``backbone_grad``: rows 1..``max_batch`` x ``n_samples`` (the grad route's copies);
* ``mcgs_step``: batch 1..``max_batch``, copies 1..``n_samples``;

with the optimum at the maximum (the cascade fills its calls). Static dimensions (channels,
height, width, classes) come from the bundle; inputs without a dynamic dimension (``eps``,
``direction``) need no profile.
"""
from mspd_edge.bundle import BATCH, STEP_BATCH, STEP_SAMPLES

# The symbolic batch dimensions of the export's graph signatures (docs/export.md).
IMAGE_DIMS = (BATCH, STEP_BATCH)
COPY_DIM = STEP_SAMPLES


def dynamic_ranges(graph, max_batch, n_samples):
    """``{symbolic dimension: (min, opt, max)}`` for ``graph`` at ``max_batch`` and ``n_samples``."""
    b, n = int(max_batch), int(n_samples)
    images = b * n if graph == "backbone_grad" else b
    ranges = {dim: (1, images, images) for dim in IMAGE_DIMS}
    ranges[COPY_DIM] = (1, n, n)
    return ranges


def graph_profile(signature, graph, *, max_batch, n_samples, input_size, num_classes):
    """``{input: (min, opt, max) shapes}`` for the dynamic inputs of a graph signature
    (``Bundle.signature(graph)``); ``input_size`` is ``(C, H, W)``."""
    named = {"C": input_size[0], "H": input_size[1], "W": input_size[2], "K": num_classes}
    ranges = dynamic_ranges(graph, max_batch, n_samples)
    profile = {}
    for spec in signature["inputs"]:
        shape = spec["shape"]
        if all(isinstance(d, int) and d > 0 for d in shape):
            continue
        profile[spec["name"]] = tuple(
            tuple(d if isinstance(d, int) and d > 0 else named[d] if d in named else ranges[d][which]
                  for d in shape)
            for which in range(3))
    return profile
