"""What a label classifier's test-time augmentation buys and costs: accuracy on the full test
split and protect ms/image of the default backbone with the classifier at each TTA level.

    python benchmarks/classifier_tta.py [--classifiers cifar10-classifier,cifar10-classifier-airbench]
                                        [--images 10000] [--speed-images 64] [--rounds 3] [--repeats 2]
                                        [--json benchmarks/results/classifier-tta.json]

TTA levels (CifarNet's ``flip_tta``/``translate_tta``): none, flip (the mirror pair), translate
(airbench's level 2: the mirror pairs at 0 and +-1 pixel, 6 views). Speed: `mspd-edge bench`
(ORT fp32, batch 1, 2 threads) of ``cifar10-backbone`` + each classifier at each level (a
manifest in a temporary folder over the same weights); the runs are interleaved over
``--repeats`` passes and the median kept, so drift over the run falls on every level alike.
Run it alone: nothing else heavy beside it.
"""
import argparse
import json
import platform
import shutil
import statistics
import tempfile
from pathlib import Path

import torch
from backbone_width_speed import bench

from mspd_edge.data import load_npz
from mspd_edge.train.evaluate import accuracy
from mspd_edge.zoo import load_model
from mspd_edge.zoo.locate import WEIGHTS_DIR

LEVELS = {"none": (False, False), "flip": (True, False), "translate": (True, True)}
BACKBONE = "cifar10-backbone"


def write_level(name, level, folder):
    """A manifest of shipped classifier ``name`` at TTA ``level`` (weights copied beside it)."""
    manifest = json.loads((WEIGHTS_DIR / f"{name}.json").read_text())
    flip, translate = LEVELS[level]
    manifest["arch_kwargs"] = {**manifest["arch_kwargs"], "flip_tta": flip, "translate_tta": translate}
    manifest["name"] = f"{name}-tta-{level}"
    path = folder / f"{manifest['name']}.json"
    path.write_text(json.dumps(manifest, indent=2))
    shutil.copyfile(WEIGHTS_DIR / f"{name}.pt", path.with_suffix(".pt"))
    return path


def accuracies(name, images, labels):
    """Full-split accuracy of classifier ``name`` at every TTA level."""
    model = load_model(name)
    found = {}
    for level, (flip, translate) in LEVELS.items():
        model.flip_tta, model.translate_tta = flip, translate
        found[level] = accuracy(model, images, labels)
        print(f"{name} TTA {level}: {100 * found[level]:.2f}%", flush=True)
    return found


def speeds(names, args, folder):
    """Median protect ms/image of the default backbone + each classifier at each level."""
    runs = [(name, level, write_level(name, level, folder)) for name in names for level in LEVELS]
    times = {(name, level): [] for name, level, _ in runs}
    options = argparse.Namespace(backends="ort@fp32", images=args.speed_images, rounds=args.rounds)
    for repeat in range(args.repeats):
        for i, (name, level, manifest) in enumerate(runs):
            records = bench(BACKBONE, str(manifest), options, folder, folder / f"bench-{repeat}-{i}.json")
            times[name, level].append(records[0]["ms_per_image"])
            print(f"{BACKBONE} + {name} TTA {level}: {records[0]['ms_per_image']:.1f} ms/image", flush=True)
    return {key: statistics.median(values) for key, values in times.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classifiers", default="cifar10-classifier,cifar10-classifier-airbench")
    parser.add_argument("--data", default="../shared/data/cifar10/test.npz")
    parser.add_argument("--images", type=int, default=10000)
    parser.add_argument("--speed-images", type=int, default=64, dest="speed_images")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    names = args.classifiers.split(",")
    images, labels, _ = load_npz(args.data, limit=args.images)
    images, labels = torch.from_numpy(images).permute(0, 3, 1, 2), torch.from_numpy(labels)
    rows = [{"classifier": name, "tta": level, "accuracy": acc}
            for name in names for level, acc in accuracies(name, images, labels).items()]
    with tempfile.TemporaryDirectory() as tmp:
        found = speeds(names, args, Path(tmp))
    for row in rows:
        row["protect_ms_per_image"] = found[row["classifier"], row["tta"]]
    if args.json:
        machine = f"{platform.machine()} {platform.processor()}, torch {torch.__version__}"
        Path(args.json).write_text(json.dumps({"machine": machine, "test_images": len(labels), "rows": rows},
                                              indent=2) + "\n")


if __name__ == "__main__":
    main()
