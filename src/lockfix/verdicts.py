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
import tempfile
import time
from pathlib import Path
from typing import Any

from lockfix import __version__

PROJECT_FILES = ("pyproject.toml", "uv.toml")
_ENV_PREFIXES = ("LOCKFIX_", "UV_INDEX", "UV_DEFAULT_INDEX", "UV_EXTRA_INDEX_URL", "UV_FIND_LINKS")


def verdict_key(lock_text: str, lock_dir: Path, options: dict[str, Any]) -> str:
    """A digest of everything a check's outcome depends on besides the indexes."""
    digest = hashlib.sha256()
    digest.update(f"lockfix {__version__}\0".encode())
    digest.update(json.dumps(options, sort_keys=True, default=str).encode() + b"\0")
    digest.update(lock_text.encode() + b"\0")
    for name in PROJECT_FILES:
        path = lock_dir / name
        digest.update(name.encode() + b"\0")
        digest.update(path.read_bytes() if path.is_file() else b"-")
        digest.update(b"\0")
    for key in sorted(os.environ):
        if key.startswith(_ENV_PREFIXES):
            digest.update(f"{key}={os.environ[key]}\0".encode())
    return digest.hexdigest()


class VerdictCache:
    def __init__(self, root: Path) -> None:
        self.directory = root / "verdicts-v1"

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key: str) -> Any | None:
        """The stored report for ``key`` while it is still valid, else None."""
        try:
            entry = json.loads(self._path(key).read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(entry, dict) or time.time() >= entry.get("fresh_until", 0):
            return None
        return entry.get("report")

    def put(self, key: str, report: Any, fresh_until: float) -> None:
        if fresh_until <= time.time():
            return
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
            with os.fdopen(handle, "w") as stream:
                json.dump({"fresh_until": min(fresh_until, 2**40), "report": report}, stream)
            os.replace(temporary, path)
        except OSError:
            return  # a cache that cannot be written only costs time
