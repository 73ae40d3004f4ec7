"""Labelled evaluation sets: a CIFAR-style ``.npz``, a folder of class sub-folders, or a ``file,label`` CSV.

Every image must decode (the evaluation needs all of them); images come back as uint8 RGB
(gray is replicated to three channels, alpha is dropped) and may differ in size.
"""
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data import load_npz
from ..imaging import split
from ..io import ImageError, discover, read_image
from ..labels import CsvLabels, LabelError, class_index

RGB_CHANNELS = 3


class DatasetError(ValueError):
    """A data set that cannot be evaluated; the one-line message names the file and the reason."""


@dataclass
class LabelledSet:
    """Images (uint8 RGB ``[H, W, 3]``, sizes may differ), their labels and identifiers."""

    images: list
    labels: np.ndarray          # int64 [n]
    names: list                 # one identifier per image ("test.npz#17", "cat/a.png")
    classes: list | None


def load_labelled(path, limit=None, classes=None):
    """Load the labelled set at ``path``: the first ``limit`` images (sorted paths) or all of them.

    ``classes`` (e.g. the model's class names) gives the label indices, class names matching
    case-insensitively; without it a folder's sorted sub-folder names define them. Raises
    :class:`DatasetError`.
    """
    path = Path(path)
    if limit is not None and limit < 1:
        raise DatasetError(f"{path}: empty set (limit {limit})")
    if path.is_dir():
        return _folder(path, limit, classes)
    if not path.is_file():
        raise DatasetError(f"{path}: no such file or folder")
    if path.suffix.lower() == ".npz":
        return _npz(path, limit, classes)
    if path.suffix.lower() == ".csv":
        return _csv(path, limit, classes)
    raise DatasetError(f"{path}: not a data set (expected a .npz file, a .csv file or a folder)")


def _npz(path, limit, classes):
    try:
        images, labels, own_classes = load_npz(path, limit)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise DatasetError(f"{path}: not a readable CIFAR-style npz ({exc})") from None
    if classes is not None:
        if own_classes is not None:   # re-index to the caller's classes
            labels = np.array([_index(own_classes[y], classes, path) for y in labels], np.int64)
        own_classes = list(classes)
    names = [f"{path.name}#{i}" for i in range(len(labels))]
    return LabelledSet(list(images), labels, names, own_classes)


def _folder(root, limit, classes):
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    named = classes is not None
    classes = list(classes) if named else [folder.name for folder in folders]
    items = []
    for position, folder in enumerate(folders):
        sources, _ = discover([folder], recursive=True)
        if sources:
            label = _index(folder.name, classes, folder) if named else position
            items += [(source.path, label) for source in sources]
    items = items[:limit]
    if not items:
        raise DatasetError(f"{root}: empty set (no images in class sub-folders)")
    names = [path.relative_to(root).as_posix() for path, _ in items]
    return _decoded(items, names, classes)


def _csv(path, limit, classes):
    try:
        rows = CsvLabels(path, classes).labels
    except LabelError as exc:
        raise DatasetError(str(exc)) from None
    items = sorted(rows.items())[:limit]
    if not items:
        raise DatasetError(f"{path}: empty set (no rows)")
    root = path.parent.resolve()
    names = [file.relative_to(root).as_posix() if file.is_relative_to(root) else str(file)
             for file, _ in items]
    return _decoded(items, names, None if classes is None else list(classes))


def _index(name, classes, where):
    try:
        return class_index(name, classes)
    except LabelError as exc:
        raise DatasetError(f"{where}: unknown class ({exc})") from None


def _decoded(items, names, classes):
    images = [_rgb(path) for path, _ in items]
    labels = np.array([label for _, label in items], np.int64)
    return LabelledSet(images, labels, names, classes)


def _rgb(path):
    try:
        pixels = read_image(path).pixels
    except ImageError as exc:
        raise DatasetError(f"{path}: unreadable image ({exc})") from None
    color, _, gray = split(pixels)
    return np.ascontiguousarray(np.repeat(color, RGB_CHANNELS, axis=2) if gray else color)
