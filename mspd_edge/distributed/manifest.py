"""The results manifest of a distributed job: JSON lines, one row per input.

Every row has every column of :data:`COLUMNS` (None where it does not apply): ``status`` is
``written``, ``skipped`` (a complete output was already there, or a folder's file is no
supported image: ``error`` says so), ``failed`` (``error`` says why) or, in the manifest of
a job stopped by Ctrl-C, ``pending`` (not settled: a rerun does it); the image fields are
those of ``mspd-edge protect --report`` (label ``{index, name}``, ``size`` [w, h],
``channels``, ``resized``, ``linf`` in [0, 1], ``linf_255``, ``l2``, ``psnr``, ``ssim``, the
``metadata`` kept: icc, exif, xmp); ``seconds``: the image's read, protection share and
write time.
The file is spooled locally while the job runs and written atomically when it ends.
"""
import json
import tempfile

from .storage import write_atomic

STATUSES = ("written", "skipped", "failed", "pending")
COLUMNS = ("input", "status", "output", "error", "seconds", "label", "size", "channels",
           "resized", "linf", "linf_255", "l2", "psnr", "ssim", "metadata")


def manifest_row(input, status, *, output=None, error=None, seconds=None, record=None):
    """One manifest row; ``record``: the image fields (``mspd_edge.protect`` report entry)."""
    if status not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}, got {status!r}")
    row = dict.fromkeys(COLUMNS)
    row.update(record or {})
    row.update(input=input, status=status, output=output, error=error, seconds=seconds)
    return row


def encode_row(row):
    """The JSON line of a manifest row."""
    return json.dumps(row, separators=(",", ":"))


def read_manifest(text):
    """The rows of a manifest's text."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


class ManifestWriter:
    """Collects JSON lines; :meth:`commit` writes them to a :class:`Location` atomically."""

    def __init__(self, location):
        self.location = location
        self.spool = tempfile.SpooledTemporaryFile(max_size=64 << 20, mode="w+b")
        self.counts = dict.fromkeys(STATUSES, 0)

    def add(self, line):
        """Add one encoded row (:func:`encode_row`); returns the row."""
        row = json.loads(line)
        self.counts[row["status"]] += 1
        self.spool.write(line.encode() + b"\n")
        return row

    def commit(self):
        """Write the manifest to its location (one file, complete or absent)."""
        self.spool.seek(0)
        write_atomic(self.location, self.spool.read())
        self.spool.close()
