"""On-disk cache: parsed core metadata keyed by file sha256, and HTTP-cached index pages.

Layout under the cache root::

    metadata-v1/<aa>/<sha256>.json   parsed CoreMetadata (or an "unavailable" verdict)
    pages-v1.db                      hishel's SQLite store for project pages (RFC 9111)

A file's sha256 identifies its content, so a metadata entry never needs revalidation.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import platformdirs

from lockfix.metadata import CoreMetadata, MetadataUnavailable

if TYPE_CHECKING:
    from hishel import AsyncBaseStorage

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def default_cache_dir() -> Path:
    return platformdirs.user_cache_path("lockfix")


class MetadataCache:
    def __init__(self, root: Path | str | None = None) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()
        self.metadata_dir = self.root / "metadata-v1"
        self.pages_db = self.root / "pages-v1.db"

    def _path(self, sha256: str) -> Path | None:
        key = sha256.lower()
        if not _SHA256.match(key):
            return None
        return self.metadata_dir / key[:2] / f"{key}.json"

    def get(self, sha256: str) -> CoreMetadata | MetadataUnavailable | None:
        """The cached metadata, a cached :class:`MetadataUnavailable` verdict, or None."""
        path = self._path(sha256)
        if path is None:
            return None
        try:
            doc = json.loads(path.read_bytes())
            if doc.get("unavailable") is not None:
                return MetadataUnavailable(str(doc["unavailable"]))
            return CoreMetadata.from_json(doc["metadata"])
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError):
            # Corrupt or from an incompatible version: treat as a miss, it'll be rewritten.
            return None

    def put(self, sha256: str, metadata: CoreMetadata) -> None:
        self._write(sha256, {"metadata": metadata.to_json()})

    def put_unavailable(self, sha256: str, reason: str) -> None:
        self._write(sha256, {"unavailable": reason})

    def _write(self, sha256: str, doc: dict[str, Any]) -> None:
        path = self._path(sha256)
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(doc, f, separators=(",", ":"))
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def page_storage(self) -> AsyncBaseStorage:
        """A fresh hishel storage for index pages (one per client; it owns a connection)."""
        from hishel import AsyncSqliteStorage

        self.root.mkdir(parents=True, exist_ok=True)
        return AsyncSqliteStorage(database_path=self.pages_db)
