"""Protect a fixed image set with several backends and print the sha256 of every output.

    python scripts/protect_digest.py OUT [--data ../shared/data/cifar10] [--cifar 64]

Inputs (written to OUT/inputs): the first ``--cifar`` CIFAR-10 test images as PNG and two photos
(skimage.data astronaut as PNG, coffee as JPEG). Each configuration (torch fp32, torch at its
default precision, ort) protects them with ``--seed 0`` into OUT/<config>; OUT/sha256.txt lists
``<config>/<file> <sha256>``. Run it before and after a refactor and compare the two lists:
a change that keeps behaviour keeps every line.
"""
import argparse
import hashlib
import os
import subprocess
import sys
from pathlib import Path

from PIL import Image

CONFIGS = {
    "torch-fp32": ["--backend", "torch", "--precision", "fp32"],
    "torch-default": ["--backend", "torch"],
    "ort": ["--backend", "ort"],
}


def write_inputs(folder, data, count):
    """The CIFAR PNGs and the two photos in ``folder``."""
    import skimage.data

    from mspd_edge.data import load_npz

    folder.mkdir(parents=True, exist_ok=True)
    images, _, _ = load_npz(Path(data) / "test.npz", limit=count)
    for i, image in enumerate(images):
        Image.fromarray(image).save(folder / f"cifar_{i:03d}.png")
    Image.fromarray(skimage.data.astronaut()).save(folder / "astronaut.png")
    Image.fromarray(skimage.data.coffee()).save(folder / "coffee.jpg", quality=95)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--data", default="../shared/data/cifar10")
    parser.add_argument("--cifar", type=int, default=64)
    args = parser.parse_args()
    inputs = args.out / "inputs"
    write_inputs(inputs, args.data, args.cifar)
    command = [str(Path(sys.executable).with_name("mspd-edge")), "protect", "--seed", "0", "-q",
               "--overwrite"]
    env = dict(os.environ, MSPD_EDGE_CACHE=str(args.out / "cache"))
    lines = []
    for name, options in CONFIGS.items():
        outdir = args.out / name
        subprocess.run([*command, *options, "-o", str(outdir), str(inputs)], check=True, env=env)
        for file in sorted(outdir.iterdir()):
            lines.append(f"{name}/{file.name} {hashlib.sha256(file.read_bytes()).hexdigest()}")
    (args.out / "sha256.txt").write_text("\n".join(lines) + "\n")
    print(f"{len(lines)} outputs, digest list in {args.out / 'sha256.txt'}")


if __name__ == "__main__":
    main()
