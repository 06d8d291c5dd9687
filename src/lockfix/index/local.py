"""Indexes on disk: ``file://`` URLs, plain folders and flat find-links folders."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import MappingProxyType
from urllib.parse import urlsplit
from urllib.request import pathname2url, url2pathname

from packaging.utils import canonicalize_name

from lockfix.dist.simple import IndexFile, ProjectPage, file_matches_project


def is_remote(index_url: str) -> bool:
    return urlsplit(index_url).scheme.lower() in ("http", "https")


def local_index_path(index_url: str, base_dir: Path | None) -> Path:
    """Path of a ``file://`` index or a plain (possibly relative) directory/file path."""
    parts = urlsplit(index_url)
    if parts.scheme.lower() == "file":
        path = Path(url2pathname(parts.path))
        if parts.netloc and parts.netloc not in ("localhost",):
            path = Path(f"//{parts.netloc}") / path
        return path
    path = Path(os.path.expanduser(index_url))
    if not path.is_absolute():
        path = (base_dir or Path.cwd()) / path
    return path


def path_to_url(path: Path) -> str:
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
