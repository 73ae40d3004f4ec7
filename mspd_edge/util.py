"""The small helpers every part shares (standard library only): atomic files and folders, an
exception's first line, lazy package attributes, and the Ctrl-C handler of a block or its
signals held until a file is written."""
import os
import shutil
import signal
import tempfile
import threading
from contextlib import contextmanager
from importlib import import_module
from pathlib import Path

NEW_FILE_MODE = 0o666   # as open(..., "w"): the umask takes its bits away


def write_atomic(path, data):
    """Write ``data`` (bytes, or a function writing to a binary file) to ``path`` atomically.

    Via a temporary file in the same folder and ``os.replace``; the file gets the permissions
    of a new file under the current umask (``0o666 & ~umask``), as any file tool's output.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with signals_held():   # a Ctrl-C raising mid-way could leave the temporary file behind
        handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as out:
                if callable(data):
                    data(out)
                else:
                    out.write(data)
            os.chmod(temp, NEW_FILE_MODE & ~current_umask())
            os.replace(temp, path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise


@contextmanager
def signals_held(signums=(signal.SIGINT, signal.SIGTERM)):
    """Hold the Python handlers of ``signums`` inside the block and call them after it, for the
    signals that came meanwhile; nothing changes in a thread other than the main one, nor for a
    signal without a Python handler."""
    held, previous = [], {}
    if threading.current_thread() is threading.main_thread():
        for signum in signums:
            if callable(signal.getsignal(signum)):
                previous[signum] = signal.signal(signum, lambda *signal_args: held.append(signal_args))
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for signum, frame in held:
            previous[signum](signum, frame)


def current_umask():
    """The process umask, read without changing it where Linux's /proc tells it."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)   # elsewhere: set and restore
    os.umask(mask)
    return mask


@contextmanager
def atomic_folder(folder, replace=True):
    """Yield an empty partial folder beside ``folder``; when the block ends well it becomes
    ``folder`` in one rename (``replace``: an existing ``folder`` is removed first, else the one
    already there wins), and when it raises it is removed."""
    folder = Path(folder)
    partial = folder.with_name(f".{folder.name}.{os.getpid()}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        yield partial
        if replace:
            shutil.rmtree(folder, ignore_errors=True)
        try:
            os.replace(partial, folder)
        except OSError:
            if replace or not folder.is_dir():
                raise   # else another process was first: keep its folder
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def first_line(exc):
    """The first line of ``exc``'s message, or its type's name when the message is empty."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def lazy_attributes(package, names):
    """A module ``__getattr__`` for ``package`` that imports ``names[name]`` (a module name,
    relative to ``package`` when it starts with a dot) on first use of ``name``."""
    def __getattr__(name):
        if name in names:
            return getattr(import_module(names[name], package), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    return __getattr__


@contextmanager
def sigint_handler(handler, also=()):
    """``handler`` for SIGINT (and the signals in ``also``) inside the block, the previous
    handlers after; in a thread other than the main one nothing changes (signals are not ours
    to handle there)."""
    previous = {}
    try:
        for signum in (signal.SIGINT, *also):
            previous[signum] = signal.signal(signum, handler)
    except ValueError:
        pass
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
