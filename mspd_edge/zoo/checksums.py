"""The sha256 of each pulled checkpoint, recorded at its first download: ``<root>/checksums.json``.

One entry per file, keyed by its path relative to the models root (RobustBench's layout), so a
moved root keeps its record: ``{"cifar10/Linf/Wong2020Fast.pt": {"sha256": ..., "size": ...,
"source": ..., "recorded": "2026-11-23T10:00:00Z"}}``. Written atomically; one writer at a time.
:func:`verify` checks the files in place against it, and the shipped models' weights against
their manifests (``mspd-edge models verify``).
"""
import json
import time
from dataclasses import dataclass
from pathlib import Path

from ..digest import sha256_file
from ..util import write_atomic
from .checkpoint_file import format_problem
from .locate import (check_robustbench, find_robustbench, robustbench_candidates, robustbench_relative,
                     shipped_models, shipped_weights)
from .robustbench_ids import ROBUSTBENCH

CHECKSUMS = "checksums.json"
FAILED = ("mismatch", "bad", "missing")   # the verdicts that fail a verification


@dataclass(frozen=True)
class Verdict:
    """One checkpoint's verification: ``status`` is "ok", "unrecorded" (no record to check it
    against: not pulled by mspd-edge), or one of :data:`FAILED`."""

    name: str
    path: Path | None
    status: str
    detail: str


def read(root):
    """The records under ``root`` (empty when there is no file yet); ValueError when unreadable."""
    path = Path(root) / CHECKSUMS
    if not path.is_file():
        return {}
    try:
        records = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: cannot read the checksum record ({exc})") from None
    if not isinstance(records, dict):
        raise ValueError(f"{path}: not a checksum record (expected a JSON object)")
    return records


def recorded(root, relative):
    """The record of ``relative`` under ``root``, or None."""
    return read(root).get(Path(relative).as_posix())


def record(root, relative, sha256, size, source):
    """Record (or replace) the checksum of ``relative`` under ``root``."""
    records = read(root)
    records[Path(relative).as_posix()] = {
        "sha256": sha256, "size": size, "source": str(source),
        "recorded": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    text = json.dumps(dict(sorted(records.items())), indent=2) + "\n"
    write_atomic(Path(root) / CHECKSUMS, text.encode())


def verify(names=None):
    """A :class:`Verdict` per name in ``names``, else per shipped model and per RobustBench id
    with a checkpoint in place. A shipped model's weights are checked against the sha256 its
    manifest records (``weights_sha256``), a RobustBench checkpoint against ``checksums.json``."""
    shipped = shipped_models()
    for name in names or ():
        if name not in shipped:
            check_robustbench(name)
    verdicts = [_shipped_verdict(name, shipped[name]) for name in names or shipped if name in shipped]
    for name in [n for n in names if n not in shipped] if names else ROBUSTBENCH:
        path = find_robustbench(name)
        if path is not None:
            verdicts.append(_verdict(name, path))
        elif names:
            looked = ", ".join(str(p) for p in robustbench_candidates(name))
            verdicts.append(Verdict(name, None, "missing", f"no checkpoint (looked for {looked})"))
    return verdicts


def _shipped_verdict(name, manifest):
    path = shipped_weights(name)
    if not path.is_file():
        return Verdict(name, None, "missing", f"no weights beside its manifest (looked for {path})")
    digest, expected = sha256_file(path), manifest.get("weights_sha256")
    if expected is None:
        return Verdict(name, path, "unrecorded", f"sha256 {digest}; its manifest records none")
    if digest != expected:
        return Verdict(name, path, "mismatch", f"sha256 {digest}, its manifest records {expected}")
    return Verdict(name, path, "ok", f"sha256 {digest} (shipped)")


def _verdict(name, path):
    problem = format_problem(path)
    if problem is not None:
        return Verdict(name, path, "bad", f"not a torch checkpoint: {problem}")
    relative = robustbench_relative(name)
    root = path.parents[len(relative.parts) - 1]   # <root>/<dataset>/<threat_model>/<id>.pt
    entry, digest = recorded(root, relative), sha256_file(path)
    if entry is None:
        return Verdict(name, path, "unrecorded", f"sha256 {digest}; no record in {root / CHECKSUMS} "
                       f"(`mspd-edge models pull {name}` checks and records it)")
    if entry["sha256"] != digest:
        return Verdict(name, path, "mismatch", f"sha256 {digest}, recorded {entry['sha256']} "
                       f"({entry.get('recorded', '?')})")
    return Verdict(name, path, "ok", f"sha256 {digest}")
