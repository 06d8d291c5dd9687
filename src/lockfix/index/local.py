"""Indexes on disk: ``file://`` URLs, plain folders and flat find-links folders, read
from the file system (:class:`LocalSource`); and the URL rules shared with remote indexes."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from lockfix.dist.metadata import CoreMetadata
from lockfix.dist.names import canonicalize_name
from lockfix.dist.simple import IndexFile, ProjectPage, file_matches_project, parse_simple_html
from lockfix.errors import FileUnavailable, IndexRequestError, ProjectNotFound
from lockfix.index.archives import hashers, parse_archive, sha256_file, verify


def is_remote(index_url: str) -> bool:
    return urlsplit(index_url).scheme.lower() in ("http", "https")


def local_index_path(index_url: str, base_dir: Path | None) -> Path:
    """Path of a ``file://`` index or a plain (possibly relative) directory/file path."""
    parts = urlsplit(index_url)
    if parts.scheme.lower() == "file":
        from urllib.request import url2pathname  # urllib.request loads http.client, email

        path = Path(url2pathname(parts.path))
        if parts.netloc and parts.netloc not in ("localhost",):
            path = Path(f"//{parts.netloc}") / path
        return path
    path = Path(os.path.expanduser(index_url))
    if not path.is_absolute():
        path = (base_dir or Path.cwd()) / path
    return path


def path_to_url(path: Path) -> str:
    from urllib.request import pathname2url

    return "file:" + pathname2url(str(path.resolve()))


def looks_flat(index_url: str) -> bool:
    """A URL naming an HTML document (``.../torch-2.5.0+cu124.html``) can only be a flat
    find-links page, never a Simple API root."""
    return urlsplit(index_url).path.lower().endswith((".html", ".htm"))


def project_page_url(index_url: str, name: str) -> str:
    return index_url.rstrip("/") + "/" + canonicalize_name(name) + "/"


def local_files(directory: Path, name: str, hashes: Mapping[str, Mapping[str, str]]) -> ProjectPage:
    """A flat local folder of distributions: every file of ``name`` in it."""
    files = []
    for entry in sorted(directory.iterdir()):
        if not entry.is_file() or not file_matches_project(entry.name, name):
            continue
        files.append(
            IndexFile(
                filename=entry.name,
                url=path_to_url(entry),
                hashes=MappingProxyType(dict(hashes.get(entry.name, {}))),
                size=entry.stat().st_size,
            )
        )
    return ProjectPage(
        name=canonicalize_name(name), url=path_to_url(directory) + "/", files=tuple(files)
    )


def simple_candidates(directory: Path, name: str) -> Iterable[Path]:
    """Where a local simple-layout index may keep the page of ``name``."""
    canon = canonicalize_name(name)
    yield directory / canon / "index.html"
    if name != canon:
        yield directory / name / "index.html"


class LocalSource:
    """Pages and files of indexes on disk: ``file://`` URLs and folders (simple layout, a
    flat page, or a flat folder of distributions). Counts its reads in ``stats.local``."""

    def __init__(self, base_dir: Path | None, stats: Any) -> None:
        self.base_dir, self.stats = base_dir, stats

    def page(self, index_url: str, name: str, flat: bool) -> ProjectPage:
        self.stats.local += 1
        path = local_index_path(index_url, self.base_dir)
        if path.is_file():
            return _flat_page(path, name)
        if not path.is_dir():
            raise IndexRequestError("local index not found", str(path))
        if not flat:
            for candidate in simple_candidates(path, name):
                if candidate.is_file():
                    return parse_simple_html(candidate.read_bytes(), path_to_url(candidate), name)
            if any(p.is_file() for p in path.glob("*/index.html")):
                raise ProjectNotFound(name, path_to_url(path))
        if (path / "index.html").is_file():
            return _flat_page(path / "index.html", name)
        page = local_files(path, name, {})
        if not page.files:
            raise ProjectNotFound(name, page.url)
        hashes = {
            f.filename: {"sha256": sha256_file(local_index_path(f.url, None))} for f in page.files
        }
        return local_files(path, name, hashes)

    def metadata(
        self, file: IndexFile, hashes: Mapping[str, str], project: str | None
    ) -> CoreMetadata:
        """The metadata of a local ``file``, whose bytes must have ``hashes``."""
        self.stats.local += 1
        path = local_index_path(file.url, self.base_dir)
        if not path.is_file():
            raise FileUnavailable("local file not found", file.url)
        fed = hashers(hashes)
        with path.open("rb") as f:
            if fed:
                for block in iter(lambda: f.read(1 << 20), b""):
                    for h in fed.values():
                        h.update(block)
                verify(file.url, hashes, fed)
                f.seek(0)
            return parse_archive(f, file.filename, project, file.url)


def _flat_page(path: Path, name: str) -> ProjectPage:
    page = parse_simple_html(path.read_bytes(), path_to_url(path), name, flat=True)
    if not page.files:
        raise ProjectNotFound(name, page.url)
    return page
