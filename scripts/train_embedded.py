"""Train (resumably) and ship the embedded default models listed in mspd_edge.zoo.embedded.

    python scripts/train_embedded.py [NAME ...] [--data ../shared/data/cifar10] [--runs runs]
                                     [--weights mspd_edge/weights] [--device cpu|cuda]
                                     [--epochs N] [--test-images N] [--limit N]

Per model: trains into RUNS/<name>/ (resumes if interrupted), then writes the fp16 weights
and a manifest (architecture, recipe, seed, time, machine, data hash, accuracies) into WEIGHTS.
Accuracies on the full test split come from scripts/evaluate_embedded.py. ``--device``,
``--epochs``, ``--test-images`` and ``--limit`` override the model's recipe (a GPU run, a longer schedule,
the training check on the full split, a smoke run); the manifest records what ran.
"""
import argparse
import json
import platform
import sys
from pathlib import Path

import torch

from mspd_edge.digest import sha256_file
from mspd_edge.train import TrainConfig, train
from mspd_edge.zoo import save_weights
from mspd_edge.zoo.embedded import CIFAR10, EMBEDDED

WEIGHTS = Path(__file__).resolve().parents[1] / "mspd_edge" / "weights"


def machine():
    return f"{platform.machine()} {platform.processor() or ''} {torch.get_num_threads()} threads, torch {torch.__version__}".strip()


def ship(name, spec, data, runs=Path("runs"), weights_dir=WEIGHTS, **overrides):
    """Train ``spec`` (resumable, in ``runs/name``) and write its fp16 weights and manifest."""
    cfg = TrainConfig(arch=spec["arch"], arch_kwargs=spec["arch_kwargs"], data=str(data),
                      out=str(Path(runs) / name), **{**spec["train"], **overrides})
    report = train(cfg, log=lambda s: print(f"[{name}] {s}", flush=True))
    state = torch.load(Path(cfg.out) / "best.pt", weights_only=True)
    weights_dir.mkdir(parents=True, exist_ok=True)
    weights = weights_dir / f"{name}.pt"
    save_weights(state, weights)
    manifest = {
        "name": name, "role": spec["role"], "arch": spec["arch"], "arch_kwargs": spec["arch_kwargs"],
        **CIFAR10, "classes": report["classes"], "pair": spec.get("pair"),
        **{key: spec[key] for key in ("smoothing_sigma",) if key in spec},
        "recipe": report["config"], "best_epoch": report["best_epoch"],
        "train_seconds": round(report["train_seconds"]), "machine": machine(),
        "data_sha256": sha256_file(Path(data) / "train.npz"), "weights_sha256": sha256_file(weights),
        "training_check": {"test_images": report["test_images"], "clean": report["test_clean"],
                           **{k[len("test_"):]: v for k, v in report.items()
                              if k.startswith("test_") and k not in ("test_images", "test_clean")}},
        "history": report["history"],
    }
    (weights_dir / f"{name}.json").write_text(json.dumps(manifest, indent=2) + "\n")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=list(EMBEDDED))
    parser.add_argument("--data", default="../shared/data/cifar10")
    parser.add_argument("--runs", type=Path, default=Path("runs"), help="run folders (checkpoints)")
    parser.add_argument("--weights", type=Path, default=WEIGHTS, help="where weights and manifests go")
    parser.add_argument("--device", choices=("cpu", "cuda"), help="override the recipe's device")
    parser.add_argument("--epochs", type=int, help="override the recipe's epochs")
    parser.add_argument("--test-images", type=int, help="images of the training check (10000: the split)")
    parser.add_argument("--limit", type=int, help="train on the first LIMIT images (smoke runs)")
    args = parser.parse_args(argv)
    overrides = {k: v for k, v in (("device", args.device), ("epochs", args.epochs),
                                   ("test_images", args.test_images), ("limit", args.limit)) if v is not None}
    torch.set_num_threads(max(1, torch.get_num_threads()))
    for name in args.names:
        ship(name, EMBEDDED[name], args.data, args.runs, args.weights, **overrides)


if __name__ == "__main__":
    sys.exit(main())
