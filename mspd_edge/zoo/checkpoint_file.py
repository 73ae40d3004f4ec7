"""Whether a file can be a torch checkpoint, judged from its bytes, without torch.

``torch.save`` writes a zip archive (``PK\\x03\\x04``, the format since torch 1.6) or, in the
legacy format, a pickle (``\\x80`` and the protocol number). Whatever else arrives in a
checkpoint's place is named: an HTML page (Google Drive's quota or virus-scan page saved as
``.pt``, RobustBench's most reported failure), other text, an empty file, or a zip archive cut
short (an interrupted download).
"""
import re
import zipfile

_HEAD_BYTES = 4096
_SHOWN_CHARS = 60
ZIP_MAGIC = b"PK\x03\x04"
_TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


def format_problem(path):
    """Why the file at ``path`` cannot be a torch checkpoint, or None when its bytes fit one."""
    with open(path, "rb") as f:
        head = f.read(_HEAD_BYTES)
    if not head:
        return "the file is empty"
    if head.startswith(ZIP_MAGIC):
        return None if zipfile.is_zipfile(path) else "a zip archive cut short (an interrupted download?)"
    if head[0] == 0x80 and 2 <= head[1] <= 5:
        return None   # a pickle: torch's legacy format
    lowered = head.lower()
    if lowered.lstrip().startswith((b"<!doctype html", b"<html")) or b"<html" in lowered:
        title = _TITLE.search(head)
        named = f" {_text(title.group(1))!r}" if title else ""
        return f"got an HTML page{named} (a Google Drive quota or virus-scan page?)"
    if head.startswith(b"\x1f\x8b"):
        return "got a gzip file"
    if all(32 <= b < 127 or b in b"\t\r\n" for b in head):
        return f"got text: {_text(head)!r}"
    return f"got unknown bytes: it starts with {head[:8]!r}"


def _text(raw):
    text = " ".join(raw.decode("ascii", "replace").split())
    return text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS] + "..."
