"""Accuracy of the embedded models on the full CIFAR-10 test split: clean, PGD-10, PGD-20.

    python scripts/evaluate_embedded.py [NAME ...] [--data ../shared/data/cifar10] [--images 10000]

PGD: L-inf 8/255, step 2/255, random start (the label classifier: clean only; a smoothing base
classifier: clean and on one Gaussian-noisy copy at its manifest's sigma, seed 0). Writes the
numbers into each manifest (mspd_edge/weights/<name>.json, key "test") and the table to
docs/models.md (its sections after the table, from the first "## " heading on, are kept).
"""
import argparse
import json
import time
from pathlib import Path

import torch

from mspd_edge.data import load_npz
from mspd_edge.train.evaluate import accuracy
from mspd_edge.zoo import load_model

WEIGHTS = Path(__file__).resolve().parents[1] / "mspd_edge" / "weights"
TABLE = Path(__file__).resolve().parents[1] / "docs" / "models.md"
ATTACKS = (("clean", 0), ("pgd10", 10), ("pgd20", 20))
CLEAN_ONLY_ROLES = ("classifier",)   # picks labels only: trained for clean accuracy, never attacked
NOISE_SEED = 0


def evaluate(name, images, labels, log):
    model = load_model(name)
    manifest_path = WEIGHTS / f"{name}.json"
    manifest = json.loads(manifest_path.read_text())
    row = {"images": len(labels)}
    for key, options in _checks(manifest):
        t0 = time.time()
        row[key] = accuracy(model, images, labels, **options)
        log(f"{name}: {key} {row[key]:.4f} ({time.time() - t0:.0f} s)")
    manifest["test"] = row
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def _checks(manifest):
    """``(key, accuracy options)`` of the checks for the manifest's role."""
    if manifest["role"] in CLEAN_ONLY_ROLES:
        return [("clean", {})]
    if manifest.get("smoothing_sigma"):
        return [("clean", {}), ("noisy", {"noise_sigma": manifest["smoothing_sigma"], "seed": NOISE_SEED})]
    return [(key, {"eps": manifest["eps"], "steps": steps}) for key, steps in ATTACKS]


def _percent(value):
    return "–" if value is None else f"{100 * value:.2f}"


def _noisy(manifest):
    noisy = manifest["test"].get("noisy")
    return "–" if noisy is None else f"{100 * noisy:.2f} (sigma {manifest['smoothing_sigma']})"


def write_table(manifests):
    lines = ["| model | role | architecture | params | recipe | epochs | train time | clean | PGD-10 | PGD-20 | noisy |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for m in manifests:
        t = m["test"]
        params = sum(v.numel() for v in load_model(m["name"]).state_dict().values())
        lines.append(f"| {m['name']} | {m['role']} | {m['arch']} {m['arch_kwargs'].get('base_width', '')} | "
                     f"{params / 1e6:.2f}M | {m['recipe']['recipe']} | {m['best_epoch']}/{m['recipe']['epochs']} | "
                     f"{m['train_seconds'] / 60:.0f} min | {100 * t['clean']:.2f} | {_percent(t.get('pgd10'))} | "
                     f"{_percent(t.get('pgd20'))} | {_noisy(m)} |")
    n = manifests[0]["test"]["images"]
    header = (f"# Embedded models\n\nCIFAR-10 test split, first {n} images; PGD L-inf 8/255, step 2/255, "
              "random start; noisy: one Gaussian-noisy copy of each image at the smoothing base "
              "classifier's sigma (scripts/evaluate_embedded.py).\n\n")
    TABLE.parent.mkdir(exist_ok=True)
    kept = TABLE.read_text().partition("\n## ") if TABLE.is_file() else ("", "", "")
    TABLE.write_text(header + "\n".join(lines) + "\n" + (kept[1] + kept[2] if kept[1] else ""))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*")
    parser.add_argument("--data", default="../shared/data/cifar10")
    parser.add_argument("--images", type=int, default=10000)
    args = parser.parse_args(argv)
    names = args.names or sorted(p.stem for p in WEIGHTS.glob("*.json"))
    images, labels, _ = load_npz(Path(args.data) / "test.npz", limit=args.images)
    images, labels = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(labels)
    for name in names:
        evaluate(name, images, labels, lambda s: print(s, flush=True))
    write_table([json.loads((WEIGHTS / f"{n}.json").read_text()) for n in sorted(p.stem for p in WEIGHTS.glob("*.json"))
                 if "test" in json.loads((WEIGHTS / f"{n}.json").read_text())])


if __name__ == "__main__":
    main()
