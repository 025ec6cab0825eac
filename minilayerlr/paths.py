"""Output paths checked before any work: a run never computes for minutes and then fails to write.

Each check raises :class:`~minilayerlr.errors.UserError` naming the argument.
Writability is tested by creating (and removing) a temporary file, because
permission bits say nothing for root or for read-only file systems. Only
regular files are ever replaced: a FIFO, a device, a socket or a folder at an
output path is refused before any work (a symbolic link is followed and its
target judged the same way; writing through it replaces the target, not the
link). :class:`RunLock` keeps two runs from writing the same file or folder
at once. This module imports only ``errors``: every level may use it.
"""
from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path

from .errors import UserError

try:  # POSIX; elsewhere runs are not locked against each other
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None


def _probe_writable(name: str, folder: Path) -> None:
    try:
        handle, probe = tempfile.mkstemp(dir=folder, prefix=".minilayerlr-probe-")
    except OSError as error:
        raise UserError(f"{name}: cannot write in {folder}: {error.strerror or error}") from None
    os.close(handle)
    os.remove(probe)


def _as_path(name: str, path) -> Path:
    """``path`` as a Path; an empty string is refused (``Path("")`` would silently mean ".")."""
    if isinstance(path, (str, bytes)) and not path.strip():
        raise UserError(f"{name}: an empty path; give a file or folder name")
    return Path(path)


def _kind(mode: int) -> str:
    for test, what in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return what
    return "not a regular file"


def check_replaceable(name: str, path) -> Path:
    """``path`` as a Path after refusing anything there but a regular file (or nothing).

    Symbolic links are followed: a link to a device is refused like the
    device; a dangling link is accepted (writing creates its target).
    """
    path = _as_path(name, path)
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):  # nothing there (or a parent is a file)
        return path
    except OSError as error:
        raise UserError(f"{name}: cannot inspect {path}: {error.strerror or error}") from None
    if stat.S_ISDIR(mode):
        raise UserError(f"{name}: {path} is a folder; give a file name")
    if not stat.S_ISREG(mode):
        raise UserError(f"{name}: {path} is {_kind(mode)}, not a regular file; refusing to "
                        "replace it (give the name of a regular file)")
    return path


def check_output_file(name: str, path) -> Path:
    """``path`` as a Path, after checking that a file can be written there.

    Refused: an empty name, an existing folder, FIFO, device or socket (or a
    link to one), a parent that is missing or not a folder, a parent in which
    no file can be created. An existing regular file is accepted (the caller
    decides whether overwriting it is allowed).
    """
    path = check_replaceable(name, path)
    parent = real_target(path).parent
    if not parent.exists():
        raise UserError(f"{name}: the folder {parent} does not exist")
    if not parent.is_dir():
        raise UserError(f"{name}: {parent} is not a folder")
    _probe_writable(name, parent)
    return path


def check_output_dir(name: str, path) -> Path:
    """``path`` as a Path to a writable folder, created (with its parents) if missing.

    Refused: an empty name, an existing file, a path under a file, a folder in
    which no file can be created.
    """
    path = _as_path(name, path)
    if path.exists() and not path.is_dir():
        raise UserError(f"{name}: {path} exists and is not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"{name}: cannot create the folder {path}: {error.strerror or error}") from None
    _probe_writable(name, path)
    return path


def check_output_files(name: str, folder, names) -> None:
    """Refuse, before any work, any of ``folder/<names>`` that is not a regular file or nothing."""
    for file_name in names:
        check_replaceable(name, Path(folder) / file_name)


def real_target(path) -> Path:
    """The file a write to ``path`` must replace: ``path`` itself, or the end of its symlinks."""
    path = Path(path)
    return Path(os.path.realpath(path)) if os.path.islink(path) else path


def file_mode() -> int:
    """Permission bits of a new file under the process's umask (0o666 & ~umask)."""
    try:
        with open("/proc/self/status") as f:  # reading it leaves the umask untouched
            for line in f:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write_bytes(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` so that a reader sees the old file or the new one, never half.

    A temporary file of its own in the same folder (two writers never share one,
    and ``os.replace`` stays a rename on one file system), given the mode any new
    file gets under the umask, flushed to disk, then renamed over ``path``; on
    any failure the temporary file is removed. Only a regular file (or nothing)
    is replaced; a symbolic link is written through (its target is replaced).
    A failing write (a full disk) raises OSError naming ``path``.
    """
    path = Path(path)
    check_replaceable(str(path), path)
    target = real_target(path)
    try:
        handle, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as error:
        raise OSError(error.errno, f"cannot write {path}: {error.strerror or error}") from None
    try:
        with os.fdopen(handle, "wb") as f:
            os.fchmod(f.fileno(), file_mode())
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException as error:
        if os.path.exists(tmp):
            os.remove(tmp)
        if isinstance(error, OSError):
            raise OSError(error.errno, f"cannot write {path}: {error.strerror or error}") from None
        raise
    return path


# -- locks ------------------------------------------------------------------------------

#: lock files held by this process -> [how many holders, descriptor] (re-entrant within a process)
_HELD: dict = {}


def lock_path_for(target, folder: bool = False) -> Path:
    """The lock file of ``target``: ``<folder>/.minilayerlr.lock`` or ``.<file>.lock`` beside it."""
    target = Path(target)
    if folder:
        return target / ".minilayerlr.lock"
    real = real_target(target)
    return real.parent / f".{real.name}.lock"


class RunLock:
    """An exclusive lock on what a run writes (a file or a folder), held until :meth:`release`.

    The lock is ``fcntl.flock`` on a lock file holding the owner's process id:
    the kernel drops it when the process ends however it ends, so the file a
    killed run leaves behind is stale and the next run takes it over (no
    process holds it). A second run asking for a held lock is refused at once
    with :class:`UserError` naming ``name`` and the owner's process id. Within
    one process the lock is re-entrant (a command and the library call it makes
    may both ask for it). Use as a context manager or call ``release``.
    """

    def __init__(self, name: str, target, folder: bool = False, what: str = ""):
        self.name, self.path, self.released = name, lock_path_for(target, folder), False
        self.what = what or str(target)
        self._acquire()

    def _acquire(self) -> None:
        key = str(self.path)
        if key in _HELD:
            _HELD[key][0] += 1
            return
        if fcntl is None:  # pragma: no cover
            return
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            except OSError as error:
                raise UserError(f"{self.name}: cannot create the lock file {self.path}: "
                                f"{error.strerror or error}") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as error:
                owner = _read_owner(fd)
                os.close(fd)
                if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise UserError(
                        f"{self.name}: {self.what} is being written by another minilayerlr run"
                        + (f" (process {owner})" if owner else "")
                        + f"; wait for it to finish (its lock: {self.path})") from None
                return  # a file system without locks: run unlocked, as before locks existed
            try:  # the holder we waited for may have removed the file we locked: lock the new one
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        _HELD[key] = [1, fd]

    def release(self) -> None:
        """Give the lock up (and remove its file); safe to call twice."""
        key = str(self.path)
        if self.released or key not in _HELD:
            return
        self.released = True
        _HELD[key][0] -= 1
        if _HELD[key][0] > 0:
            return
        fd = _HELD.pop(key)[1]
        try:
            os.remove(self.path)
        except OSError:
            pass
        os.close(fd)  # closing drops the flock

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()
        return False


def _read_owner(fd: int) -> str:
    try:
        text = os.pread(fd, 32, 0).decode(errors="replace").strip()
    except OSError:
        return ""
    return text if text.isdigit() else ""
