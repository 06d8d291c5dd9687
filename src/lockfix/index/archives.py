"""Distribution files as bytes: checking their hashes, reading core metadata from a whole
archive (a wheel or an sdist, from a stream or a file on disk)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from lockfix.dist.metadata import (
    CoreMetadata,
    MetadataError,
    MetadataUnavailable,
    metadata_from_archive,
)
from lockfix.dist.simple import IndexFile
from lockfix.errors import HashMismatch, IndexRequestError


def hashers(hashes: Mapping[str, str]) -> dict[str, Any]:
    """A hashlib object for every algorithm of ``hashes`` that hashlib knows."""
    out = {}
    for algo in hashes:
        try:
            out[algo] = hashlib.new(algo)
        except (ValueError, TypeError):
            continue
    return out


def verify(url: str, hashes: Mapping[str, str], fed: Mapping[str, Any]) -> None:
    """Raise :class:`HashMismatch` unless every hasher in ``fed`` gives what ``hashes`` say."""
    for algo, h in fed.items():
        actual = h.hexdigest()
        if actual != hashes[algo].lower():
            raise HashMismatch(url, algo, hashes[algo].lower(), actual)


def merge_hashes(file: IndexFile, expected: Mapping[str, str] | None) -> dict[str, str]:
    """The index's hashes of ``file`` and ``expected`` ones (e.g. the lock's), which must
    agree where both name an algorithm."""
    merged = {k.lower(): v.lower() for k, v in file.hashes.items()}
    for k, v in (expected or {}).items():
        k, v = k.lower(), v.lower()
        if k in merged and merged[k] != v:
            # The index lists a different file under this name than the one expected.
            raise HashMismatch(file.url, k, v, merged[k])
        merged[k] = v
    return merged


def parse_archive(f: IO[bytes], filename: str, project: str | None, url: str) -> CoreMetadata:
    from lockfix.dist import _zip

    try:
        return metadata_from_archive(f, filename, project)
    except MetadataUnavailable:
        raise
    except (MetadataError, _zip.ZipFormatError) as e:
        raise IndexRequestError(f"unreadable archive {filename} ({e})", url) from None


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
