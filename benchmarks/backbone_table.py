"""The shipped backbones side by side: what each protection gives and costs (table and plot).

    python benchmarks/backbone_table.py --pairs BACKBONE[+CLASSIFIER],... \
        --evaluate DIR,... --speed benchmarks/results/default-speed.json \
        [--plot docs/backbone-gain.png]

Per pair (a shipped backbone whose manifest carries `scripts/evaluate_embedded.py`'s full-split
accuracies, and a label classifier: by default the backbone's pair): width, recipe, training
time and machine, clean / PGD-10 / PGD-20, protect ms/image of the pair (`backbone_width_speed.py
--pairs ... --json`: ONNX Runtime fp32, this machine's default, and torch fp32), and the mean
robust and clean gain (mspd - none) over the three robust targets from one `mspd-edge evaluate`
folder each (PGD-10 L-inf and L2). Prints a markdown table; ``--plot`` draws robust gain
against ms/image.
"""
import argparse
import json
from pathlib import Path

from mspd_edge.zoo.locate import WEIGHTS_DIR

TARGETS = ("cifar10-target-resnet18", "cifar10-target-preact", "cifar10-target-wrn")
ATTACKS = ("pgd-linf", "pgd-l2")
SPEED_BACKENDS = ("ort@fp32", "torch@fp32")


def mean_gains(folder):
    """``{attack: (robust gain, clean gain)}`` in points, averaged over TARGETS."""
    results = json.loads((Path(folder) / "results.json").read_text())["results"]
    gains = {}
    for attack in ATTACKS:
        robust = [results[t]["mspd"]["robust"][attack] - results[t]["none"]["robust"][attack] for t in TARGETS]
        clean = [results[t]["mspd"]["clean"] - results[t]["none"]["clean"] for t in TARGETS]
        gains[attack] = (100 * sum(robust) / len(TARGETS), 100 * sum(clean) / len(TARGETS))
    return gains


def ms_per_image(speed_rows, backbone, classifier):
    """``{backend@precision: ms/image}`` of the pair."""
    return {r["backend"]: r["ms_per_image"] for r in speed_rows
            if (r.get("backbone"), r.get("classifier")) == (backbone, classifier)}


def row(pair, folder, speed_rows):
    name, _, classifier = pair.partition("+")
    manifest = json.loads((WEIGHTS_DIR / f"{name}.json").read_text())
    test, recipe, classifier = manifest["test"], manifest["recipe"], classifier or manifest["pair"]
    return {"backbone": name, "width": manifest["arch_kwargs"]["base_width"], "recipe": recipe["recipe"],
            "epochs": recipe["epochs"], "precision": recipe.get("precision", "fp32"),
            "train_minutes": manifest["train_seconds"] / 60, "machine": manifest["machine"],
            "classifier": classifier, **{k: 100 * test[k] for k in ("clean", "pgd10", "pgd20")},
            "ms": ms_per_image(speed_rows, name, classifier), "gain": mean_gains(folder)}


def markdown(rows):
    head = ("| backbone (pair) | width | recipe | training | clean | PGD-10 | PGD-20 | ms/image ort fp32 "
            "(default) | ms/image torch fp32 | robust gain L-inf / L2 | clean gain |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        linf, l2 = r["gain"]["pgd-linf"], r["gain"]["pgd-l2"]
        lines.append(f"| `{r['backbone']}` (`{r['classifier']}`) | {r['width']} | {r['recipe']} | "
                     f"{r['epochs']} epochs {r['precision']}, {r['train_minutes']:.0f} min | {r['clean']:.2f} | "
                     f"{r['pgd10']:.2f} | {r['pgd20']:.2f} | "
                     + " | ".join(f"{r['ms'].get(b, float('nan')):.1f}" for b in SPEED_BACKENDS)
                     + f" | {linf[0]:+.1f} / {l2[0]:+.1f} | {linf[1]:+.1f} |")
    return "\n".join(lines)


def plot(rows, path):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4.5))
    axes = figure.add_subplot()
    for r in rows:
        x = r["ms"].get(SPEED_BACKENDS[0])
        axes.scatter([x], [r["gain"]["pgd-linf"][0]])
        axes.annotate(f"{r['backbone']}\n+ {r['classifier']}", (x, r["gain"]["pgd-linf"][0]),
                      textcoords="offset points", xytext=(5, 5), fontsize=7)
    axes.margins(x=0.35, y=0.25)
    axes.set_xlabel("protect ms/image (ONNX Runtime fp32, batch 1, 2 threads)")
    axes.set_ylabel("robust gain, PGD-10 L-inf (points)")
    axes.set_title("Mean over the three robust targets, 1,000 test images", fontsize=9)
    figure.tight_layout()
    FigureCanvasAgg(figure).print_png(path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", required=True, help="comma-separated BACKBONE[+CLASSIFIER]")
    parser.add_argument("--evaluate", required=True, help="one evaluate folder per pair, same order")
    parser.add_argument("--speed", required=True, help="backbone_width_speed.py --pairs ... --json output")
    parser.add_argument("--plot")
    args = parser.parse_args(argv)
    speed_rows = json.loads(Path(args.speed).read_text())["rows"]
    rows = [row(pair, folder, speed_rows)
            for pair, folder in zip(args.pairs.split(","), args.evaluate.split(","), strict=True)]
    print(markdown(rows))
    if args.plot:
        plot(rows, args.plot)


if __name__ == "__main__":
    main()
