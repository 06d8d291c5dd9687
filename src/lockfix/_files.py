"""Reading input files that may be anything a path can name.

A FIFO named ``uv.lock`` blocks ``open()`` until some writer appears, and a character
device such as ``/dev/zero`` never reaches end of file. Input files are therefore looked
at before they are opened, opened without blocking, and checked again on the open
descriptor (the path may have been swapped in between): only a regular file is read.

Writing (:func:`replace_file`) is atomic and durable: a reader sees the old file or the new
one, never part of one, and after a crash the file is the old or the new one.

Only ``os``, ``stat`` and ``errno`` here: :mod:`lockfix.cli._entry` reads the lock with this
before anything else of lockfix is loaded.
"""

from __future__ import annotations

import errno
import os
import stat

_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NONBLOCK", 0)  # a FIFO opens at once instead of waiting for a writer
    | getattr(os, "O_NOCTTY", 0)  # a terminal device never becomes our controlling tty
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)


class NotRegularFile(OSError):
    """The path names a FIFO, a device, a socket or a folder, not a regular file."""

    def __init__(self, path: str | os.PathLike[str], mode: int) -> None:
        super().__init__(errno.EINVAL, f"{kind(mode)}, not a regular file", os.fspath(path))
        self.mode = mode


def kind(mode: int) -> str:
    """What a ``st_mode`` that is no regular file names: ``a FIFO``, ``a character device``..."""
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a special file"


def is_regular_or_absent(path: str | os.PathLike[str]) -> bool:
    """True for a regular file (symlinks followed) or a path that names nothing."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except FileNotFoundError:
        return True
    except OSError:
        return True  # unreadable, a loop, ...: whoever opens it reports that


def read_regular(path: str | os.PathLike[str]) -> bytes:
    """The bytes of the regular file ``path``; :class:`NotRegularFile` for anything else.

    Raises :class:`OSError` as ``open()`` would (missing, unreadable, ...)."""
    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
        raise NotRegularFile(path, mode)
    fd = os.open(path, _FLAGS)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise NotRegularFile(path, info.st_mode)
        chunks = []
        while True:
            chunk = os.read(fd, max(info.st_size + 1, 65536))
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


TEMP_MARK = ".lockfix-"  # temp files are named .<target name>.lockfix-<random>.tmp


def temp_prefix(target: str | os.PathLike[str]) -> str:
    """The name every temp file :func:`replace_file` makes for ``target`` starts with."""
    return f".{os.path.basename(target)}{TEMP_MARK}"


def replace_file(
    target: str | os.PathLike[str],
    data: bytes,
    mode: int = 0o600,
    *,
    parents: bool = False,
    durable: bool = True,
) -> None:
    """Replace ``target`` (symlinks already resolved) by ``data``; with ``parents``, its
    folder and the folder's parents are made first if missing.

    The bytes go to a new temp file in the target's own folder, are fsynced and given
    ``mode``, then the temp file is renamed over the target and the folder is fsynced, so
    that the rename itself survives a crash. On any error the temp file is removed and the
    target is untouched; the error propagates (:class:`OSError`).

    ``durable=False`` leaves out both fsyncs, for cache entries, whose readers check what
    they read and treat anything unreadable as a miss: readers still see the old file or
    the new one, never part of one, but after a crash the entry may be lost or empty.
    An fsync costs milliseconds, and a cold check writes thousands of entries."""
    folder = os.path.dirname(target) or os.curdir
    if parents:
        os.makedirs(folder, exist_ok=True)
    temporary = os.path.join(folder, f"{temp_prefix(target)}{os.urandom(8).hex()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if durable:
                os.fsync(fd)
            os.fchmod(fd, mode)
        finally:
            os.close(fd)
        os.replace(temporary, target)
    except BaseException:
        try:  # noqa: SIM105 (no contextlib: see the module's docstring)
            os.unlink(temporary)
        except OSError:
            pass
        raise
    if durable:
        _fsync_folder(folder)


def _fsync_folder(folder: str) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as error:  # some file systems cannot fsync a folder
        if error.errno not in (errno.EINVAL, errno.EBADF, errno.ENOTSUP):
            raise
    finally:
        os.close(fd)
