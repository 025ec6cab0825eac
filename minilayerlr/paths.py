"""Output paths checked before any work: a run never computes for minutes and then fails to write.

Each check raises :class:`~minilayerlr.errors.UserError` naming the argument.
Writability is tested by creating (and removing) a temporary file, because
permission bits say nothing for root or for read-only file systems. This
module imports only ``errors``: every level may use it.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import UserError


def _probe_writable(name: str, folder: Path) -> None:
    try:
        handle, probe = tempfile.mkstemp(dir=folder, prefix=".minilayerlr-probe-")
    except OSError as error:
        raise UserError(f"{name}: cannot write in {folder}: {error.strerror or error}") from None
    os.close(handle)
    os.remove(probe)


def check_output_file(name: str, path) -> Path:
    """``path`` as a Path, after checking that a file can be written there.

    Refused: an existing folder, a parent that is missing or not a folder, a
    parent in which no file can be created. An existing file is accepted (the
    caller decides whether overwriting it is allowed).
    """
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{name}: {path} is a folder; give a file name")
    parent = path.parent
    if not parent.exists():
        raise UserError(f"{name}: the folder {parent} does not exist")
    if not parent.is_dir():
        raise UserError(f"{name}: {parent} is not a folder")
    _probe_writable(name, parent)
    return path


def check_output_dir(name: str, path) -> Path:
    """``path`` as a Path to a writable folder, created (with its parents) if missing.

    Refused: an existing file, a path under a file, a folder in which no file
    can be created.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"{name}: {path} exists and is not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"{name}: cannot create the folder {path}: {error.strerror or error}") from None
    _probe_writable(name, path)
    return path


def atomic_write_bytes(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` so that a reader sees the old file or the new one, never half.

    A temporary file of its own in the same folder (two writers never share one,
    and ``os.replace`` stays a rename on one file system), flushed to disk, then
    renamed over ``path``; on any failure the temporary file is removed.
    """
    path = Path(path)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path
