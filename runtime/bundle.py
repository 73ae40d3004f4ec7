"""An export bundle read with the standard library only (no torch, no onnx).

A bundle is the folder ``mspd-edge export`` writes (docs/export.md): ``manifest.json`` plus
``backbone.onnx``, ``backbone_grad.onnx``, ``mcgs_step.onnx`` and, optionally,
``classifier.onnx``. :class:`Bundle` reads the manifest and hands out graph paths; a graph's
sha256 is checked against the manifest the first time its path is asked for, so a runtime
never runs a graph that changed after export (and never hashes graphs it does not use).
"""
import json
from dataclasses import dataclass
from pathlib import Path

from mspd_edge.digest import sha256_file

FORMAT = "mspd-edge-onnx"
MANIFEST = "manifest.json"
GRAPHS = ("backbone", "backbone_grad", "mcgs_step", "classifier")
REQUIRED = ("backbone", "backbone_grad", "mcgs_step")

# The graph signatures of docs/export.md, used when a manifest predates the "graphs" section.
# A string dimension is symbolic (dynamic).
DEFAULT_SIGNATURES = {
    "backbone": {"inputs": [{"name": "images", "dtype": "float32", "shape": ["n", "C", "H", "W"]}],
                 "outputs": [{"name": "logits", "dtype": "float32", "shape": ["n", "K"]}]},
    "classifier": {"inputs": [{"name": "images", "dtype": "float32", "shape": ["n", "C", "H", "W"]}],
                   "outputs": [{"name": "logits", "dtype": "float32", "shape": ["n", "K"]}]},
    "backbone_grad": {"inputs": [{"name": "images", "dtype": "float32", "shape": ["n", "C", "H", "W"]},
                                 {"name": "labels", "dtype": "int64", "shape": ["n"]}],
                      "outputs": [{"name": "grad", "dtype": "float32", "shape": ["n", "C", "H", "W"]}]},
    "mcgs_step": {"inputs": [{"name": "center", "dtype": "float32", "shape": ["batch", "C", "H", "W"]},
                             {"name": "labels", "dtype": "int64", "shape": ["batch"]},
                             {"name": "noise", "dtype": "float32",
                              "shape": ["n_samples", "batch", "C", "H", "W"]},
                             {"name": "eps", "dtype": "float32", "shape": []},
                             {"name": "direction", "dtype": "float32", "shape": []}],
                  "outputs": [{"name": "stepped", "dtype": "float32", "shape": ["batch", "C", "H", "W"]}]},
}


class BundleError(ValueError):
    """A folder is not a usable export bundle (one line saying why)."""


@dataclass(frozen=True)
class ModelMeta:
    """What the CLI and the reports need to know of a model in a bundle (like ``ModelInfo``)."""

    name: str
    classes: tuple
    input_size: tuple
    eps: float


class Bundle:
    """A checked export bundle. ``verify``: compare each graph with its manifest sha256 on first use."""

    def __init__(self, root, verify=True):
        self.root = Path(root)
        self.verify = verify
        path = self.root / MANIFEST
        try:
            manifest = json.loads(path.read_text())
        except FileNotFoundError:
            raise BundleError(f"{path}: no manifest (not an export bundle; make one with "
                              "`mspd-edge export`)") from None
        except (OSError, json.JSONDecodeError) as exc:
            raise BundleError(f"{path}: unreadable manifest ({exc})") from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise BundleError(f"{path}: not an mspd-edge ONNX bundle manifest")
        missing = [key for key in REQUIRED + ("input_size", "eps") if key not in manifest]
        if missing:
            raise BundleError(f"{path}: missing keys {missing}")
        self.manifest = manifest
        self._checked = set()

    def __repr__(self):
        return f"Bundle({str(self.root)!r})"

    @property
    def input_size(self):
        return tuple(int(d) for d in self.manifest["input_size"])

    @property
    def eps(self):
        return float(self.manifest["eps"])

    @property
    def num_classes(self):
        classes = self.manifest.get("classes")
        return int(self.manifest.get("num_classes") or (len(classes) if classes else 0))

    @property
    def classes(self):
        """Class names; the class indices as strings when the manifest has none."""
        classes = self.manifest.get("classes")
        return tuple(classes) if classes else tuple(str(i) for i in range(self.num_classes))

    @property
    def precision(self):
        """The precision of the graphs' floating-point tensors (manifest ``precision``, default fp32)."""
        return str(self.manifest.get("precision", "fp32"))

    def has(self, graph):
        return graph in self.manifest

    def sha256(self, graph):
        """The manifest's sha256 of ``graph`` (None when the manifest records none)."""
        return self.manifest.get("sha256", {}).get(self.manifest[graph])

    def path(self, graph):
        """The path of ``graph``'s ONNX file, integrity-checked on first use."""
        if graph not in GRAPHS:
            raise ValueError(f"unknown graph {graph!r}; graphs are {GRAPHS}")
        if graph not in self.manifest:
            hint = " (export one with --classifier)" if graph == "classifier" else ""
            raise BundleError(f"{self.root}: the bundle has no {graph} graph{hint}")
        file = self.root / self.manifest[graph]
        if graph not in self._checked:
            if not file.is_file():
                raise BundleError(f"{file}: missing (listed in {MANIFEST})")
            want = self.sha256(graph)
            if self.verify and want and sha256_file(file) != want:
                raise BundleError(f"{file}: sha256 does not match {MANIFEST} (the file changed "
                                  "after export; export again)")
            self._checked.add(graph)
        return file

    def signature(self, graph):
        """``{"inputs": [...], "outputs": [...]}`` with name, dtype and shape per tensor."""
        recorded = self.manifest.get("graphs", {}).get(graph, {})
        if "inputs" in recorded and "outputs" in recorded:
            return {"inputs": recorded["inputs"], "outputs": recorded["outputs"]}
        return DEFAULT_SIGNATURES[graph]

    def meta(self, graph="backbone"):
        """:class:`ModelMeta` of the backbone (``"backbone"``) or the label classifier."""
        if graph == "classifier":
            if not self.has("classifier"):
                return None
            name = self.manifest.get("classifier_name") or "classifier"
        else:
            name = self.manifest.get("name") or "backbone"
        return ModelMeta(name, self.classes, self.input_size, self.eps)


def load_bundle(root, verify=True):
    """A :class:`Bundle` (passed through when ``root`` already is one)."""
    return root if isinstance(root, Bundle) else Bundle(root, verify=verify)
