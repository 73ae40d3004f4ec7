"""Where a distributed job reads and writes: local folders and object storage, via ``pyarrow.fs``.

A :class:`Location` is a file system and a path on it. Local paths and ``file://`` URIs are
the local file system; other URIs (``s3://bucket/prefix``, ``gs://...``, ``hdfs://...``) are
resolved by :meth:`pyarrow.fs.FileSystem.from_uri` (S3 options in the query, e.g.
``?endpoint_override=host:port&scheme=http``; credentials from each process's environment,
``AWS_*`` variables or an instance role, or ``s3://KEY:SECRET@bucket``). An fsspec
file system can be passed instead, wrapped by :class:`pyarrow.fs.FSSpecHandler`.

Writes are atomic: an object is one PUT or a multipart upload, neither visible before it
completes; on a file system (local, fsspec, HDFS) a file goes to a hidden ``.NAME.partial``
next to it and is renamed (so a retried or rerun write replaces what a killed one left).
"""
import io
import os
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pyarrow.fs as pafs

from .uris import display_uri, is_uri
from ..io import FORMATS, SUBFOLDER_SKIPPED, SUFFIXES, discover, is_pattern

PARTIAL_SUFFIX = ".partial"
OBJECT_STORES = ("s3", "gcs", "abfs")   # pyarrow's type names: an object is complete or absent


@dataclass(frozen=True)
class Location:
    """A path on a file system; ``uri`` is how messages and the manifest name it."""

    filesystem: pafs.FileSystem
    path: str
    uri: str

    @property
    def local(self):
        return isinstance(self.filesystem, pafs.LocalFileSystem)

    def child(self, relative):
        """The location ``relative`` (a relative POSIX path) below this one."""
        relative = PurePosixPath(relative).as_posix()
        if self.local:
            return Location(self.filesystem, os.path.join(self.path, relative),
                            os.path.join(self.uri, relative))
        return Location(self.filesystem, f"{self.path.rstrip('/')}/{relative}",
                        f"{self.uri.rstrip('/')}/{relative}")


def resolve(target, filesystem=None):
    """The :class:`Location` of a local path or URI (``filesystem``: a pyarrow or fsspec one)."""
    text = str(target)
    if filesystem is not None:
        if not isinstance(filesystem, pafs.FileSystem):
            filesystem = pafs.PyFileSystem(pafs.FSSpecHandler(filesystem))
        return Location(filesystem, text, text)
    if not is_uri(text):
        return Location(pafs.LocalFileSystem(), os.path.abspath(text), text)
    try:
        filesystem, path = pafs.FileSystem.from_uri(text)
    except (ValueError, OSError) as exc:   # pyarrow.lib.ArrowInvalid is a ValueError
        raise ValueError(f"{text}: {exc}") from None
    if isinstance(filesystem, pafs.LocalFileSystem):
        return Location(filesystem, path, path)
    return Location(filesystem, path, display_uri(text))


def list_sources(inputs, recursive, exclude, filesystem=None):
    """``(sources, missing, unsupported)`` of the inputs.

    ``sources``: each image file as ``(Location, path relative to its input, bytes)``;
    ``unsupported``: ``(uri, why)`` of the folders' other files. Local inputs follow
    :func:`mspd_edge.io.discover` (files, folders, globs, hidden files skipped); object-storage
    prefixes the same rules on their keys. ``exclude`` (the output :class:`Location`) is never
    looked into.
    """
    sources, missing, unsupported, seen = [], [], [], set()
    for item in inputs:
        where = resolve(item, filesystem)
        if where.local and filesystem is None:
            found, lost = discover([item], recursive, exclude=exclude.path if exclude.local else None,
                                   on_skip=lambda path, why: unsupported.append((str(path), why)))
            found = [(resolve(s.path), s.relative.as_posix(), s.path.stat().st_size) for s in found]
            missing += lost
        else:
            found = list(_list_remote(where, recursive, exclude, unsupported))
            missing += [] if found else [str(item)]
        sources += _unseen(found, seen)   # a file reached twice is listed once
    return sources, missing, unsupported


def _unseen(found, seen):
    fresh = []
    for source in found:
        key = os.path.realpath(source[0].path) if source[0].local else source[0].path
        if key not in seen:
            seen.add(key)
            fresh.append(source)
    return fresh


def _list_remote(where, recursive, exclude, unsupported):
    if is_pattern(where.path):
        raise ValueError(f"{where.uri}: glob patterns work on local files only")
    info = where.filesystem.get_file_info(where.path)
    if info.type == pafs.FileType.File:
        yield where, info.base_name, info.size
        return
    selector = pafs.FileSelector(where.path, recursive=recursive, allow_not_found=True)
    skip = exclude.path.rstrip("/") + "/" if exclude.filesystem.equals(where.filesystem) else None
    for entry in sorted(where.filesystem.get_file_info(selector), key=lambda e: e.path):
        relative = PurePosixPath(entry.path).relative_to(where.path.rstrip("/") or "/")
        if (any(part.startswith(".") for part in relative.parts)
                or (skip and (entry.path + "/").startswith(skip))):
            continue
        if entry.type == pafs.FileType.Directory and not recursive:
            unsupported.append((where.child(relative).uri, SUBFOLDER_SKIPPED))
        if entry.type != pafs.FileType.File:
            continue
        if relative.suffix.lower() in SUFFIXES:
            yield where.child(relative), relative.as_posix(), entry.size
        else:
            unsupported.append((where.child(relative).uri, f"not a supported image file ("
                                f"{relative.suffix or 'no suffix'}; supported: {', '.join(FORMATS)})"))


def is_file(where):
    """Whether a file (or object) exists at ``where``."""
    return where.filesystem.get_file_info(where.path).type == pafs.FileType.File


@contextmanager
def local_file(where):
    """A local path holding the file at ``where``: itself, or a temporary download of it."""
    if where.local:
        yield Path(where.path)
        return
    with tempfile.NamedTemporaryFile(suffix=PurePosixPath(where.path).suffix) as copy:
        with where.filesystem.open_input_stream(where.path) as stream:
            while chunk := stream.read(1 << 22):
                copy.write(chunk)
        copy.flush()
        yield Path(copy.name)


def _in_memory(write):
    buffer = io.BytesIO()
    write(buffer)
    return buffer.getvalue()


def _object_store(filesystem):
    return any(name in filesystem.type_name for name in OBJECT_STORES)


def write_atomic(where, data):
    """Write ``data`` (bytes, or a function writing into a binary file) at ``where``, visible
    only once complete. An object is encoded in memory first (closing a stream would publish
    what a failed function wrote); a file is streamed to its ``.NAME.partial``."""
    filesystem = where.filesystem
    if _object_store(filesystem):
        if callable(data):
            data = _in_memory(data)
        with filesystem.open_output_stream(where.path) as out:
            out.write(data)
        return
    parent, name = where.path.rstrip("/").rpartition("/")[::2]
    filesystem.create_dir(parent, recursive=True)
    partial = f"{parent}/.{name}{PARTIAL_SUFFIX}"
    try:
        with filesystem.open_output_stream(partial) as out:
            if callable(data):
                data(out)
            else:
                out.write(data)
        filesystem.move(partial, where.path)
    except BaseException:
        if filesystem.get_file_info(partial).type == pafs.FileType.File:
            filesystem.delete_file(partial)
        raise
