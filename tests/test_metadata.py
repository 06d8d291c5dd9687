"""Core metadata parsing, sdist rules, and the zip reader used for HTTP range reads."""

from __future__ import annotations

import contextlib
import io
import tarfile
import zipfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lockfix import _zip
from lockfix.cache import MetadataCache
from lockfix.metadata import (
    CoreMetadata,
    MetadataError,
    MetadataUnavailable,
    check_sdist_metadata,
    metadata_from_bytes,
    parse_core_metadata,
    read_wheel_metadata,
)

TORCH_LIKE = b"""Metadata-Version: 2.4
Name: torch
Version: 2.7.1
Summary: Tensors and Dynamic neural networks
Author-email: =?utf-8?q?J=C3=BCrgen?= <x@example.org>
Requires-Python: >=3.9.0
Requires-Dist: filelock
Requires-Dist: nvidia-cuda-nvrtc-cu12==12.6.77; platform_system == "Linux" and
  platform_machine == "x86_64"
Requires-Dist: filelock
Requires-Dist: optree>=0.13.0; extra == "optree"
Provides-Extra: optree
Provides-Extra: opt-einsum
Description-Content-Type: text/markdown

# Long description
Requires-Dist: not-a-header
"""


def test_parse_core_metadata() -> None:
    md = parse_core_metadata(TORCH_LIKE)
    assert md.name == "torch" and md.version == "2.7.1"
    assert md.metadata_version == "2.4"
    assert md.requires_python == ">=3.9.0"
    assert md.requires_dist == (
        "filelock",
        "nvidia-cuda-nvrtc-cu12==12.6.77; "
        'platform_system == "Linux" and platform_machine == "x86_64"',
        'optree>=0.13.0; extra == "optree"',
    )
    assert md.provides_extra == ("optree", "opt-einsum")
    assert md.dynamic == ()
    assert CoreMetadata.from_json(md.to_json()) == md


def test_parse_core_metadata_bom_crlf_and_garbage() -> None:
    md = parse_core_metadata(b"\xef\xbb\xbfMetadata-Version: 2.1\r\nName: a\r\nVersion: 1\r\n\r\n")
    assert (md.name, md.version, md.metadata_version) == ("a", "1", "2.1")
    md = parse_core_metadata(b"Name: b\nVersion: 2\nSummary: \xff\xfe bad utf8\n")
    assert md.metadata_version == "1.0"
    with pytest.raises(MetadataError):
        parse_core_metadata(b"Summary: nothing\n")
    with pytest.raises(MetadataError):
        parse_core_metadata(b"<html>not metadata</html>")


@given(st.binary(max_size=2000))
def test_parse_core_metadata_total(data: bytes) -> None:
    with contextlib.suppress(MetadataError):
        parse_core_metadata(data)


def _pkg_info(version: str, *extra: str) -> CoreMetadata:
    text = f"Metadata-Version: {version}\nName: s\nVersion: 1.0\n" + "".join(
        f"{line}\n" for line in extra
    )
    return parse_core_metadata(text.encode())


def test_sdist_rules() -> None:
    with pytest.raises(MetadataUnavailable, match=r"2\.1"):
        check_sdist_metadata(_pkg_info("2.1", "Requires-Dist: a"))
    with pytest.raises(MetadataUnavailable, match="requires-dist"):
        check_sdist_metadata(_pkg_info("2.2", "Dynamic: Requires-Dist"))
    with pytest.raises(MetadataUnavailable, match="provides-extra"):
        check_sdist_metadata(_pkg_info("2.3", "Dynamic: provides-extra"))
    ok = check_sdist_metadata(_pkg_info("2.2", "Dynamic: Description", "Requires-Dist: a"))
    assert ok.requires_dist == ("a",)
    assert check_sdist_metadata(_pkg_info("2.10")).metadata_version == "2.10"


def _wheel(members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _sdist(members: dict[str, bytes], fmt: str = "tar.gz") -> bytes:
    buf = io.BytesIO()
    if fmt == "zip":
        return _wheel(members)
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in members.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def test_wheel_and_sdist_extraction() -> None:
    meta = b"Metadata-Version: 2.2\nName: pkg\nVersion: 1.0\nRequires-Dist: dep\n"
    wheel = _wheel(
        {
            "pkg/__init__.py": b"",
            "pkg/_vendor/other-1.0.dist-info/METADATA": b"Name: other\nVersion: 1\n",
            "pkg-1.0.dist-info/METADATA": meta,
        }
    )
    md = metadata_from_bytes(wheel, "pkg-1.0-py3-none-any.whl", "pkg")
    assert md.requires_dist == ("dep",)
    for fmt in ("tar.gz", "zip"):
        data = _sdist(
            {"pkg-1.0/sub/PKG-INFO": b"Name: wrong\nVersion: 9\n", "pkg-1.0/PKG-INFO": meta}, fmt
        )
        assert metadata_from_bytes(data, f"pkg-1.0.{fmt}").name == "pkg"
    dynamic = _sdist({"pkg-1.0/PKG-INFO": meta + b"Dynamic: Requires-Dist\n"})
    with pytest.raises(MetadataUnavailable):
        metadata_from_bytes(dynamic, "pkg-1.0.tar.gz")
    with pytest.raises(MetadataUnavailable):
        metadata_from_bytes(_sdist({"pkg-1.0/setup.py": b""}), "pkg-1.0.tar.gz")
    with pytest.raises(MetadataError):
        metadata_from_bytes(b"not a zip", "pkg-1.0-py3-none-any.whl")


def test_zip_bomb_metadata_is_refused() -> None:
    bomb = _wheel({"pkg-1.0.dist-info/METADATA": b"Name: a\n" + b" " * (11 * 1024 * 1024)})
    assert len(bomb) < 100_000
    with pytest.raises(MetadataError):
        read_wheel_metadata(io.BytesIO(bomb))
    members = _zip.parse_central_directory(
        bomb[_zip.find_central_directory(bomb, 0, len(bomb)).offset :]
    )
    with pytest.raises(_zip.ZipFormatError):
        _zip.decompress_member(members[0], b"", 10 * 1024 * 1024)


def _read_via_tail(data: bytes, n: int) -> bytes:
    """What the range reader does, on local bytes: tail → central directory → member."""
    tail_start = max(0, len(data) - n)
    cd = _zip.find_central_directory(data[tail_start:], tail_start, len(data))
    members = _zip.parse_central_directory(data[cd.offset : cd.offset + cd.size])
    m = _zip.find_metadata_member(members, "pkg")
    chunk = data[m.header_offset :]
    start, end = _zip.local_data_span(chunk, m)
    return _zip.decompress_member(m, chunk[start:end], 10 * 1024 * 1024)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(min_value=1, max_value=5000),
    comment=st.binary(max_size=300),
    stored=st.booleans(),
)
def test_range_reader_any_tail_size(n: int, comment: bytes, stored: bool) -> None:
    meta = b"Metadata-Version: 2.1\nName: pkg\nVersion: 1.0\n" + b"Requires-Dist: x\n" * 20
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("pkg/data.bin", bytes(range(256)) * 8)
        zf.writestr("pkg-1.0.dist-info/METADATA", meta)
        zf.writestr("pkg-1.0.dist-info/RECORD", b"")
        zf.comment = comment
    data = buf.getvalue()
    try:
        assert _read_via_tail(data, n) == meta
    except _zip.ZipFormatError:
        # Only acceptable when the tail is too short to hold the end-of-central-directory.
        assert n < 22 + len(comment)


def test_range_reader_zip64(monkeypatch: pytest.MonkeyPatch) -> None:
    meta = b"Metadata-Version: 2.1\nName: pkg\nVersion: 1.0\n"
    # Make zipfile write ZIP64 records (EOCD64 + extra fields) for a small archive.
    monkeypatch.setattr(zipfile, "ZIP64_LIMIT", 16)
    monkeypatch.setattr(zipfile, "ZIP_FILECOUNT_LIMIT", 1)
    data = _wheel({"pkg/a.py": b"x" * 100, "pkg-1.0.dist-info/METADATA": meta})
    assert _zip.EOCD64_SIG in data
    assert _read_via_tail(data, len(data)) == meta


def test_metadata_cache_roundtrip(tmp_path: Path) -> None:
    cache = MetadataCache(tmp_path)
    md = parse_core_metadata(TORCH_LIKE)
    key = "AB" * 32
    assert cache.get(key) is None
    cache.put(key, md)
    assert cache.get(key.lower()) == md
    cache.put_unavailable("cd" * 32, "dynamic")
    got = cache.get("cd" * 32)
    assert isinstance(got, MetadataUnavailable) and "dynamic" in str(got)
    cache.put("not-a-hash", md)  # ignored
    assert cache.get("not-a-hash") is None
    path = next(tmp_path.rglob("abab*.json"))
    path.write_text("{corrupt")
    assert cache.get(key) is None
    assert not list(tmp_path.rglob(".tmp-*"))
