"""Which uv is on PATH, and whether it is one of the uv releases that break multi-index locks.

``lockfix check`` warns about an old uv on every run, so asking ``uv --version`` (a
subprocess, 10–20 ms) is remembered per binary: by its real path, size and mtime. This
module imports only what a reused verdict needs (see :mod:`lockfix.cli._entry`).
"""

from __future__ import annotations

import functools
import json
import os
import re

from lockfix._files import replace_file

FIXED_UV = (0, 10, 10)  # first uv whose resolver keeps per-index metadata apart
_MEMO_FILE = "uv-version-v1.json"


@functools.cache
def _version() -> re.Pattern[str]:
    return re.compile(r"\buv (\d+)\.(\d+)\.(\d+)")


def _ask(uv: str) -> tuple[int, ...] | None:
    import subprocess

    try:
        result = subprocess.run(
            [uv, "--version"], capture_output=True, text=True, timeout=3, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    match = _version().search(result.stdout)
    return tuple(int(part) for part in match.groups()) if match else None


def which_uv() -> str | None:
    """The ``uv`` on PATH, as ``shutil.which("uv")`` finds it on POSIX (the first that exists,
    is executable and is no folder), without importing shutil, which loads bz2 and lzma."""
    path = os.environ.get("PATH")
    if path is None:
        try:
            path = os.confstr("CS_PATH")
        except (AttributeError, ValueError):
            path = os.defpath
    if not path:  # PATH="" finds nothing; PATH=":" looks in the current folder
        return None
    seen = set()
    for folder in os.fsdecode(path).split(os.pathsep):
        if folder in seen:
            continue
        seen.add(folder)
        name = os.path.join(folder, "uv")
        if os.path.exists(name) and os.access(name, os.F_OK | os.X_OK) and not os.path.isdir(name):
            return name
    return None


def uv_version(memo_dir: str | os.PathLike[str] | None = None) -> tuple[int, ...] | None:
    """The version of the ``uv`` on PATH, or None when there is none or it does not answer.

    With ``memo_dir``, the answer is kept there for as long as the binary is unchanged."""
    uv = which_uv()
    if uv is None:
        return None
    if memo_dir is None:
        return _ask(uv)
    try:
        real = os.path.realpath(uv)
        stat = os.stat(real)
    except OSError:
        return _ask(uv)
    identity = [stat.st_size, stat.st_mtime_ns]
    memo_path = os.path.join(memo_dir, _MEMO_FILE)
    try:
        with open(memo_path, encoding="utf-8") as stream:
            memo = json.load(stream)
        if not isinstance(memo, dict):
            memo = {}
    except (OSError, ValueError):
        memo = {}
    entry = memo.get(real)
    if isinstance(entry, list) and len(entry) == 2 and entry[0] == identity:
        return tuple(entry[1]) if isinstance(entry[1], list) else None
    version = _ask(uv)
    memo[real] = [identity, list(version) if version is not None else None]
    try:  # noqa: SIM105 (contextlib is not loaded on the reused-verdict path)
        replace_file(memo_path, json.dumps(memo).encode(), parents=True, durable=False)
    except OSError:
        pass  # remembering is only a saving
    return version


def old_uv_warning(version: tuple[int, ...] | None) -> str | None:
    """The warning to print about ``version``, or None when it is fine (or unknown)."""
    if version is None or version >= FIXED_UV:
        return None
    shown = ".".join(map(str, version))
    return (
        f"lockfix: warning: the uv on PATH is {shown}; uv before 0.10.10 breaks locks that "
        "use several indexes (astral-sh/uv#14237), so the next `uv lock` may undo a "
        "repair: upgrade uv"
    )
