"""The verify report as text: the per-copy table (stdout) and markdown (``--report x.md``)."""
COLUMNS = ("original", "published", "verdict", "cosine", "energy", "gain", "robust")


def _robust(entry):
    flags = entry["robust"]
    return "-" if not flags else f"{sum(flags.values())}/{len(flags)}"


def _number(value):
    return "-" if value is None else f"{value:.3f}"


def rows(report):
    """One tuple of :data:`COLUMNS` per published copy (``robust``: targets robust / targets)."""
    return [(e["original"], e["published"] or f"simulated {e['step']}",
             e["verdict"] + (f" ({e['reason']})" if e["reason"] else ""), _number(e["kept_cosine"]),
             _number(e["kept_energy"]), _number(e["kept_gain"]), _robust(e)) for e in report["images"]]


def text_table(report):
    """The table of :func:`rows` with aligned columns (no trailing newline)."""
    table = [COLUMNS] + rows(report)
    widths = [max(len(str(row[k])) for row in table) for k in range(len(COLUMNS) - 1)]
    return "\n".join("  ".join(f"{cell:<{w}}" for cell, w in zip(row, widths)) + "  " + row[-1]
                     for row in table)


def markdown(report):
    """The whole report as markdown: per-step summary, robust accuracy, per-copy table, errors."""
    lines = ["# mspd-edge verify", "", "| step | copies | kept | weakened | gone | not comparable | "
             "cosine mean / median | energy mean / median | robust accuracy |", "|---|---|---|---|---|---|---|---|---|"]
    for step, summary in report["steps"].items():
        verdicts = summary["verdicts"]
        stats = [("-" if summary[k] is None else f"{summary[k]['mean']:.3f} / {summary[k]['median']:.3f}")
                 for k in ("kept_cosine", "kept_energy")]
        robust = ", ".join(f"{name} {acc:.1%}" for name, acc in summary["robust_accuracy"].items()) or "-"
        lines.append(f"| {step} | {summary['count']} | {verdicts['kept']} | {verdicts['weakened']} | "
                     f"{verdicts['gone']} | {verdicts['not comparable']} | {stats[0]} | {stats[1]} | {robust} |")
    for version, accuracy in report["robust_accuracy"].items():
        lines.append(f"\nRobust accuracy (PGD-10) of the {version} images: "
                     + ", ".join(f"{name} {acc:.1%}" for name, acc in accuracy.items()))
    lines += ["", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows(report)]
    if report["errors"]:
        lines += ["", "Errors:", ""] + [f"- {e['original'] or e['published']}: {e['error']}" for e in report["errors"]]
    return "\n".join(lines) + "\n"
