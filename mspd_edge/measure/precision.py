"""The precision report (``mspd-edge calibrate --report``): every precision that runs here, in
one run, on the same images and noise, against the same backend in fp32.

Per backend and precision: the input gradient's cosine and sign agreement on the cascade's
first-epoch noisy copies of the images (fp32 labels), the protected 8-bit images' share of
identical values and max |d| against the backend's fp32 images (same seed, same labels), and the
ms per image at each batch size (the median of interleaved rounds) with the speed-up over the
backend's fp32. The fp16 graphs on
ONNX Runtime's CPU provider are measured for their rounding only (``emulated``: that provider
runs them at fp32 speed, so ``--backend ort --precision fp16`` is refused on the CPU).
"""
import numpy as np

from ..backends import build_backend, unavailable_reason
from ..backends.exports import runtime_bundle
from ..calibration.feeds import noisy_copies
from ..imaging import model_inputs
from ..noise import batch_noise, image_key
from .bench import machine, time_backend
from .compare import array_error, protect_all, uint8_error

CANDIDATES = (("torch", "fp32"), ("torch", "bf16"), ("torch", "fp16"),
              ("ort", "fp32"), ("ort", "int8"), ("ort", "fp16"))
EMULATED = {("ort", "fp16")}   # measured for rounding: runs, but not at fp16 speed


def runnable(options, candidates=CANDIDATES):
    """``[(backend, precision, why not or None)]``: which candidates run here."""
    out = []
    for name, precision in candidates:
        asked = "fp32" if (name, precision) in EMULATED else precision   # it runs where fp32 does
        out.append((name, precision, unavailable_reason(name, options.but(precision=asked))))
    return out


def _backend(name, precision, options):
    if (name, precision) in EMULATED:
        from ..runtime.cascade import OrtBackend

        return OrtBackend(runtime_bundle(options.but(precision=precision), True),
                          threads=options.threads)
    return build_backend(name, options.but(precision=precision)).backend


def _gradient_inputs(images, settings, input_size, labels):
    x = model_inputs(images, input_size)
    noise = batch_noise(settings.seed, [image_key(i) for i in images], settings.n_samples,
                        x.shape[1:], 1)[0]
    return noisy_copies(x, noise, settings.eps), np.tile(labels, settings.n_samples)


def precision_report(images, options, settings, batch_sizes=(1, 16), rounds=3, log=print):
    """The report dict (``machine``, ``settings``, ``rows``, ``skipped``) for uint8 ``images``.

    ``options``: :class:`~mspd_edge.backends.BackendOptions` of the models (precision ignored);
    ``settings``: pipeline settings with a fixed seed (label mode classifier or couple).
    """
    plan = runnable(options)
    fp32 = build_backend("torch" if any(n == "torch" and w is None for n, p, w in plan) else "ort",
                         options.but(precision="fp32")).backend
    settings = settings.resolved(fp32)
    model = "backbone" if settings.label_mode == "couple" else "classifier"
    labels = fp32.predict(model_inputs(images, fp32.input_size), model)
    copies, copy_labels = _gradient_inputs(images, settings, fp32.input_size, labels)
    rows, reference, built = [], {}, []
    for name, precision, why in plan:
        if why is not None:
            continue
        log(f"precision report: {name} {precision} ...")
        backend = _backend(name, precision, options)
        row = {"backend": name, "precision": precision, "emulated": (name, precision) in EMULATED}
        grad = backend.input_grad(copies, copy_labels)
        protected = protect_all(backend, images, settings, labels)
        if precision == "fp32":
            reference[name] = (grad, protected)
        ref_grad, ref_images = reference[name]
        err = array_error(grad, ref_grad)
        row.update(grad_cosine=err["cosine"], sign_agreement=err["sign_agreement"],
                   **uint8_error(protected, ref_images))
        rows.append(row)
        built.append(backend)
    _timings(rows, built, images, settings, batch_sizes, rounds, log)
    for backend in built:
        backend.close()
    _speedups(rows, batch_sizes)
    return {"machine": machine(), "settings": {
        "images": len(images), "seed": settings.seed, "n_samples": settings.n_samples,
        "eps": settings.eps, "epochs": settings.epochs, "label_mode": settings.label_mode,
        "threads": options.threads, "batch_sizes": list(batch_sizes), "timing_rounds": rounds,
        "backbone": options.backbone,
        "gradient_inputs": f"{len(copies)} first-epoch noisy copies"},
        "rows": rows, "skipped": [{"backend": n, "precision": p, "why": w} for n, p, w in plan if w]}


def _timings(rows, backends, images, settings, batch_sizes, rounds, log):
    """ms per image of each row at each batch size: the median of ``rounds`` rounds, the rows
    interleaved in each round so that a busy machine slows them alike."""
    times = [{b: [] for b in batch_sizes} for _ in rows]
    for round_ in range(rounds):
        log(f"precision report: timing, round {round_ + 1} of {rounds} ...")
        for row, backend, per_size in zip(rows, backends, times):
            for record in time_backend(backend, images, settings, batch_sizes,
                                       name=f"{row['backend']}@{row['precision']}"):
                per_size[record["batch_size"]].append(record["ms_per_image"])
    for row, per_size in zip(rows, times):
        for b, values in per_size.items():
            row[f"ms_per_image_b{b}"] = round(float(np.median(values)), 2)


def _speedups(rows, batch_sizes):
    for b in batch_sizes:
        key = f"ms_per_image_b{b}"
        base = {r["backend"]: r[key] for r in rows if r["precision"] == "fp32"}
        for r in rows:
            if base.get(r["backend"]):
                r[f"speedup_b{b}"] = round(base[r["backend"]] / r[key], 3)


def markdown(report):
    """The report's rows as a markdown table."""
    sizes = report["settings"]["batch_sizes"]
    head = ("| backend | precision | grad cosine | sign agreement | identical 8-bit | max \\|d\\| "
            + "".join(f"| ms/image b{b} | vs fp32 b{b} " for b in sizes) + "|")
    rows = [head, "|" + "---|" * (6 + 2 * len(sizes))]
    for r in report["rows"]:
        cells = [r["backend"], r["precision"] + (" (rounding only)" if r["emulated"] else ""),
                 f"{r['grad_cosine']:.6f}", f"{100 * r['sign_agreement']:.3f}%",
                 f"{100 * r['identical']:.2f}%", f"{r['max_diff_255']}/255"]
        for b in sizes:
            cells += [f"{r[f'ms_per_image_b{b}']:.1f}", f"{r.get(f'speedup_b{b}', float('nan')):.2f}x"]
        rows.append("| " + " | ".join(cells) + " |")
    rows += [f"\nnot run here: {s['backend']} {s['precision']}: {s['why']}" for s in report["skipped"]]
    return "\n".join(rows) + "\n"


def plot(report, path):
    """Bars per backend and precision: sign agreement, identical 8-bit values, speed-up (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = report["rows"]
    names = [f"{r['backend']}\n{r['precision']}{'*' if r['emulated'] else ''}" for r in rows]
    b = report["settings"]["batch_sizes"][-1]
    panels = [("sign agreement vs fp32 (%)", [100 * r["sign_agreement"] for r in rows]),
              ("identical 8-bit values vs fp32 (%)", [100 * r["identical"] for r in rows]),
              (f"speed vs fp32, batch {b} (x)", [r.get(f"speedup_b{b}", 0) for r in rows])]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for ax, (title, values) in zip(axes, panels):
        ax.bar(names, values, color=["#888" if "fp32" in n else "#3b7dd8" for n in names])
        ax.set_title(title, fontsize=10)
        ax.tick_params(axis="x", labelsize=8)
        for i, v in enumerate(values):
            ax.text(i, v, f"{v:.3g}", ha="center", va="bottom", fontsize=7)
    fig.suptitle(f"precision report: {report['settings']['images']} images, N="
                 f"{report['settings']['n_samples']} (* rounding only)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
