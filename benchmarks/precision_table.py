"""The README's precision tables from the committed results.

1. Protection by precision (gains: MSPD - no defence, mean over the targets) from
   ``benchmarks/evaluate_precision.sh``'s runs;
2. the summary: speed against torch fp32 (``mspd-edge bench --rounds``), gradient agreement
   (``mspd-edge calibrate --report``) and robust gain, per backend and precision.

    python benchmarks/precision_table.py [benchmarks/results]
"""
import json
import sys
from pathlib import Path

RESULTS = Path(sys.argv[1] if len(sys.argv) > 1 else "benchmarks/results")
ROOT = RESULTS / "precision-evaluate"
BENCH = RESULTS / "precision-bench.json"
REPORT = RESULTS / "precision-report" / "precision.json"
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


def protection_table(runs):
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


def summary_table(runs):
    speed = {(r["backend"].split("@")[0], r["precision"], r["batch_size"]): r["ratio_vs_torch"]
             for r in json.loads(BENCH.read_text())["records"]}
    agreement = {(r["backend"], r["precision"]): r for r in json.loads(REPORT.read_text())["rows"]}
    targets = runs["fp32"]["config"]["targets"]
    base = _gain(runs["fp32"], targets, "robust")
    print("| backend@precision | vs torch fp32, batch 1 | batch 16 | gradient cosine | sign agreement "
          "| mean robust gain | vs fp32 |")
    print("|---|---|---|---|---|---|---|")
    for (backend, precision), row in agreement.items():
        run = runs.get(precision)
        run = run if run and run["config"]["defence"]["backend"] == backend else None
        robust = "" if run is None else f"{_gain(run, targets, 'robust'):+.1f}"
        delta = "" if run is None else f"{_gain(run, targets, 'robust') - base:+.1f}"
        ratios = [speed.get((backend, precision, b)) for b in (1, 16)]
        print(f"| {backend}@{precision} | " + " | ".join("" if r is None else f"{r:.2f}x" for r in ratios)
              + f" | {row['grad_cosine']:.6f} | {100 * row['sign_agreement']:.2f}% | {robust} | {delta} |")


def main():
    runs = {p: json.loads((ROOT / p / "results.json").read_text()) for p in ORDER if (ROOT / p).is_dir()}
    protection_table(runs)
    print()
    summary_table(runs)


if __name__ == "__main__":
    main()
