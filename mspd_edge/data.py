"""Image sets: the CIFAR-10 npz format (concatenated JPEG bytes, labelled) and image files."""
from pathlib import Path

import cv2
import numpy as np

from .io import discover, read_image


def load_npz(path, limit=None, start=0):
    """Decode a CIFAR-style npz into ``(images uint8 [n,H,W,3] RGB, labels int64 [n], classes)``.

    ``start``/``limit`` select images ``start .. start+limit`` (the file order is shuffled,
    so any slice is class-mixed).
    """
    path = Path(path)
    with np.load(path, allow_pickle=False) as z:
        jpeg, offsets, y = z["jpeg"], z["offsets"], z["y"]
        classes = [str(c) for c in z["classes"]] if "classes" in z else None
    stop = len(y) if limit is None else min(len(y), start + limit)
    images = []
    for i in range(start, stop):
        bgr = cv2.imdecode(jpeg[offsets[i]:offsets[i + 1]], cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError(f"{path}: image {i} does not decode")
        images.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    return np.stack(images), y[start:stop].astype(np.int64), classes


def load_images(source, limit=None):
    """uint8 images from a CIFAR-style ``.npz`` (:func:`load_npz`) or files/folders/globs."""
    path = Path(str(source))
    if path.suffix == ".npz":
        return list(load_npz(path, limit=limit)[0])
    sources, _ = discover([str(source)])
    sources = sources[:limit] if limit else sources
    return [read_image(s.path).pixels for s in sources]
