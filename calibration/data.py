"""The calibration image set: real images of the backbone's domain, never the evaluation images.

Default: the first :data:`COUNT` images of the
CIFAR-10 *training* split (``$MSPD_EDGE_CALIBRATION_DATA``, else
``../shared/data/cifar10/train.npz`` beside the repository); any CIFAR-style ``.npz``, folder
or glob of images can be given instead.
"""
import os
from pathlib import Path

DATA_ENV = "MSPD_EDGE_CALIBRATION_DATA"
COUNT = 16


class CalibrationDataError(ValueError):
    """No usable calibration images (one line saying why)."""


def default_source():
    """``$MSPD_EDGE_CALIBRATION_DATA``, else the CIFAR-10 training split beside the repo, or None."""
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV])
    candidate = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "cifar10" / "train.npz"
    return candidate if candidate.is_file() else None


def calibration_images(source=None, count=COUNT):
    """``(uint8 images, a name for the manifest)``: the first ``count`` images of ``source``."""
    from mspd_edge.io import ImageError
    from mspd_edge.data import load_images

    source = source or default_source()
    if source is None:
        raise CalibrationDataError(f"int8 calibration needs real images: pass --calibration-data "
                                   f"or set ${DATA_ENV} (a CIFAR-style .npz, folder or glob)")
    try:
        images = load_images(source, count)
    except (OSError, ValueError, ImageError) as exc:
        raise CalibrationDataError(f"{source}: {exc}") from None
    if not images:
        raise CalibrationDataError(f"{source}: no images")
    return images, f"{Path(str(source)).name}[:{len(images)}]"
