"""Verify published copies against their originals: pairing, recomputation, figures, summary.

The protected image is recomputed from the original and the protection settings (a result is
a function of the image and the settings alone: ``mspd_edge.noise``), never read from a file;
each published copy (and each ``--simulate`` scenario applied to the recomputed protection)
is compared with it (:mod:`.measure`) and, with targets, attacked (:mod:`.robust`).
"""
import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from .. import defaults
from ..imaging import split, to_model_input
from ..io import ImageError, discover, read_image
from ..labels import LabelError
from ..pipeline import protect_batch
from .measure import VERDICTS, compare, same_frame
from .robust import robust_flags
from .steps import apply_scenario

# protect --report settings -> verify options (eps: [0, 1] in the report, 1/255 units as options)
REPORT_KEYS = ("backend", "backbone", "classifier", "device", "provider", "precision", "model_dir",
               "n_samples", "lr", "epochs", "seed", "labels")


@dataclass(frozen=True)
class Pair:
    """An original and its published copies: ``(source, path)``, ``source`` the PUBLISHED
    argument it was found through (a file or a folder); none: only ``--simulate`` scenarios."""

    original: Path
    copies: tuple = ()


@dataclass
class Verification:
    """Per published copy an entry, per unusable input an error; :meth:`report` sums them up."""

    images: list = field(default_factory=list)
    errors: list = field(default_factory=list)
    robust: dict = field(default_factory=dict)   # version -> target -> [bool] over originals

    def fail(self, original, published, why, log):
        self.errors.append({"original": _str(original), "published": _str(published), "error": why})
        log(f"error: {published if original is None else original}: {why}")

    def report(self, **settings):
        """The JSON-ready report: settings, entries, errors and the per-step summary."""
        steps = {}
        for entry in self.images:
            steps.setdefault(entry["step"] or entry["source"], []).append(entry)
        return {"settings": settings, "all_kept": bool(self.images) and not self.errors
                and all(e["verdict"] == "kept" for e in self.images),
                "verdicts": _count(self.images), "steps": {k: _step_summary(v) for k, v in steps.items()},
                "robust_accuracy": {version: _accuracy(flags) for version, flags in self.robust.items()},
                "images": self.images, "errors": self.errors}


def read_settings(path):
    """The protection settings of a ``mspd-edge protect --report`` file, as verify's options.

    Raises ValueError for a file that is not such a report (or is a revert report).
    """
    try:
        settings = json.loads(Path(path).read_text())["settings"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not a protect report ({exc})") from None
    if settings.get("command") != "protect":
        raise ValueError(f"{path}: a {settings.get('command')!r} report, not a protect one")
    found = {key: settings[key] for key in REPORT_KEYS if key in settings}
    if settings.get("eps") is not None:
        found["eps"] = settings["eps"] * 255
    return found


def pair_inputs(original, published=(), recursive=False, log=print):
    """``(pairs, problems)`` for a file and files, or a folder and folders (PUBLISHED arguments).

    Folders: each original ``ORIGINALS/sub/name.ext`` pairs with ``PUBLISHED/sub/name.*`` of
    every PUBLISHED folder (any image suffix). ``problems``: ``(original, published, why)`` for
    an original without a copy, one with several, and a copy without an original. Raises
    ValueError when files and folders are mixed, or no original is found.
    """
    original, published = Path(original), [Path(p) for p in published]
    if not original.exists():
        raise ValueError(f"{original}: no such file or directory")
    for path in published:
        if path.is_dir() != original.is_dir():
            raise ValueError(f"{original} is a {_kind(original)} and {path} a {_kind(path)}: give files "
                             "with a file, folders with a folder")
    if not original.is_dir():
        missing = [p for p in published if not p.exists()]
        return ([Pair(original, tuple((str(p), p) for p in published if p.exists()))],
                [(original, p, f"published copy {p}: no such file") for p in missing])
    sources, _ = discover([original], recursive, on_skip=lambda path, why: log(f"skipped: {path}: {why}"))
    if not sources:
        raise ValueError(f"{original}: no images in this folder" + ("" if recursive else " (subfolders need -r)"))
    copies, problems = {source.path: [] for source in sources}, []
    for folder in published:
        found, extra = _match(sources, folder, recursive)
        problems += [(None, path, f"no original of this name in {original}") for path in extra]
        for source in sources:
            paths = found.get(source.path, [])
            where = folder / source.relative.with_suffix(".*")
            if len(paths) == 1:
                copies[source.path].append((str(folder), paths[0]))
            else:
                problems.append((source.path, where, f"no published copy ({where})" if not paths else
                                 "several published copies: " + ", ".join(p.name for p in paths)))
    return [Pair(path, tuple(found)) for path, found in copies.items()], problems


def _kind(path):
    return "folder" if path.is_dir() else "file" if path.exists() else "missing path"


def _match(sources, folder, recursive):
    """``({original: [copies]}, copies without an original)``: same relative path and stem."""
    by_key = {}
    for copy in discover([folder], recursive)[0]:
        by_key.setdefault(copy.relative.with_suffix(""), []).append(copy.path)
    found = {source.path: by_key.pop(source.relative.with_suffix(""), []) for source in sources}
    return found, [path for paths in by_key.values() for path in paths]


def verify_pairs(pairs, backend, settings, *, scenarios=(), targets=None, labels=None,
                 max_pixels=defaults.MAX_PIXELS, log=print, problems=()):
    """Verify ``pairs`` (:class:`Pair`) against the protection ``backend`` and resolved
    ``settings`` would give; a :class:`Verification`.

    ``scenarios``: ``--simulate`` names (:mod:`.steps`); ``targets``: ``{name: torch model}``
    for the robust accuracy (None: skipped); ``labels``: ``path -> class`` for label mode gt.
    A bad pair is one error (``log``-ged line) and the others go on.
    """
    result = Verification()
    for original, published, why in problems:
        result.fail(original, published, why, log)
    pairs = [pair for pair in pairs if pair.copies or scenarios]
    for start in range(0, len(pairs), settings.batch_size):
        loaded = [item for item in (_load(pair, backend.input_size, max_pixels, scenarios, labels, result, log)
                                    for pair in pairs[start:start + settings.batch_size]) if item]
        if loaded:
            _verify_group(loaded, backend, settings, scenarios, targets, labels is not None, result)
    return result


def _load(pair, input_size, max_pixels, scenarios, labels, result, log):
    """``(pair, original pixels, [(source, path, pixels)], label)``, or None after logging why not."""
    try:
        original = read_image(pair.original, max_pixels).pixels
        if split(original)[0].shape[2] not in (1, input_size[0]):
            raise ImageError(f"{split(original)[0].shape[2]} colour channels, the model takes {input_size[0]}")
        label = None if labels is None else labels(pair.original)
    except (ImageError, LabelError) as exc:
        return result.fail(pair.original, None, str(exc), log)
    copies = []
    for source, path in pair.copies:
        try:
            copies.append((source, path, read_image(path, max_pixels).pixels))
        except ImageError as exc:
            result.fail(pair.original, path, f"published copy {path}: {exc}", log)
    if not copies and not scenarios:
        return None
    return pair, original, copies, label


def _verify_group(loaded, backend, settings, scenarios, targets, given_labels, result):
    given = [label for *_, label in loaded] if given_labels else None
    protected = protect_batch([original for _, original, _, _ in loaded], backend, settings, given)
    attack = {"original": [], "protected": [], "published": []}
    for (pair, original, copies, _), (pixels, label) in zip(loaded, protected):
        copies = [(source, str(path), None, copy) for source, path, copy in copies] + \
                 [(None, None, name, apply_scenario(pixels, name)) for name in scenarios]
        for source, name, step, published in copies:
            figures = compare(original, pixels, published, backend.input_size)
            height, width = original.shape[:2]
            entry = {"original": str(pair.original), "published": name, "source": source, "step": step,
                     **figures.figures(),
                     "size": [width, height], "published_size": [published.shape[1], published.shape[0]],
                     "label": label, "robust": None}
            result.images.append(entry)
            attack["published"].append((entry, original, published, label))
        attack["original"].append((None, original, original, label))
        attack["protected"].append((None, original, pixels, label))
    if targets:
        _attack(attack, targets, settings.eps, backend.input_size, result)


def _attack(attack, targets, eps, input_size, result):
    """Robust flags per target of the originals, the protected images and every comparable copy."""
    for version, items in attack.items():
        items = [item for item in items if item[0] is None or item[0]["verdict"] != "not comparable"]
        if not items:
            continue
        x = [to_model_input(same_frame(copy, original)[0], input_size)[0] for _, original, copy, _ in items]
        flags = robust_flags(targets, x, [label for *_, label in items], eps)
        for k, (entry, *_rest) in enumerate(items):
            if entry is None:
                for name in targets:
                    result.robust.setdefault(version, {}).setdefault(name, []).append(bool(flags[name][k]))
            else:
                entry["robust"] = {name: bool(flags[name][k]) for name in targets}


def _str(path):
    return None if path is None else str(path)


def _count(entries):
    return {verdict: sum(e["verdict"] == verdict for e in entries) for verdict in VERDICTS}


def _stats(values):
    values = [v for v in values if v is not None]
    return {"mean": statistics.fmean(values), "median": statistics.median(values)} if values else None


def _accuracy(flags):
    return {name: sum(values) / len(values) for name, values in flags.items() if values}


def _step_summary(entries):
    robust = {}
    for entry in entries:
        for name, flag in (entry["robust"] or {}).items():
            robust.setdefault(name, []).append(flag)
    return {"count": len(entries), "verdicts": _count(entries),
            **{key: _stats(e[key] for e in entries) for key in ("kept_cosine", "kept_energy", "kept_gain")},
            "robust_accuracy": _accuracy(robust)}
