"""How much of a protection a published copy keeps, at the model's input (numpy, cv2).

The protection lives at the model's input (``mspd_edge.imaging``: the cascade works there and
its perturbation is resized to the image), so the copy is compared there: with x the original,
p the recomputed protected image and q the published copy brought back to the original's size
and channels, all three at the model input, ``d = p - x`` (the protection) and ``e = q - x``:

* ``kept_cosine`` = cos(e, d): 1 when the copy still carries the protection's direction, ~0
  for a copy of the unprotected original;
* ``kept_energy`` = |e|^2 / |d|^2 (the energy ratio), ``kept_gain`` = <e, d> / |d|^2 (how much
  of the protection's amplitude survives along it);
* ``foreign_energy`` = the energy of e not along d, over |d|^2 (what the platform added);
* ``correlation``: the Pearson correlation of q with x or with p, whichever is higher (how
  well the copy matches the original, protected or not).

A copy whose aspect ratio differs from the original's (a crop), whose correlation with the
original is too low or whose foreign energy is far above anything a re-encoding leaves (a heavy
filter) is ``not comparable``: verify cannot say, which is not the same as ``gone``.
"""
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from ..imaging import split, to_model_input

# Verdict thresholds, chosen from benchmarks/verify_steps.py (benchmarks/results/verify-steps.json,
# docs/verify.md "Thresholds"): 300 CIFAR-10 test images at 128x128 protected with the default
# settings, then none / jpeg75 / resize0.75 / resize0.75+jpeg75 as OpenCV files and --simulate.
# Protected copies: cosine >= 0.909, gain >= 0.873; unprotected: |gain| <= 0.048, cosine in
# [-0.31, 0.19] (the cosine of re-encoding noise alone); the thresholds sit in the wide gap.
KEPT_COSINE = 0.5       # kept: cosine and gain at least these
KEPT_GAIN = 0.5
GONE_COSINE = 0.3       # gone: cosine or gain below these
GONE_GAIN = 0.3
# Comparable: aspect ratio within ASPECT_TOLERANCE (plus a pixel of rounding), correlation with
# the original or the protected image at least MIN_CORRELATION (re-encodings: >= 0.996; a 0.9
# centre crop: down to 0.63), foreign energy at most MAX_FOREIGN_ENERGY (re-encodings: <= 0.18;
# a 0.9 centre crop >= 0.68, a blur of radius 4 >= 0.38: a filter that moves the model input
# by more than the protection itself).
ASPECT_TOLERANCE = 0.01
MIN_CORRELATION = 0.97
MAX_FOREIGN_ENERGY = 1.0
VERDICTS = ("kept", "weakened", "gone", "not comparable")


@dataclass(frozen=True)
class Comparison:
    """One published copy against its recomputed protection (module docstring)."""

    verdict: str
    reason: str | None = None            # why "not comparable"
    kept_cosine: float | None = None
    kept_energy: float | None = None
    kept_gain: float | None = None
    foreign_energy: float | None = None
    correlation: float | None = None

    def figures(self):
        """The fields as a dict (JSON-ready)."""
        return asdict(self)


def same_frame(published, original):
    """The colour of ``published`` in the original's size and channels, or ``(None, why)``.

    Alpha is dropped; a colour copy of a gray original is converted to gray. A copy of another aspect
    ratio (beyond :data:`ASPECT_TOLERANCE` and a pixel of rounding) is refused: a crop.
    """
    colour, original_colour = split(published)[0], split(original)[0]
    height, width, channels = original_colour.shape
    h, w = colour.shape[:2]
    slack = 1 + ASPECT_TOLERANCE * max(w, h)
    if abs(h - w * height / width) > slack and abs(w - h * width / height) > slack:
        return None, f"aspect ratio {w}x{h} differs from the original's {width}x{height} (a crop?)"
    if colour.shape[2] != channels:
        colour = cv2.cvtColor(colour, cv2.COLOR_RGB2GRAY)[:, :, None] if channels == 1 \
            else np.repeat(colour, channels, axis=2)
    if (h, w) != (height, width):
        shrink = h * w > height * width
        colour = cv2.resize(colour, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        colour = colour.reshape(height, width, channels)
    return colour, None


def compare(original, protected, published, input_size):
    """The :class:`Comparison` of uint8 ``published`` (any size) with ``protected`` (the
    recomputed protection of ``original``, same size), at the model input ``input_size``. A
    gray copy of a colour original is compared in gray (luma) with the gray original and protection."""
    if split(published)[0].shape[2] == 1 and split(original)[0].shape[2] == 3:
        original, protected = (cv2.cvtColor(split(image)[0], cv2.COLOR_RGB2GRAY) for image in (original, protected))
    frame, why = same_frame(published, original)
    if frame is None:
        return Comparison("not comparable", why)
    colour = split(original)[0]
    x = to_model_input(colour, input_size)[0].astype(np.float64)
    d = to_model_input(split(protected)[0], input_size)[0] - x
    e = to_model_input(frame, input_size)[0] - x
    dd, ee, de = float((d * d).sum()), float((e * e).sum()), float((d * e).sum())
    if dd == 0:
        return Comparison("not comparable", "the protection is zero at the model input")
    figures = dict(kept_cosine=de / np.sqrt(dd * ee) if ee else 0.0, kept_energy=ee / dd, kept_gain=de / dd,
                   foreign_energy=max(0.0, ee - de * de / dd) / dd,
                   correlation=max(_correlation(x, x + e), _correlation(x + d, x + e)))
    return Comparison(*_verdict(**figures), **{k: float(v) for k, v in figures.items()})


def _correlation(a, b):
    a, b = a.ravel() - a.mean(), b.ravel() - b.mean()
    norm = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / norm) if norm else 1.0


def _verdict(kept_cosine, kept_energy, kept_gain, foreign_energy, correlation):
    if correlation < MIN_CORRELATION:
        return "not comparable", (f"correlation {correlation:.2f} with the original at the model input "
                                  f"(< {MIN_CORRELATION}): another image, a crop or a heavy filter")
    if foreign_energy > MAX_FOREIGN_ENERGY:
        return "not comparable", (f"changed {foreign_energy:.0f}x the protection's energy besides it "
                                  f"(> {MAX_FOREIGN_ENERGY:g}x): a heavy filter or an edit")
    if kept_cosine >= KEPT_COSINE and kept_gain >= KEPT_GAIN:
        return "kept", None
    return ("gone" if kept_cosine < GONE_COSINE or kept_gain < GONE_GAIN else "weakened"), None
