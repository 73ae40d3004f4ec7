"""Render an evaluation result (schema ``mspd-edge.evaluate/1``) as markdown tables or a bar chart.

Conditions or targets missing from the result are skipped, so the partial result of an
interrupted run renders too.
"""
import io
import re
from pathlib import Path

from ..util import write_atomic

SCHEMA = "mspd-edge.evaluate/1"
PERCENT = 100
LEVELS = 255                      # L-inf is reported in 8-bit levels
MISSING = "–"
PLOT_CONDITIONS = ("none", "mspd", "reverted-white")
GROUP_WIDTH = 0.8                 # share of a target's slot taken by its bars
CLEAN_ALPHA = 0.35                # clean accuracy: a lighter bar behind the robust one
CLEAN_LINE = "black"              # ... topped by a line drawn over the bars
CLEAN_ZORDER = 3
FIGURE_SIZE = (8, 4.5)
DPI = 120
LABEL_ROTATION = 15
Y_TOP = 105                       # a little room above 100 % for the clean line

_TITLES = {"none": "no defence", "mspd": "MSPD",
           "reverted-white": "reverted (white-box)", "reverted-gray": "reverted (gray-box)",
           "mspd-gt": "MSPD, true labels"}
_JPEG = re.compile(r"^(.+)\+jpeg(\d+)$")
_SAMPLES = re.compile(r"^mspd-N(\d+)$")
_EPOCHS = re.compile(r"^mspd-([FB]+)$")


def condition_title(name):
    """A human-readable title for a condition: "mspd+jpeg50" -> "MSPD + JPEG q50"."""
    if match := _JPEG.match(name):
        return f"{condition_title(match[1])} + JPEG q{match[2]}"
    if match := _SAMPLES.match(name):
        return f"MSPD N={match[1]}"
    if match := _EPOCHS.match(name):
        return f"MSPD {match[1]}" + (" only" if len(match[1]) == 1 else "")
    return _TITLES.get(name, name)


def markdown_table(result):
    """Markdown: accuracy per attack (clean / robust, %), image quality and gradient cosine."""
    _check(result)
    results, config = result.get("results", {}), result.get("config", {})
    targets = [t for t in _ordered(config.get("targets"), results) if results.get(t)]
    conditions = _present(_conditions(result), [results[t] for t in targets])
    source = f"**{_image_count(result)} images** from `{config.get('data', '?')}`"
    defence = config.get("defence", {})
    if defence.get("backend"):
        source += f"; defence on {defence['backend']} in {defence.get('precision', 'fp32')}"
    lines = [f"{source}; cells: clean / robust accuracy in %."]
    for attack in _attacks(result):
        lines += ["", f"### {attack}{_params(config.get('attacks', {}).get(attack))}", ""]
        rows = [[t] + [_accuracy(results[t].get(c), attack) for c in conditions] for t in targets]
        lines += _table(["target"] + [condition_title(c) for c in conditions], rows)
    quality = result.get("quality", {})
    if quality:
        rows = [[condition_title(c), *_quality(quality[c])]
                for c in _ordered(_conditions(result), quality) if quality[c]]
        lines += ["", "### Image quality (versus the original)", ""]
        lines += _table(["condition", "L-inf (/255)", "L2", "SSIM", "PSNR (dB)", "label accuracy (%)"], rows)
    lines += _certified_lines(result)
    cosine = result.get("cosine", {})
    if cosine:
        rows = [[t, _number(cosine[t].get("mean"), ".3f"), _number(cosine[t].get("std"), ".3f")]
                for t in _ordered(config.get("targets"), cosine)]
        lines += ["", "### Input-gradient cosine, backbone vs target (original images)", ""]
        lines += _table(["target", "mean cosine", "std"], rows)
    return "\n".join(lines) + "\n"


def plot(result, path, attack=None, conditions=PLOT_CONDITIONS):
    """Write a PNG bar chart of accuracy per target under ``attack`` (default: the first) to ``path``.

    One bar per condition: robust accuracy, with the clean accuracy as a lighter bar behind it,
    topped by a line. Returns the path; raises ValueError when there is nothing to plot.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    _check(result)
    results = result.get("results", {})
    attack = attack or next(iter(_attacks(result)), None)
    targets = [t for t in _ordered(result.get("config", {}).get("targets"), results)
               if any(c in results[t] for c in conditions)]
    shown = _present(conditions, [results[t] for t in targets])
    if attack is None or not shown:
        raise ValueError("nothing to plot: no results for the requested conditions")
    figure = Figure(figsize=FIGURE_SIZE, dpi=DPI)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    width = GROUP_WIDTH / len(shown)
    for i, condition in enumerate(shown):
        where = [(x, results[t][condition]) for x, t in enumerate(targets) if condition in results[t]]
        xs = [x - GROUP_WIDTH / 2 + (i + 0.5) * width for x, _ in where]
        colour = f"C{i}"
        clean = [PERCENT * e["clean"] for _, e in where]
        axes.bar(xs, clean, width, color=colour, alpha=CLEAN_ALPHA)
        axes.hlines(clean, [x - width / 2 for x in xs], [x + width / 2 for x in xs],
                    colors=CLEAN_LINE, zorder=CLEAN_ZORDER)   # visible even above a taller robust bar
        robust = [(x, e["robust"][attack]) for x, (_, e) in zip(xs, where) if attack in e.get("robust", {})]
        axes.bar([x for x, _ in robust], [PERCENT * r for _, r in robust], width,
                 color=colour, label=condition_title(condition))
    handles, labels = axes.get_legend_handles_labels()
    handles.append(Patch(facecolor=CLEAN_LINE, edgecolor=CLEAN_LINE, alpha=CLEAN_ALPHA))
    labels.append("clean (lighter bar, line)")
    axes.legend(handles, labels, fontsize="small")
    axes.set_xticks(range(len(targets)), targets, rotation=LABEL_ROTATION, ha="right", fontsize="small")
    axes.set_ylim(0, Y_TOP)
    axes.set_ylabel("accuracy (%)")
    axes.set_xlabel("target model")
    axes.set_title(f"Robust accuracy under {attack} ({_image_count(result)} images)")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    write_atomic(path, buffer.getvalue())
    return Path(path)


def _certified_lines(result):
    """The certified-accuracy table: one row per smoothed target and condition."""
    certified = result.get("certified", {})
    entries = [(t, c, certified[t][c]) for t in _ordered(result.get("config", {}).get("targets"), certified)
               for c in _ordered(_conditions(result), certified[t])]
    if not entries:
        return []
    radii = list(dict.fromkeys(r for _, _, e in entries for r in e["accuracy"]))
    rows = [[t, f"{e['sigma']:g}", condition_title(c), *[_number(e["accuracy"].get(r), ".1f", PERCENT) for r in radii],
             _number(e["mean_radius"], ".3f"), f"{e['max_radius']:.3f}", f"{e['n0']} / {e['n']} / {e['alpha']:g}"]
            for t, c, e in entries]
    return ["", "### Certified accuracy (randomized smoothing, Cohen et al. 2019)", "",
            "Certified accuracy (%) of the smoothed classifier at L2 radius r, and its mean certified radius "
            "(0 where wrong or abstaining); max radius: the largest radius n votes can certify, "
            "sigma * Phi^-1(alpha^(1/n)). Certified targets are not attacked: their attack cells show the base "
            "classifier's clean accuracy only.", ""] + \
        _table(["target", "sigma", "condition", *[f"r = {r}" for r in radii], "mean radius", "max radius",
                "n0 / n / alpha"], rows)


def plot_certified(result, path):
    """Write a PNG of certified accuracy versus L2 radius: one panel per smoothed target, one line
    per condition, the largest certifiable radius dotted. Returns the path."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    _check(result)
    certified = result.get("certified", {})
    targets = _ordered(result.get("config", {}).get("targets"), certified)
    if not targets:
        raise ValueError("nothing to plot: no certified results")
    figure = Figure(figsize=(FIGURE_SIZE[0], FIGURE_SIZE[1] * 0.8), dpi=DPI)
    FigureCanvasAgg(figure)
    panels = figure.subplots(1, len(targets), squeeze=False, sharey=True)[0]
    for axes, target in zip(panels, targets):
        for i, condition in enumerate(_ordered(_conditions(result), certified[target])):
            entry = certified[target][condition]
            radii = sorted(entry["accuracy"], key=float)
            axes.plot([float(r) for r in radii], [PERCENT * entry["accuracy"][r] for r in radii], marker="o",
                      color=f"C{i}", label=condition_title(condition))
        entry = next(iter(certified[target].values()))
        axes.axvline(entry["max_radius"], color=CLEAN_LINE, linestyle=":", label="largest certifiable radius")
        axes.set_title(f"{target} (sigma {entry['sigma']:g}, n {entry['n']})", fontsize="small")
        axes.set_xlabel("L2 radius")
        axes.set_ylim(0, Y_TOP)
    panels[0].set_ylabel("certified accuracy (%)")
    panels[0].legend(fontsize="small")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    write_atomic(path, buffer.getvalue())
    return Path(path)


def _image_count(result):
    """The number of evaluated images: the largest ``n`` among the results, else the configured one."""
    counts = [entry.get("n", 0) for per_target in result.get("results", {}).values()
              for entry in per_target.values()]
    return max(counts, default=result.get("config", {}).get("images", 0))


def _check(result):
    if result.get("schema") != SCHEMA:
        raise ValueError(f"not an evaluation result of schema {SCHEMA}: {result.get('schema')!r}")


def _ordered(preferred, present):
    """The keys of ``present`` in the order of ``preferred``, then any others in their own order."""
    return [key for key in dict.fromkeys([*(preferred or ()), *present]) if key in present]


def _present(conditions, per_targets):
    return [c for c in conditions if any(c in per_target for per_target in per_targets)]


def _conditions(result):
    per_targets = result.get("results", {}).values()
    found = [c for per_target in per_targets for c in per_target]
    return list(dict.fromkeys([*result.get("config", {}).get("conditions", ()), *found]))


def _attacks(result):
    found = [attack for per_target in result.get("results", {}).values()
             for entry in per_target.values() for attack in entry.get("robust", {})]
    return list(dict.fromkeys([*result.get("config", {}).get("attacks", {}), *found]))


def _params(params):
    if not params:
        return ""
    shown = (f"{key} {value:g}" if isinstance(value, float) else f"{key} {value}"
             for key, value in params.items())
    return f" ({', '.join(shown)})"


def _accuracy(entry, attack):
    if not entry:
        return MISSING
    return f"{_number(entry.get('clean'), '.1f', PERCENT)} / " \
           f"{_number(entry.get('robust', {}).get(attack), '.1f', PERCENT)}"


def _quality(entry):
    return [_number(entry.get("linf"), ".1f", LEVELS), _number(entry.get("l2"), ".3f"),
            _number(entry.get("ssim"), ".4f"), _number(entry.get("psnr"), ".2f"),
            _number(entry.get("label_accuracy"), ".1f", PERCENT)]


def _number(value, spec, scale=1):
    return MISSING if value is None else format(scale * value, spec)


def _table(header, rows):
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + \
           ["| " + " | ".join(map(str, row)) + " |" for row in rows]
