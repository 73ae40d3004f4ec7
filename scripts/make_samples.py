"""Write the bundled sample images (samples/) from the CIFAR-10 test split.

    python scripts/make_samples.py [--data ../shared/data/cifar10]

Eight 32x32 RGB test images as PNG, plus the same kinds of file a user has: a 128x96 JPEG
(not the model size: exercises the resize rule), a gray PNG and an RGBA PNG.
"""
import argparse
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from mspd_edge.data import load_npz

OUT = Path(__file__).resolve().parents[1] / "samples"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="../shared/data/cifar10")
    args = parser.parse_args()
    images, labels, classes = load_npz(Path(args.data) / "test.npz", limit=11)
    OUT.mkdir(exist_ok=True)
    for i in range(8):
        Image.fromarray(images[i]).save(OUT / f"cifar_{i:02d}_{classes[labels[i]]}.png")
    big = cv2.resize(images[8], (128, 96), interpolation=cv2.INTER_CUBIC)
    Image.fromarray(big).save(OUT / f"photo_128x96_{classes[labels[8]]}.jpg", quality=95)
    Image.fromarray(cv2.cvtColor(images[9], cv2.COLOR_RGB2GRAY)).save(OUT / f"gray_{classes[labels[9]]}.png")
    alpha = np.full((32, 32, 1), 255, np.uint8)
    alpha[:, :8] = 128
    Image.fromarray(np.concatenate([images[10], alpha], 2)).save(OUT / f"rgba_{classes[labels[10]]}.png")


if __name__ == "__main__":
    main()
