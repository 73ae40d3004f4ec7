"""The README's protection-by-precision table (gains: MSPD - no defence, mean over the targets) from ``benchmarks/evaluate_precision.sh``'s runs.

    python benchmarks/precision_table.py [benchmarks/results/precision-evaluate]
"""
import json
import sys
from pathlib import Path

ROOT = Path(sys.argv[1] if len(sys.argv) > 1 else "benchmarks/results/precision-evaluate")
ORDER = ("fp32", "bf16", "fp16", "int8")
ATTACK = "pgd-linf"


def _cells(run, targets, condition):
    return [f"{100 * run['results'][t][condition]['clean']:.1f} / "
            f"{100 * run['results'][t][condition]['robust'][ATTACK]:.1f}" for t in targets]


def _gain(run, targets, key):
    def value(t, c):
        entry = run["results"][t][c]
        return entry["clean"] if key == "clean" else entry["robust"][ATTACK]
    return 100 * sum(value(t, "mspd") - value(t, "none") for t in targets) / len(targets)


def main():
    runs = {p: json.loads((ROOT / p / "results.json").read_text()) for p in ORDER if (ROOT / p).is_dir()}
    targets = runs["fp32"]["config"]["targets"]
    names = [t.removeprefix("cifar10-target-") for t in targets]
    print("| defence | backend | " + " | ".join(f"{n} clean / robust" for n in names)
          + " | clean gain | robust gain | robust gain vs fp32 |")
    print("|---|---|" + "---|" * (len(targets) + 3))
    print("| no defence | | " + " | ".join(_cells(runs["fp32"], targets, "none")) + " | | | |")
    base = _gain(runs["fp32"], targets, "robust")
    for precision, run in runs.items():
        robust = _gain(run, targets, "robust")
        print(f"| MSPD {precision} | {run['config']['defence']['backend']} | "
              + " | ".join(_cells(run, targets, "mspd"))
              + f" | {_gain(run, targets, 'clean'):+.2f} | {robust:+.2f} | {robust - base:+.2f} |")


if __name__ == "__main__":
    main()
