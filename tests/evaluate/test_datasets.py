"""Labelled evaluation sets: CIFAR npz, class-folder trees and file,label CSVs."""
from pathlib import Path

import cv2
import numpy as np
import pytest

from mspd_edge.evaluate.datasets import DatasetError, load_labelled

CIFAR10_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "cifar10"
CLASSES = ("airplane", "automobile", "bird", "cat")


def _write(path, shape, value=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.full(shape, value, np.uint8))
    return path


@pytest.fixture
def tree(tmp_path):
    """Class folders ``Cat`` (a gray and a BGRA image) and ``bird`` (one 5x7 image)."""
    root = tmp_path / "tree"
    _write(root / "Cat" / "b.png", (4, 6), 9)
    _write(root / "Cat" / "a.png", (4, 6, 4), 7)
    _write(root / "bird" / "c.jpg", (5, 7, 3), 200)
    (root / "bird" / "notes.txt").write_text("not an image")
    return root


def test_npz_with_limit():
    if not (CIFAR10_DIR / "test.npz").is_file():
        pytest.skip(f"CIFAR-10 data not found in {CIFAR10_DIR}")
    data = load_labelled(CIFAR10_DIR / "test.npz", limit=3)
    assert len(data.images) == 3 and data.images[0].shape == (32, 32, 3)
    assert data.images[0].dtype == np.uint8 and data.labels.dtype == np.int64
    assert data.names == ["test.npz#0", "test.npz#1", "test.npz#2"] and len(data.classes) == 10
    upper = load_labelled(CIFAR10_DIR / "test.npz", limit=3, classes=[c.upper() for c in data.classes])
    assert upper.labels.tolist() == data.labels.tolist() and upper.classes[0] == data.classes[0].upper()


def test_class_folders(tree):
    data = load_labelled(tree, classes=CLASSES)
    assert data.names == ["Cat/a.png", "Cat/b.png", "bird/c.jpg"]
    assert data.labels.tolist() == [3, 3, 2] and data.classes == list(CLASSES)
    assert [im.shape for im in data.images] == [(4, 6, 3), (4, 6, 3), (5, 7, 3)]
    assert (data.images[0] == 7).all() and (data.images[1] == 9).all()
    own = load_labelled(tree, limit=2)
    assert own.classes == ["Cat", "bird"] and own.labels.tolist() == [0, 0] and len(own.images) == 2


def test_csv(tree, tmp_path):
    csv = tmp_path / "labels.csv"
    csv.write_text(f"file,label\ntree/bird/c.jpg,BIRD\n{tree / 'Cat' / 'b.png'},1\n")
    data = load_labelled(csv, classes=CLASSES)
    assert data.names == ["tree/Cat/b.png", "tree/bird/c.jpg"] and data.labels.tolist() == [1, 2]
    assert data.images[0].shape == (4, 6, 3) and data.classes == list(CLASSES)
    assert load_labelled(csv, limit=1, classes=CLASSES).names == ["tree/Cat/b.png"]


def test_errors_name_the_file(tree, tmp_path):
    with pytest.raises(DatasetError, match=r"Cat: unknown class .*'Cat' is not a class"):
        load_labelled(tree, classes=("airplane", "bird"))
    (tree / "bird" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DatasetError, match=r"broken\.png: unreadable image"):
        load_labelled(tree, classes=CLASSES)
    csv = tmp_path / "labels.csv"
    csv.write_text("name,class\na.png,cat\n")
    with pytest.raises(DatasetError, match=r"labels\.csv: needs a header with the columns file,label"):
        load_labelled(csv, classes=CLASSES)
    csv.write_text("file,label\nmissing.png,cat\n")
    with pytest.raises(DatasetError, match=r"missing\.png: unreadable image"):
        load_labelled(csv, classes=CLASSES)
    (tmp_path / "empty" / "cat").mkdir(parents=True)
    with pytest.raises(DatasetError, match=r"empty: empty set"):
        load_labelled(tmp_path / "empty")
    with pytest.raises(DatasetError, match=r"nowhere: no such file"):
        load_labelled(tmp_path / "nowhere")
