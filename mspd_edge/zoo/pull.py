"""Fetch a RobustBench checkpoint into RobustBench's layout: :func:`pull` (``mspd-edge models pull``).

The source is where RobustBench lists the file (:mod:`.pretrained`), a mirror URL or a local
file. URLs go through gdown, the maintained Google Drive client RobustBench itself uses, which
also serves plain URLs (the DeiT-B release asset, a mirror): a progress bar, retries with
backoff, and resume by Range requests from the bytes an interrupted transfer left in
``<id>.pt.incoming<random>.part``. The file arrives as ``<id>.pt.incoming`` beside the target, is
checked (:func:`checkpoint_problem`) and only then renamed to ``<id>.pt``; its sha256 goes to
``checksums.json`` (:mod:`.checksums`). What is not a usable checkpoint is kept as
``<id>.pt.bad`` for inspection, never placed. Torch-free: torch, where installed, only checks keys.
"""
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from ..digest import sha256_file
from . import checksums
from .checkpoint_file import format_problem
from .locate import check_robustbench, pull_root, robustbench_relative
from .pretrained import PUBLISHED

GDOWN_INSTALL = "pip install 'mspd-edge[models]'"
INCOMING, BAD = ".incoming", ".bad"
CONNECT_TIMEOUT = 10.0


class PullError(ValueError):
    """A pull that did not place a checkpoint; the message is one line saying why."""


@dataclass(frozen=True)
class Pulled:
    """What :func:`pull` did: ``action`` is "downloaded", "copied", "present" (the file in place
    matches its record) or "recorded" (a file in place, checked and now recorded)."""

    name: str
    path: Path
    sha256: str
    source: str
    action: str
    load_checked: bool   # torch checked that it loads into the zoo's architecture


def pull(name, source=None, *, force=False, retries=3, timeout=60.0, quiet=False):
    """Place the checkpoint of RobustBench id ``name`` under :func:`~.locate.pull_root`.

    ``source``: a URL or a local file (default: where RobustBench lists it); ``force``: fetch
    again even when the file is in place (and drop what an interrupted transfer left);
    ``retries``: extra attempts after a network failure; ``timeout``: seconds without a byte.
    """
    check_robustbench(name)
    root, relative = pull_root(), robustbench_relative(name)
    target = root / relative
    if target.is_file() and not force:
        return _in_place(name, root, relative)
    source = str(source or PUBLISHED[name].location)
    incoming = target.with_name(target.name + INCOMING)
    created = [folder for folder in (target.parent, *target.parent.parents) if not folder.exists()]
    target.parent.mkdir(parents=True, exist_ok=True)
    if force:
        _discard(incoming)
    try:
        action = _fetch(source, incoming, target, retries=retries, timeout=timeout, quiet=quiet)
    except BaseException:
        _remove_empty(created)   # a pull that got nothing leaves no folders behind
        raise
    problem, load_checked = checkpoint_problem(name, incoming)
    if problem is not None:
        bad = target.with_name(target.name + BAD)
        os.replace(incoming, bad)
        raise PullError(f"{name}: what arrived from {source} is not a usable checkpoint: "
                        f"{problem} (kept as {bad})")
    digest = sha256_file(incoming)
    os.replace(incoming, target)
    checksums.record(root, relative, digest, target.stat().st_size, source)
    return Pulled(name, target, digest, source, action, load_checked)


def checkpoint_problem(name, path):
    """``(why path is no usable checkpoint of name or None, whether torch checked it)``."""
    problem = format_problem(path)
    if problem is not None:
        return problem, False
    try:
        from .loader import check_checkpoint
    except ImportError:      # no torch here: the bytes are all that can be checked
        return None, False
    return check_checkpoint(name, path), True


def _in_place(name, root, relative):
    target = root / relative
    entry = checksums.recorded(root, relative)
    if entry is None:
        problem, load_checked = checkpoint_problem(name, target)
        if problem is not None:
            raise PullError(f"{name}: {target} is in place but is not a usable checkpoint: "
                            f"{problem}; pull again with --force")
        digest = sha256_file(target)
        checksums.record(root, relative, digest, target.stat().st_size, "found in place")
        return Pulled(name, target, digest, "found in place", "recorded", load_checked)
    digest = sha256_file(target)
    if digest != entry["sha256"]:
        raise PullError(f"{name}: {target} differs from the sha256 recorded at its download "
                        f"({entry['sha256'][:12]}..., now {digest[:12]}...): pull again with --force")
    return Pulled(name, target, digest, entry["source"], "present", False)


def _fetch(source, incoming, target, *, retries, timeout, quiet):
    local = _local_file(source)
    if local is not None:
        if not local.is_file():
            raise PullError(f"{source}: no such file")
        partial = incoming.with_name(incoming.name + ".copy")
        shutil.copyfile(local, partial)
        os.replace(partial, incoming)
        return "copied"
    gdown, requests = _clients()
    try:
        gdown.download(url=source, output=str(incoming), quiet=quiet, resume=True,
                       retries=retries, timeout=(CONNECT_TIMEOUT, timeout), use_cookies=False,
                       log_messages={"output": f"To: {target}\n"})
    except (gdown.exceptions.DownloadError, requests.RequestException, OSError) as exc:
        arrived = _arrived(incoming)
        kept = (f"{arrived:,} bytes arrived and are kept: the same pull resumes them; --force "
                "starts over" if arrived else "nothing arrived")
        raise PullError(f"{target.stem}: download from {source} failed: "
                        f"{' '.join(str(exc).split())} ({kept})") from None
    return "downloaded"


def _arrived(incoming):
    """Bytes a failed transfer left for a resume; empty leftovers are removed."""
    arrived = 0
    for leftover in [incoming, *incoming.parent.glob(f"{incoming.name}*.part")]:
        size = leftover.stat().st_size if leftover.is_file() else 0
        if leftover.is_file() and not size:
            leftover.unlink()
        arrived += size
    return arrived


def _remove_empty(folders):
    """Remove those of ``folders`` (deepest first) that are empty."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:   # not empty, or gone
            return


def _local_file(source):
    """The local path ``source`` names (a path or a file:// URL), or None for a remote URL."""
    parsed = urlparse(source)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme in ("http", "https"):
        return None
    return Path(source)


def _clients():
    try:
        import gdown
        import requests
    except ImportError:
        raise PullError(f"downloading needs gdown ({GDOWN_INSTALL}); or pass a local file as "
                        "the source (--from FILE)") from None
    return gdown, requests


def _discard(incoming):
    for leftover in [incoming, incoming.with_name(incoming.name + ".copy"),
                     *incoming.parent.glob(f"{incoming.name}*.part")]:
        leftover.unlink(missing_ok=True)
