"""Where the automatic exports live: one bundle per model pair and weights, found without torch.

``mspd-edge protect --backend ort|trt`` without ``--model-dir`` uses
``<cache>/exports/<backbone>[+<classifier>]-<fingerprint>/`` (``<cache>``: ``$MSPD_EDGE_CACHE``,
else ``$XDG_CACHE_HOME/mspd-edge``, else ``~/.cache/mspd-edge``). The fingerprint hashes the
weights files (and model manifests) of both models, found by the zoo's torch-free locator
(:func:`mspd_edge.zoo.locate.model_files`), the mspd-edge version and the bundle format, so
new weights give a new export. Finding the files needs no torch, so a cached
export is used by a process that never imports torch; making one (``mspd_edge.export``)
needs torch and is the CLI's job.
"""
import hashlib
import json
import re
from pathlib import Path

from mspd_edge import __version__
from mspd_edge.bundle import FORMAT, FORMAT_VERSION, MANIFEST
from mspd_edge.digest import sha256_file
from mspd_edge.zoo import locate

from .engine_cache import cache_root



def paired_classifier(ref):
    """The ``pair`` a shipped model's manifest names (None when unknown without torch)."""
    for manifest in (Path(str(ref)), locate.WEIGHTS_DIR / f"{ref}.json"):
        if manifest.suffix == ".json" and manifest.is_file():
            try:
                return json.loads(manifest.read_text()).get("pair")
            except (OSError, ValueError):
                return None
    return None


def _slug(ref):
    stem = Path(str(ref)).stem if Path(str(ref)).suffix else str(ref)
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", stem)[:60] or "model"


def export_dir(backbone, classifier=None, root=None):
    """The cache folder for ``backbone`` (+ ``classifier``), or None when a model's files cannot
    be found without loading it (then pass ``--model-dir``)."""
    digest = hashlib.sha256(f"{FORMAT}/{FORMAT_VERSION}/{__version__}".encode())
    for ref in (backbone, classifier):
        if ref is None:
            digest.update(b"|none")
            continue
        files = locate.model_files(ref)
        if not files:
            return None
        digest.update(b"|" + str(ref).encode())
        for file in files:
            digest.update(sha256_file(file).encode())
    name = _slug(backbone) + (f"+{_slug(classifier)}" if classifier is not None else "")
    base = Path(root) if root is not None else cache_root() / "exports"
    return base / f"{name}-{digest.hexdigest()[:12]}"


def reduced_dir(fp32_folder, precision):
    """The cache folder of the ``precision`` bundle made from the fp32 export ``fp32_folder``."""
    return Path(fp32_folder).with_name(f"{Path(fp32_folder).name}-{precision}")


def is_complete(folder):
    """Whether ``folder`` holds a finished export (the manifest is written last)."""
    return folder is not None and (Path(folder) / MANIFEST).is_file()
