"""The export bundle contract (standard library only: no torch, no onnx).

A bundle is the folder ``mspd-edge export`` writes (docs/export.md): ``manifest.json`` plus
``backbone.onnx``, ``backbone_grad.onnx``, ``mcgs_step.onnx`` and, optionally,
``classifier.onnx`` (reduced-precision bundles name their gradient graphs
``<graph>.<precision>.onnx``). This module is the one statement of it: the format and its
version, the manifest's required keys, the graphs with their tensor names and signatures, and
the checks, which raise :class:`BundleError` with one line saying why. The exporter
(``mspd_edge.export``) writes what it says; ``mspd-edge check``, the runtime and calibration
read bundles through :class:`Bundle`.

A graph's sha256 is checked against the manifest the first time its path is asked for, so a
runtime never runs a graph that changed after export (and never hashes graphs it does not use);
:meth:`Bundle.verify_all` checks every graph at once (``check``).
"""
import json
from pathlib import Path

from .digest import sha256_file
from .zoo.info import ModelInfo

FORMAT = "mspd-edge-onnx"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
GRAPHS = ("backbone", "backbone_grad", "mcgs_step", "classifier")
REQUIRED = ("backbone", "backbone_grad", "mcgs_step")
REQUIRED_KEYS = ("format_version", *REQUIRED, "input_size", "eps")
FILES = {g: f"{g}.onnx" for g in GRAPHS}   # the fp32 graphs' file names

BATCH = "n"   # the symbolic batch dimension of the forward and gradient graphs
# Tensor names of the graphs (docs/export.md).
IMAGES, LABELS, LOGITS = "images", "labels", "logits"
GRAD, LOSS = "grad", "loss"
CENTER, NOISE, EPS, DIRECTION, STEPPED = "center", "noise", "eps", "direction", "stepped"
STEP_BATCH, STEP_SAMPLES = "batch", "n_samples"   # the mcgs_step graph's symbolic dimensions


def _tensor(name, dtype, *shape):
    return {"name": name, "dtype": dtype, "shape": list(shape)}


_IMAGE_BATCH = _tensor(IMAGES, "float32", BATCH, "C", "H", "W")
_LOGIT_BATCH = _tensor(LOGITS, "float32", BATCH, "K")
# The graph signatures of docs/export.md (a string dimension is symbolic), used when a manifest
# records none.
SIGNATURES = {
    "backbone": {"inputs": [_IMAGE_BATCH], "outputs": [_LOGIT_BATCH]},
    "classifier": {"inputs": [_IMAGE_BATCH], "outputs": [_LOGIT_BATCH]},
    "backbone_grad": {"inputs": [_IMAGE_BATCH, _tensor(LABELS, "int64", BATCH)],
                      "outputs": [_tensor(GRAD, "float32", BATCH, "C", "H", "W")]},
    "mcgs_step": {"inputs": [_tensor(CENTER, "float32", STEP_BATCH, "C", "H", "W"),
                             _tensor(LABELS, "int64", STEP_BATCH),
                             _tensor(NOISE, "float32", STEP_SAMPLES, STEP_BATCH, "C", "H", "W"),
                             _tensor(EPS, "float32"), _tensor(DIRECTION, "float32")],
                  "outputs": [_tensor(STEPPED, "float32", STEP_BATCH, "C", "H", "W")]},
}


class BundleError(ValueError):
    """A folder is not a usable export bundle (one line saying why)."""


def check_manifest(manifest, path):
    """``manifest`` (the parsed ``path``) when it follows the contract; :class:`BundleError` else."""
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BundleError(f"{path}: not an mspd-edge ONNX bundle manifest")
    missing = [key for key in REQUIRED_KEYS if key not in manifest]
    if missing:
        raise BundleError(f"{path}: missing keys {missing}")
    if manifest["format_version"] != FORMAT_VERSION:
        raise BundleError(f"{path}: format version {manifest['format_version']!r}, this mspd-edge "
                          f"reads version {FORMAT_VERSION} (export again)")
    size = manifest["input_size"]
    if not (isinstance(size, list) and len(size) == 3 and all(isinstance(d, int) and d > 0 for d in size)):
        raise BundleError(f"{path}: input_size must be [C, H, W], got {size!r}")
    if isinstance(manifest["eps"], bool) or not isinstance(manifest["eps"], (int, float)):
        raise BundleError(f"{path}: eps must be a number, got {manifest['eps']!r}")
    bad = [g for g in GRAPHS if g in manifest and not (isinstance(manifest[g], str) and manifest[g])]
    if bad:
        raise BundleError(f"{path}: graph entries must be file names: {bad}")
    return manifest


def read_manifest(root):
    """The checked manifest of the bundle in folder ``root`` (graph files not looked at)."""
    path = Path(root) / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise BundleError(f"{path}: no manifest (not an export bundle; make one with "
                          "`mspd-edge export`)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{path}: unreadable manifest ({exc})") from None
    return check_manifest(manifest, path)


def manifest_precision(manifest):
    """The precision of a manifest's graphs (its ``precision``; fp32 when it names none)."""
    return str(manifest.get("precision", "fp32"))


class Bundle:
    """A checked export bundle: its manifest read and checked, every listed graph file present.

    ``verify``: compare each graph with its manifest sha256 on first use.
    """

    def __init__(self, root, verify=True):
        self.root = Path(root)
        self.verify = verify
        self.manifest = read_manifest(self.root)
        for graph in self.graphs:
            file = self.root / self.manifest[graph]
            if not file.is_file():
                raise BundleError(f"{file}: missing (listed in {MANIFEST})")
        self._checked = set()

    def __repr__(self):
        return f"Bundle({str(self.root)!r})"

    @property
    def graphs(self):
        """The graphs the bundle holds, in :data:`GRAPHS` order."""
        return tuple(g for g in GRAPHS if g in self.manifest)

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
        """The precision of the graphs' floating-point tensors (:func:`manifest_precision`)."""
        return manifest_precision(self.manifest)

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

    def verify_all(self):
        """Check every graph against its sha256 now; the bundle."""
        for graph in self.graphs:
            self.path(graph)
        return self

    def signature(self, graph):
        """``{"inputs": [...], "outputs": [...]}`` with name, dtype and shape per tensor."""
        recorded = self.manifest.get("graphs", {}).get(graph, {})
        if "inputs" in recorded and "outputs" in recorded:
            return {"inputs": recorded["inputs"], "outputs": recorded["outputs"]}
        return SIGNATURES[graph]

    def meta(self, graph="backbone"):
        """The :class:`~mspd_edge.zoo.info.ModelInfo` of the backbone (``"backbone"``) or the
        label classifier (None without one)."""
        if graph == "classifier":
            if not self.has("classifier"):
                return None
            name = self.manifest.get("classifier_name") or "classifier"
        else:
            name = self.manifest.get("name") or "backbone"
        return ModelInfo(name=name, classes=self.classes, input_size=self.input_size, eps=self.eps,
                         dataset=self.manifest.get("dataset"), source=str(self.root))


def load_bundle(root, verify=True):
    """A :class:`Bundle` (passed through when ``root`` already is one)."""
    return root if isinstance(root, Bundle) else Bundle(root, verify=verify)
