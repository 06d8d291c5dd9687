"""Reading and writing the lock file safely: clear errors, atomic writes, no lost updates.

Reading (:func:`read_lock_text`) turns every way a path can be wrong — missing, a
directory, unreadable, empty, not UTF-8 — into one :class:`InputError` line naming the
file. A byte-order mark is refused (by the parser): uv never writes one.

Writing (:func:`write_atomically`):

- **atomic**: the text goes to a temp file in the target's own folder
  (``.<name>.lockfix-<random>.tmp``), is fsynced, given the target's mode, and renamed over
  the target; the folder is fsynced after the rename (:func:`lockfix._files.replace_file`,
  which every file lockfix writes goes through). A reader sees the old or the new
  lock, never a mix.
- **symlinks** are written through: the link's final target is replaced, the link stays.
- **read-only** targets (no write bit, or not writable by this user) are refused rather
  than silently replaced by the rename.
- **serialized**: writers hold an exclusive ``flock`` on the target's folder (its inode,
  unlike the lock file's, survives the rename), and compare-and-swap: if the file is no
  longer the text this process read, the write is refused (exit 2) unless it already
  holds exactly the new text. Two concurrent repairs therefore never interleave and
  never overwrite each other's result with a stale one.
- **signals**: SIGINT, SIGTERM (and SIGHUP) are held back during the write and delivered
  right after it, so an interrupted run leaves the old or the new lock and no temp file.
  ``kill -9`` can still leave a temp file behind; it is harmless (a dot file no tool
  reads) and the next run that can take the folder lock deletes stale
  ``.<name>.lockfix-*.tmp`` files of that lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lockfix._files import NotRegularFile, kind, read_regular, replace_file, temp_prefix
from lockfix.errors import InputError

__all__ = ["InputError", "check_output", "read_lock_text", "temp_files", "write_atomically"]

_HELD_SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}

# What this process read from each lock file (resolved path → bytes), for compare-and-swap.
_read_bytes: dict[Path, bytes] = {}


def _reason(error: OSError) -> str:
    return error.strerror or type(error).__name__


def read_lock_text(path: Path) -> str:
    if not path.exists():
        if path.is_symlink():
            raise InputError(f"{path}: dangling symlink (its target does not exist)")
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not a lock file")
    try:
        data = read_regular(path)
    except NotRegularFile as error:
        raise InputError(f"{path}: {error.strerror}") from None
    except OSError as error:
        raise InputError(f"{path}: cannot read: {_reason(error)}") from None
    if not data.strip():
        raise InputError(f"{path}: the file is empty")
    if b"\x00" in data:
        raise InputError(f"{path}: not a text file (it contains NUL bytes)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a text file (invalid UTF-8)") from None
    target = path.resolve()
    _read_bytes[target] = data
    clean_stale_temp_files(target)
    return text


def temp_files(target: Path) -> list[Path]:
    """The temp files :func:`write_atomically` may leave beside ``target`` (kill -9)."""
    prefix = temp_prefix(target)
    try:
        return [p for p in target.parent.iterdir() if p.name.startswith(prefix)]
    except OSError:
        return []


def clean_stale_temp_files(target: Path) -> None:
    """Delete temp files of ``target`` left by a killed run, if no writer is active now."""
    if not temp_files(target):
        return
    with contextlib.suppress(OSError), _folder_lock(target.parent, block=False) as held:
        if held:
            for stale in temp_files(target):
                if stale.name.endswith(".tmp"):
                    stale.unlink(missing_ok=True)


@contextlib.contextmanager
def _folder_lock(folder: Path, *, block: bool = True) -> Iterator[bool]:
    fd = os.open(folder, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if block else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)  # closing releases the flock


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Defer SIGINT/SIGTERM/SIGHUP until the block is done, then deliver them.

    Python-level handlers, not a signal mask: a mask only covers the calling thread, and a
    process-directed SIGTERM would still kill the process through any other thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    previous: dict[int, Any] = {}

    def hold(signum: int, _frame: object) -> None:
        pending.append(signum)

    try:
        for sig in _HELD_SIGNALS:
            handler = signal.getsignal(sig)
            previous[sig] = signal.SIG_DFL if handler is None else handler
            signal.signal(sig, hold)
        yield
    finally:
        for held, handler in previous.items():
            signal.signal(held, handler)
        for signum in dict.fromkeys(pending):
            signal.raise_signal(signum)


def _read_only(target: Path) -> bool:
    mode = target.stat().st_mode
    return not (mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)) or not os.access(
        target, os.W_OK
    )


def check_output(path: Path) -> None:
    """Refuse an output path that names anything but a regular file or nothing yet: the
    rename would replace a device (``/dev/null``) by a file, and reading a FIFO or a device
    for compare-and-swap would block or never end."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return
    except OSError as error:
        raise InputError(f"{path}: cannot write: {_reason(error)}") from None
    if stat.S_ISDIR(mode):
        raise InputError(f"{path}: cannot write: is a directory")
    if not stat.S_ISREG(mode):
        raise InputError(f"{path}: refusing to write: {kind(mode)}, not a regular file")


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one rename, keeping the file's mode and the symlink.

    Raises :class:`InputError` (exit 2, file untouched) when the target is not a regular
    file, is read-only, the folder cannot be written, or another run changed the file
    since this one read it."""
    data = text.encode("utf-8")
    check_output(path)
    target = path.resolve()
    folder = target.parent
    if not folder.is_dir():
        raise InputError(f"{path}: cannot write: folder {folder} does not exist")
    try:
        with _folder_lock(folder):
            exists = target.exists()
            if exists and target.is_dir():
                raise InputError(f"{path}: cannot write: is a directory")
            check_output(target)  # again, under the folder lock
            if exists and _read_only(target):
                raise InputError(f"{path}: refusing to write: the file is read-only")
            current = read_regular(target) if exists else None
            expected = _read_bytes.get(target)
            if current == data:
                _read_bytes[target] = data
                return  # another run already wrote exactly this
            if expected is not None and current != expected:
                raise InputError(
                    f"{path}: refusing to write: the file changed while lockfix was running "
                    "(another run?); run lockfix again"
                )
            for stale in temp_files(target):
                stale.unlink(missing_ok=True)
            mode = stat.S_IMODE(target.stat().st_mode) if exists else 0o644
            with _signals_held():
                replace_file(target, data, mode)
            _read_bytes[target] = data
    except InputError:
        raise
    except OSError as error:
        raise InputError(f"{path}: cannot write: {_reason(error)}") from None
