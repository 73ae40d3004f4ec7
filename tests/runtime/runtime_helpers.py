"""Helpers of the runtime tests (import as ``runtime_helpers``)."""
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]


def model_input(images):
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2), np.float32) / np.float32(255)
