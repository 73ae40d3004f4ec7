"""Where model files lie, found without torch (the loader, the runtime's export cache and
``mspd-edge models`` all ask here).

* Shipped models: ``mspd_edge/weights/<name>.json`` (the manifest) and ``<name>.pt``.
* RobustBench ids (:data:`~.robustbench_ids.ROBUSTBENCH`): RobustBench's own layout
  ``<root>/<dataset>/<threat_model>/<id>.pt``, for ``<root>`` = ``$MSPD_EDGE_MODELS``, then
  ``./models`` (RobustBench's default ``model_dir``). ``mspd-edge models pull`` writes into the
  first of these roots.
"""
import json
import os
from pathlib import Path

from .embedded import EMBEDDED
from .pretrained import PUBLISHED
from .robustbench_ids import ROBUSTBENCH

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"
MODELS_ENV = "MSPD_EDGE_MODELS"
ROBUSTBENCH_MODEL_DIR = Path("models")


def model_roots():
    """The folders searched for RobustBench checkpoints, in order."""
    env = os.environ.get(MODELS_ENV)
    return ([Path(env)] if env else []) + [ROBUSTBENCH_MODEL_DIR]


def pull_root():
    """Where pulled checkpoints go: ``$MSPD_EDGE_MODELS``, else ``./models``."""
    return model_roots()[0]


def check_robustbench(name):
    """ValueError naming the known ids unless ``name`` is one of them."""
    if name not in ROBUSTBENCH:
        raise ValueError(f"unknown RobustBench id {name!r}: the zoo knows {', '.join(ROBUSTBENCH)}")


def robustbench_relative(name):
    """``<dataset>/<threat_model>/<id>.pt`` of RobustBench id ``name``."""
    check_robustbench(name)
    spec = ROBUSTBENCH[name]
    return Path(spec["dataset"], spec["threat_model"], f"{name}.pt")


def robustbench_candidates(name):
    """Every place the checkpoint of ``name`` may lie, in search order."""
    return [root / robustbench_relative(name) for root in model_roots()]


def find_robustbench(name):
    """The first existing checkpoint of ``name``, or None."""
    return next((path for path in robustbench_candidates(name) if path.is_file()), None)


def robustbench_checkpoint(name):
    """The checkpoint of ``name``; FileNotFoundError saying where it looked and how to get it."""
    path = find_robustbench(name)
    if path is None:
        looked = [str(p) for p in robustbench_candidates(name)]
        raise FileNotFoundError(
            f"no checkpoint for RobustBench model {name!r}: looked for {looked}; get it with "
            f"`mspd-edge models pull {name}` ({_published(name)}), or pass checkpoint=PATH")
    return path


def shipped_files(name):
    """``[manifest, weights]`` of shipped model ``name``, or [] when it is not shipped."""
    files = [WEIGHTS_DIR / f"{name}.json", WEIGHTS_DIR / f"{name}.pt"]
    return files if all(f.is_file() for f in files) else []


def shipped_manifests():
    """The manifests in ``mspd_edge/weights``, sorted."""
    return sorted(WEIGHTS_DIR.glob("*.json"))


def shipped_models():
    """``{name: manifest}`` of the models shipped in ``mspd_edge/weights``, in the order of
    :data:`~.embedded.EMBEDDED` (backbone, classifier, gray box, targets), others after."""
    order = {name: i for i, name in enumerate(EMBEDDED)}
    paths = sorted(shipped_manifests(), key=lambda path: (order.get(path.stem, len(order)), path.stem))
    return {path.stem: json.loads(path.read_text()) for path in paths}


def shipped_weights(name):
    """Where the weights of shipped model ``name`` lie (the manifest is beside them)."""
    return WEIGHTS_DIR / f"{name}.pt"


def model_files(ref):
    """The files that define model ``ref`` (a zoo name, a manifest or a checkpoint file).

    A file: itself (a ``.json`` manifest with the ``.pt`` beside it); a shipped name: its
    manifest and weights; a RobustBench id: its checkpoint. An empty list when none is found.
    """
    path = Path(str(ref))
    if path.is_file():
        weights = path.with_suffix(".pt")
        return [path, weights] if path.suffix == ".json" and weights.is_file() else [path]
    found = shipped_files(str(ref))
    if not found and str(ref) in ROBUSTBENCH:
        found = [p for p in [find_robustbench(str(ref))] if p is not None]
    return found


def _published(name):
    entry = PUBLISHED.get(name)
    return f"from {entry.location}" if entry else "no download location is known"
