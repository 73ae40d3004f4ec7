"""The image conditions of the evaluation: originals, protected, reverted, re-encoded, ablations.

Every condition is a set of uint8 images at the models' input size, made from a parent
condition (or the originals) by one operation:

* ``protect``: MSPD with the defence settings, optionally changed (the ablations);
* ``revert``: Preemptive Reversion ``clip(2 x' - MCGS(x'))`` of the parent with the defence's
  own backbone (white-box) or the gray-box backbone (same architecture, another seed). The
  reverser draws its own noise (seed + ``REVERSER_SEED_OFFSET``): it does not know the defender's;
* ``jpeg``: re-encoding at JPEG quality ``JPEG_QUALITY`` (the paper's robustness diagnostic).
"""
from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from ..pipeline import protect_images

JPEG_QUALITY = 50
REVERSER_SEED_OFFSET = 1


@dataclass(frozen=True)
class Condition:
    """How one condition's images are made: ``operation`` applied to ``parent``'s images."""

    operation: str                      # "original", "protect", "revert" or "jpeg"
    parent: str | None = None           # None: the original images
    changes: dict = field(default_factory=dict)   # Settings fields changed (protect / revert)
    reverser: str = "defence"           # "defence" (white-box) or "graybox" (revert only)


CONDITIONS = {
    "none": Condition("original"),
    "mspd": Condition("protect"),
    "reverted-white": Condition("revert", "mspd"),
    "reverted-gray": Condition("revert", "mspd", reverser="graybox"),
    f"none+jpeg{JPEG_QUALITY}": Condition("jpeg", "none"),
    f"mspd+jpeg{JPEG_QUALITY}": Condition("jpeg", "mspd"),
    # Ablations of the paper: one epoch only, more epochs, fewer noisy copies.
    "mspd-F": Condition("protect", changes={"epochs": "F"}),
    "mspd-B": Condition("protect", changes={"epochs": "B"}),
    "mspd-FBFB": Condition("protect", changes={"epochs": "FBFB"}),
    "mspd-N1": Condition("protect", changes={"n_samples": 1}),
    "mspd-N10": Condition("protect", changes={"n_samples": 10}),
    # Diagnostic: ground-truth labels instead of the classifier's (what label errors cost).
    "mspd-gt": Condition("protect", changes={"label_mode": "gt"}),
}
MAIN_CONDITIONS = ("none", "mspd", "reverted-white", "reverted-gray",
                   f"none+jpeg{JPEG_QUALITY}", f"mspd+jpeg{JPEG_QUALITY}")
ABLATIONS = ("mspd-F", "mspd-B", "mspd-FBFB", "mspd-N1", "mspd-N10", "mspd-gt")


def check_conditions(names):
    """The condition names in protocol order, parents included; ValueError for unknown names."""
    unknown = [n for n in names if n not in CONDITIONS]
    if unknown:
        raise ValueError(f"unknown condition(s) {', '.join(unknown)}; known: {', '.join(CONDITIONS)}")
    wanted = set(names)
    for name in names:
        parent = CONDITIONS[name].parent
        while parent is not None:
            wanted.add(parent)
            parent = CONDITIONS[parent].parent
    return tuple(n for n in CONDITIONS if n in wanted)


def jpeg(images, quality=JPEG_QUALITY):
    """uint8 RGB images after a JPEG encode/decode round trip at ``quality``."""
    out = []
    for image in images:
        ok, data = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR),
                                [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise RuntimeError("JPEG encoding failed")
        out.append(cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB))
    return np.stack(out)


def make_condition(name, parent_images, backends, settings, labels=None):
    """``(uint8 images, defence labels or None)`` of condition ``name`` from its parent's images.

    ``backends``: {"defence": backend, "graybox": backend or None}; ``settings``: the resolved
    defence settings; ``labels``: ground truth, used when the label mode is "gt".
    """
    condition = CONDITIONS[name]
    if condition.operation == "original":
        return parent_images, None
    if condition.operation == "jpeg":
        return jpeg(parent_images), None
    backend = backends[condition.reverser]
    if backend is None:
        raise ValueError(f"condition {name} needs a gray-box backbone")
    run_settings = replace(settings, **condition.changes)
    reverse = condition.operation == "revert"
    if reverse:
        run_settings = replace(run_settings, seed=settings.seed + REVERSER_SEED_OFFSET)
    results = list(protect_images(list(parent_images), backend, run_settings, labels=labels, reverse=reverse))
    images = np.stack([image for _, image, _ in results])
    return images, np.array([label for _, _, label in results], np.int64)
