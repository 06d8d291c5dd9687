"""Clean verdicts, remembered while the index pages they rest on stay fresh.

``lockfix check`` is a pure function of the lock's bytes, the project files beside it, the
options, and what the indexes serve. Wheel metadata never changes under its hash, and an
index page is taken as unchanged while it is fresh (its max-age, or ``LOCKFIX_PAGE_TTL``).
So when the very same inputs were found clean, and every page that verdict used is still
fresh, checking again would fetch nothing and find the same: the stored report is printed
instead. Only clean verdicts are kept; anything else is computed anew.
"""

from __future__ import annotations

import hashlib
import json
import os
import time

from lockfix import __version__
from lockfix._files import NotRegularFile, read_regular, replace_file

TYPE_CHECKING = False  # the start-up path does not import typing
if TYPE_CHECKING:
    from typing import Any

PROJECT_FILES = ("pyproject.toml", "uv.toml")
_ENV_PREFIXES = ("LOCKFIX_", "UV_INDEX", "UV_DEFAULT_INDEX", "UV_EXTRA_INDEX_URL", "UV_FIND_LINKS")


def reusable() -> bool:
    """Whether verdicts may be stored and reused: not when ``LOCKFIX_PAGE_TTL`` is 0 (every
    page is revalidated on every run) or not a number of seconds (an input error)."""
    raw = os.environ.get("LOCKFIX_PAGE_TTL", "").strip()
    if not raw:
        return True
    try:
        ttl = float(raw)
    except ValueError:
        return False
    return 0 < ttl < float("inf")


def verdict_key(
    lock_bytes: bytes,
    lock_path: str,
    *,
    output_format: str,
    single_wheel: bool = False,
    concurrency: int | None = None,
) -> str:
    """A digest of everything a ``check``'s outcome depends on besides the indexes: its
    options, the lock and the project files beside it, lockfix's version and environment.

    ``lock_bytes`` are the file's bytes as read (no newline translation); ``lock_path`` is
    the path as given (the report names it). The only function that builds this key: the
    fast path (:mod:`lockfix.cli._entry`) and the command line must agree on it."""
    digest = _inputs(lock_path, output_format, single_wheel, concurrency)
    digest.update(b"lock\0" + lock_bytes)
    return digest.hexdigest()


def lineage_key(
    lock_path: str,
    *,
    output_format: str,
    single_wheel: bool = False,
    concurrency: int | None = None,
) -> str:
    """:func:`verdict_key` without the lock's bytes: the same for each version of a lock
    checked at one path the same way (:mod:`lockfix.carryover` keeps a summary per key)."""
    digest = _inputs(lock_path, output_format, single_wheel, concurrency)
    return digest.hexdigest()


def _inputs(lock_path: str, output_format: str, single_wheel: bool, concurrency: int | None) -> Any:
    lock_dir = os.path.dirname(os.path.realpath(lock_path))
    options = {"format": output_format, "single_wheel": single_wheel, "concurrency": concurrency}
    digest = hashlib.sha256()
    digest.update(f"lockfix {__version__}\0".encode())
    digest.update(json.dumps(options, sort_keys=True, default=str).encode() + b"\0")
    digest.update(os.fsencode(lock_path) + b"\0" + os.fsencode(lock_dir) + b"\0")
    for name in PROJECT_FILES:
        digest.update(name.encode() + b"\0")
        try:
            digest.update(read_regular(os.path.join(lock_dir, name)))
        except (FileNotFoundError, NotADirectoryError):
            digest.update(b"-")
        except NotRegularFile:  # a FIFO or a device: never opened; the check refuses it
            digest.update(b"!")
        digest.update(b"\0")
    for key in sorted(os.environ):
        if key.startswith(_ENV_PREFIXES):
            digest.update(f"{key}={os.environ[key]}\0".encode())
    return digest


class VerdictCache:
    # Only os/json/hashlib here: lockfix.cli._entry answers a reused verdict with this module
    # alone, before the command line (click) or anything of the pipeline is imported.
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.directory = os.path.join(root, "verdicts-v1")

    def _path(self, key: str) -> str:
        return os.path.join(self.directory, key[:2], f"{key}.json")

    def get(self, key: str) -> Any | None:
        """The stored report for ``key`` while it is still valid, else None."""
        try:
            with open(self._path(key), encoding="utf-8") as stream:
                entry = json.load(stream)
        except (OSError, ValueError):
            return None
        if not isinstance(entry, dict):
            return None
        fresh_until = entry.get("fresh_until")
        if not isinstance(fresh_until, (int, float)) or not time.time() < fresh_until:
            return None
        return entry.get("report")

    def put(self, key: str, report: Any, fresh_until: float) -> None:
        if not time.time() < fresh_until:  # a NaN is never valid
            return
        path = self._path(key)
        entry = {"fresh_until": min(fresh_until, 2**40), "report": report}
        try:
            replace_file(path, json.dumps(entry).encode(), parents=True, durable=False)
        except OSError:
            return  # a cache that cannot be written only costs time
