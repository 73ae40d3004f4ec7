"""Train (resumably) and ship the embedded default models listed in mspd_edge.zoo.embedded.

    python scripts/train_embedded.py [NAME ...] [--data ../shared/data/cifar10]

Per model: trains into runs/<name>/ (resumes if interrupted), then writes the fp16 weights
and a manifest (architecture, recipe, seed, time, machine, data hash, accuracies) into
mspd_edge/weights/. Accuracies on the full test split come from scripts/evaluate_embedded.py.
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


def ship(name, spec, data):
    cfg = TrainConfig(arch=spec["arch"], arch_kwargs=spec["arch_kwargs"], data=str(data),
                      out=f"runs/{name}", **spec["train"])
    report = train(cfg, log=lambda s: print(f"[{name}] {s}", flush=True))
    state = torch.load(Path(cfg.out) / "best.pt", weights_only=True)
    WEIGHTS.mkdir(parents=True, exist_ok=True)
    weights = WEIGHTS / f"{name}.pt"
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
    (WEIGHTS / f"{name}.json").write_text(json.dumps(manifest, indent=2) + "\n")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=list(EMBEDDED))
    parser.add_argument("--data", default="../shared/data/cifar10")
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    for name in args.names:
        ship(name, EMBEDDED[name], args.data)


if __name__ == "__main__":
    sys.exit(main())
