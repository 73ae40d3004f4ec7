"""Run several graphs or backends on the same inputs and report how far each is from a reference.

:func:`compare_graphs` is NVIDIA Polygraphy's ``Comparator`` on Polygraphy runners of one
graph (an engine against ONNX Runtime on the CPU, say): per output the cosine similarity and
the max |error| relative to the reference's largest magnitude, against :class:`Tolerances`.
:func:`parity` compares whole backends on images (``mspd-edge parity``): the input gradient
on the images, the labels, and the protected 8-bit images of one seeded job (max |d| in
1/255 units and the share of identical 8-bit values), each against a reference backend.
"""
import time
from dataclasses import dataclass, replace

import numpy as np

from ..imaging import model_inputs
from ..pipeline import protect_images


def array_error(got, ref):
    """``{"max_abs", "rel_err", "cosine", "sign_agreement"}`` of ``got`` against ``ref``
    (float64 maths; sign agreement: the share of entries whose signs are equal)."""
    got = np.asarray(got, np.float64).ravel()
    ref = np.asarray(ref, np.float64).ravel()
    if got.shape != ref.shape:
        raise ValueError(f"shapes differ: {got.shape} vs {ref.shape}")
    diff = np.abs(got - ref)
    max_abs = float(diff.max()) if diff.size else 0.0
    scale = float(np.abs(ref).max()) if ref.size else 0.0
    norm = np.linalg.norm(got) * np.linalg.norm(ref)
    cosine = float(got @ ref / norm) if norm > 0 else float(np.array_equal(got, ref))
    signs = float((np.sign(got) == np.sign(ref)).mean()) if ref.size else 1.0
    return {"max_abs": max_abs, "rel_err": max_abs / scale if scale > 0 else max_abs,
            "cosine": cosine, "sign_agreement": signs}


def uint8_error(got_images, ref_images):
    """``{"max_diff_255", "identical"}`` over lists of uint8 images of matching shapes."""
    diffs = [np.abs(g.astype(np.int16) - r.astype(np.int16)).ravel()
             for g, r in zip(got_images, ref_images, strict=True)]
    diff = np.concatenate(diffs) if diffs else np.zeros(0, np.int16)
    return {"max_diff_255": int(diff.max()) if diff.size else 0,
            "identical": float((diff == 0).mean()) if diff.size else 1.0}


@dataclass(frozen=True)
class Tolerances:
    """Pass/fail limits of :func:`parity` (the defaults are for fp32 engines).

    * ``min_cosine``/``max_rel_err`` of the input gradient: ONNX Runtime on the CPU lands at
      cosine 1 - 1e-12 and relative error ~1e-6 (summation order only); a GPU's convolution
      algorithms (fp32, TF32 off) at ~1e-5. The limits leave two orders of magnitude of room
      and still catch a wrong graph (cosine < 0.99) or reduced precision (fp16: ~1e-3).
    * ``max_diff_255``/``min_identical`` of the protected 8-bit images: the cascade takes the
      sign of each gradient entry, so an entry within rounding error of zero can flip sign
      between engines; one flipped copy moves that value by 2 eps / N before averaging
      (0.8/255 at eps 8/255, N 20), which may cross an 8-bit rounding boundary. Such flips
      are rare (< 1% of values) and at most a level or two; a real mismatch moves most values.
    * ``min_label_agreement``: argmax labels may differ on near-tie logits only.
    """

    min_cosine: float = 0.9999
    max_rel_err: float = 1e-3
    max_diff_255: int = 2
    min_identical: float = 0.99
    min_label_agreement: float = 0.98
    min_sign_agreement: float = 0.0


def compare_graphs(runners, feeds, tolerances=Tolerances()):
    """Polygraphy's ``Comparator`` on inactive Polygraphy ``runners`` of one graph, each against
    the first, on the feed dicts ``feeds`` (each runner is activated for its turn).

    Per output, two Polygraphy checks: ``CosineSimilarityCompareFunc`` at
    ``tolerances.min_cosine`` and ``SimpleCompareFunc`` on the max absolute error with a
    per-output tolerance of ``tolerances.max_rel_err`` times the reference's largest magnitude
    over the feeds. Returns ``{runner: {output: {"cosine", "max_abs", "atol", "ok"}}}``, worst
    case over the feeds.
    """
    from polygraphy.comparator import Comparator, CosineSimilarityCompareFunc, SimpleCompareFunc

    from ..runtime.trt import quiet

    with quiet():
        results = Comparator.run(runners, data_loader=list(feeds))
        reference = results[runners[0].name]
        atol = {name: tolerances.max_rel_err * max(float(np.abs(step[name]).max(initial=0))
                                                    for step in reference)
                for name in reference[0].keys()}
        cosine, simple = Comparator.compare_accuracy(
            results, comparisons=[(0, i) for i in range(1, len(runners))],
            compare_func=[CosineSimilarityCompareFunc(cosine_similarity_threshold=tolerances.min_cosine),
                          SimpleCompareFunc(atol=atol, rtol=0.0, check_error_stat="max")])
    report = {}
    for (_, name), steps in cosine.items():
        outputs = report.setdefault(name, {})
        for cos_step, abs_step in zip(steps, simple[(runners[0].name, name)]):
            for output, result in cos_step.items():
                worst = outputs.setdefault(output, {"cosine": 1.0, "max_abs": 0.0,
                                                    "atol": atol[output], "ok": True})
                worst["cosine"] = min(worst["cosine"], result.cosine_similarity)
                worst["max_abs"] = max(worst["max_abs"], abs_step[output].max_absdiff)
                worst["ok"] = worst["ok"] and bool(result) and bool(abs_step[output])
    return report


def protect_all(backend, images, settings, labels):
    """Protected uint8 images of one job with given labels (label mode "gt")."""
    settings = replace(settings, label_mode="gt")
    out = [None] * len(images)
    for i, image, _ in protect_images(images, backend, settings, labels=list(labels)):
        out[i] = image
    return out


def parity(backends, images, settings, reference, tolerances=Tolerances(), log=None):
    """Compare ``backends`` (``{name: backend}``) with ``backends[reference]`` on ``images``.

    ``settings``: resolved pipeline settings (seed fixed) with label mode "classifier" or
    "couple"; every backend protects with the reference's labels, so the pixels compare the
    cascades alone, and the label agreement is reported apart. ``tolerances``: one :class:`Tolerances` or ``{name: Tolerances}`` (e.g. by precision).
    Returns one record per backend (the reference first): the numbers, ``ok`` and ``failures``.
    """
    ref = backends[reference]
    x = model_inputs(images, ref.input_size)
    model = "backbone" if settings.label_mode == "couple" else "classifier"
    labels = ref.predict(x, model)

    start = time.perf_counter()
    ref_grad = ref.input_grad(x, labels)
    ref_images = protect_all(ref, images, settings, labels)
    records = [{"backend": reference, "reference": reference, "images": len(images),
                "precision": ref.precision,
                "seconds": round(time.perf_counter() - start, 3), "ok": True, "failures": []}]
    for name, backend in backends.items():
        if name == reference:
            continue
        if log:
            log(f"parity: {name} ...")
        start = time.perf_counter()
        record = {"backend": name, "reference": reference, "images": len(images)}
        record["label_agreement"] = float((backend.predict(x, model) == labels).mean())
        err = array_error(backend.input_grad(x, labels), ref_grad)
        record.update(grad_cosine=err["cosine"], grad_rel_err=err["rel_err"],
                      sign_agreement=err["sign_agreement"])
        record.update(uint8_error(protect_all(backend, images, settings, labels), ref_images))
        record["seconds"] = round(time.perf_counter() - start, 3)
        record["precision"] = backend.precision
        record["failures"] = _failures(record, tolerances.get(name) if isinstance(tolerances, dict)
                                       else tolerances)
        record["ok"] = not record["failures"]
        records.append(record)
    return records


def _failures(record, tol):
    checks = [("grad_cosine", lambda v: v >= tol.min_cosine, f">= {tol.min_cosine}"),
              ("grad_rel_err", lambda v: v <= tol.max_rel_err, f"<= {tol.max_rel_err}"),
              ("max_diff_255", lambda v: v <= tol.max_diff_255, f"<= {tol.max_diff_255}"),
              ("identical", lambda v: v >= tol.min_identical, f">= {tol.min_identical}"),
              ("sign_agreement", lambda v: v >= tol.min_sign_agreement, f">= {tol.min_sign_agreement}"),
              ("label_agreement", lambda v: v >= tol.min_label_agreement,
               f">= {tol.min_label_agreement}")]
    return [f"{key} {record[key]:.6g} (want {want})" for key, good, want in checks
            if key in record and not good(record[key])]


def parity_table(records):
    """A markdown table of :func:`parity` records."""
    head = ("| backend | precision | grad cosine | grad rel err | sign agreement | max \\|d\\| (1/255) "
            "| identical 8-bit | labels agree | ok |\n|---|---|---|---|---|---|---|---|---|")
    rows = [head]
    for r in records:
        if r["backend"] == r["reference"]:
            rows.append(f"| {r['backend']} (reference) | {r.get('precision', 'fp32')} | | | | | | | |")
            continue
        rows.append("| {} | {} | {} | {} | {} | {} | {} | {} | {} |".format(
            r["backend"], r.get("precision", "fp32"), _fmt(r.get("grad_cosine"), ".9f"),
            _fmt(r.get("grad_rel_err"), ".2e"), _fmt(r.get("sign_agreement"), ".5f"),
            r["max_diff_255"], f"{100 * r['identical']:.3f}%", f"{100 * r['label_agreement']:.1f}%",
            "yes" if r["ok"] else "NO: " + "; ".join(r["failures"])))
    return "\n".join(rows)


def _fmt(value, spec):
    return "n/a" if value is None else format(value, spec)


# Parity tolerances by the compared backend's precision, against the fp32 reference (measured
# on CIFAR-10 test images, N=20: README "Precision", docs/precision.md). Reduced precision
# rounds the gradient (cosine, relative error) and flips the signs of its smallest entries; one
# flipped copy moves a value by 2 eps / N, several flips in both epochs up to the whole budget,
# so max |d| only checks that both images keep the budget (2 x 8 levels at eps 8/255), and the
# share of identical 8-bit values and the sign agreement carry the check. A wrong graph or a
# broken conversion lands far below these (cosine < 0.9, signs ~50%).
PRECISION_TOLERANCES = {
    "fp32": Tolerances(),
    "bf16": Tolerances(min_cosine=0.999, max_rel_err=1.0, max_diff_255=16, min_identical=0.9,
                       min_sign_agreement=0.99),
    "fp16": Tolerances(min_cosine=0.9999, max_rel_err=1.0, max_diff_255=16, min_identical=0.97,
                       min_sign_agreement=0.998),
    "int8": Tolerances(min_cosine=0.98, max_rel_err=1.0, max_diff_255=16, min_identical=0.6,
                       min_sign_agreement=0.9),
}
