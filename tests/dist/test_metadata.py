"""Core metadata parsing, sdist rules, and the zip reader used for HTTP range reads."""

from __future__ import annotations

import contextlib
import email.parser
import email.policy
import importlib.metadata
import io
import re
import shutil
import sqlite3
import struct
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from packaging.metadata import parse_email

from lockfix.dist import _zip, metadata
from lockfix.dist.metadata import (
    REQUIREMENTS_DIGEST,
    CoreMetadata,
    MetadataError,
    MetadataUnavailable,
    check_sdist_metadata,
    metadata_from_bytes,
    parse_core_metadata,
    read_wheel_metadata,
)
from lockfix.index import cache
from lockfix.index.cache import MetadataCache

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
    assert cache.get(key.lower()) == md  # from memory, before any write
    assert not cache.database.exists()
    cache.put_unavailable("cd" * 32, "dynamic")
    cache.put("not-a-hash", md)  # ignored
    assert cache.get("not-a-hash") is None
    cache.close()  # one transaction
    again = MetadataCache(tmp_path)
    assert again.get(key) == md and again.entries() == 2
    got = again.get("cd" * 32)
    assert isinstance(got, MetadataUnavailable) and "dynamic" in str(got)
    with sqlite3.connect(again.database) as db:  # an entry from another version: a miss
        db.execute("UPDATE metadata SET doc = '{corrupt' WHERE sha256 = ?", (key.lower(),))
    assert again.get(key) is None
    again.put(key, md)
    again.close()
    assert MetadataCache(tmp_path).get(key) == md


def test_metadata_cache_survives_a_damaged_or_removed_database(tmp_path: Path) -> None:
    md = parse_core_metadata(TORCH_LIKE)
    cache = MetadataCache(tmp_path / "c")
    cache.put("ab" * 32, md)
    cache.close()
    cache.database.write_bytes(b"this is not a database" * 100)
    damaged = MetadataCache(tmp_path / "c")
    assert damaged.get("ab" * 32) is None  # set aside, started afresh
    damaged.put("ab" * 32, md)
    damaged.close()
    assert MetadataCache(tmp_path / "c").get("ab" * 32) == md
    assert (tmp_path / "c" / "metadata-v2.damaged").exists()
    shutil.rmtree(tmp_path / "c")
    gone = MetadataCache(tmp_path / "c")
    assert gone.get("ab" * 32) is None
    gone.put("ab" * 32, md)
    gone.close()
    assert MetadataCache(tmp_path / "c").get("ab" * 32) == md


_HOLD_LOCK = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.read()
db.execute("ROLLBACK")
"""


@pytest.mark.parametrize("connected", [False, True], ids=["locked-first", "locked-later"])
def test_a_database_another_process_keeps_locked_is_skipped_not_discarded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, connected: bool
) -> None:
    monkeypatch.setattr(cache, "BUSY_TIMEOUT", 0.2, raising=False)
    md = parse_core_metadata(TORCH_LIKE)
    first = MetadataCache(tmp_path)
    first.put("ab" * 32, md)
    first.put("cd" * 32, md)
    first.close()
    busy = MetadataCache(tmp_path)
    if connected:
        assert busy.get("cd" * 32) == md
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_LOCK, str(busy.database)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        assert busy.get("ab" * 32) is None  # waited, then went on without the cache
        busy.put("ef" * 32, md)
        busy.close()  # the write is dropped, not forced
        assert sorted(p.name for p in tmp_path.iterdir()) == ["metadata-v2.sqlite"]
    finally:
        holder.communicate("", timeout=60)
    assert holder.returncode == 0
    assert busy.get("ab" * 32) is None  # not tried again in this run
    healthy = MetadataCache(tmp_path)
    assert healthy.get("ab" * 32) == md and healthy.entries() == 2
    healthy.close()


# --- finding METADATA without parsing the whole central directory ----------------------


def _directory(data: bytes) -> bytes:
    cd = _zip.find_central_directory(data, 0, len(data))
    return data[cd.offset : cd.offset + cd.size]


def _both_ways(directory: bytes, project: str | None = "pkg") -> _zip.Member | None:
    """metadata_member, checked against the full parse (None: both refuse)."""
    try:
        full = _zip.find_metadata_member(_zip.parse_central_directory(directory), project)
    except _zip.ZipFormatError:
        full = None
    try:
        fast = _zip.metadata_member(directory, project)
    except _zip.ZipFormatError:
        fast = None
    assert fast == full
    return fast


def _custom_zip(entries: list[tuple[str, bytes, bytes, bytes]]) -> bytes:
    """A zip whose members carry the given (name, data, extra, comment)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data, extra, comment in entries:
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.extra, info.comment = extra, comment
            zf.writestr(info, data)
    return buf.getvalue()


def test_metadata_member_fixture_wheels() -> None:
    from fixtures.builder import build_wheel_bytes

    for spec in (
        {"name": "pkg", "version": "1.0", "requires_dist": ["dep>=1"]},
        {"name": "Zope.Interface", "version": "5.0.post1", "pad": 5000},
        {"name": "torch", "version": "2.7.1+cu126"},
    ):
        for tag in ("py3-none-any", "cp311-cp311-manylinux_2_28_x86_64"):
            wheel, metadata = build_wheel_bytes(spec, tag)
            member = _both_ways(_directory(wheel), spec["name"])
            assert member is not None and member.name.endswith(".dist-info/METADATA")
            chunk = wheel[member.header_offset :]
            start, end = _zip.local_data_span(chunk, member)
            assert _zip.decompress_member(member, chunk[start:end], 1 << 20) == metadata


META = b"Metadata-Version: 2.1\nName: pkg\nVersion: 1.0\n"


@pytest.mark.parametrize(
    ("members", "expected"),
    [
        # many entries, METADATA in the middle and with a non-ASCII neighbour
        (
            {**{f"pkg/m{i}.py": b"" for i in range(300)}, "pkg-1.0.dist-info/METADATA": META}
            | {"pkg/é.py": b"", "pkg-1.0.dist-info/RECORD": b""},
            "pkg-1.0.dist-info/METADATA",
        ),
        # two top-level dist-infos: the project's wins, whichever comes first
        (
            {"other-1.0.dist-info/METADATA": META, "pkg-1.0.dist-info/METADATA": META},
            "pkg-1.0.dist-info/METADATA",
        ),
        (
            {"pkg-1.0.dist-info/METADATA": META, "other-1.0.dist-info/METADATA": META},
            "pkg-1.0.dist-info/METADATA",
        ),
        # vendored (nested) dist-info after the real one
        (
            {"pkg-1.0.dist-info/METADATA": META, "pkg/_vendor/x-1.dist-info/METADATA": META},
            "pkg-1.0.dist-info/METADATA",
        ),
        # only a look-alike
        ({"pkg-1.0.dist-info/METADATA.bak": META}, None),
        ({"pkg/_vendor/x-1.dist-info/METADATA": META}, None),
        ({"pkg-1.0.dist-info/METADATA/x": META}, None),
        # a look-alike next to the real one
        (
            {"pkg-1.0.dist-info/METADATA.bak": META, "pkg-1.0.dist-info/METADATA": META},
            "pkg-1.0.dist-info/METADATA",
        ),
        # the name only inside member data (never part of the central directory)
        ({"pkg/notes.txt": b"see pkg-1.0.dist-info/METADATA", "pkg/a.py": b""}, None),
    ],
)
def test_metadata_member_tricky_archives(members: dict[str, bytes], expected: str | None) -> None:
    member = _both_ways(_directory(_wheel(members)))
    assert (member.name if member else None) == expected


def test_metadata_member_name_in_extra_or_comment() -> None:
    real = ("pkg-1.0.dist-info/METADATA", META, b"", b"")
    fake_name = b"fake-1.0.dist-info/METADATA"
    # A complete fake central header hidden in an earlier member's comment.
    fake = struct.pack("<4s6H3I5HII", b"PK\x01\x02", 20, 20, 0, 0, 0, 0, 0, 5, 5,
                       len(fake_name), 0, 0, 0, 0, 0, 0) + fake_name  # fmt: skip
    for entries, expected in (
        ([("pkg/a.py", b"", b"", fake), real], "pkg-1.0.dist-info/METADATA"),
        ([("pkg/a.py", b"", b"", fake)], None),
        ([("pkg/a.py", b"", b"", fake_name)], None),
        ([("pkg/a.py", b"", b"\xfe\xca" + struct.pack("<H", len(fake)) + fake, b"")], None),
        (
            [real, ("pkg/z.py", b"", b"", b"pkg-1.0.dist-info/METADATA")],
            "pkg-1.0.dist-info/METADATA",
        ),
        ([("pkg/a.py", b"", b"", fake), ("pkg/b.py", b"", b"", b"")], None),
    ):
        member = _both_ways(_directory(_custom_zip(entries)))
        assert (member.name if member else None) == expected


def test_metadata_member_zip64(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(zipfile, "ZIP64_LIMIT", 16)
    monkeypatch.setattr(zipfile, "ZIP_FILECOUNT_LIMIT", 1)
    data = _wheel({"pkg/a.py": b"x" * 100, "pkg-1.0.dist-info/METADATA": META * 3})
    member = _both_ways(_directory(data))
    assert member is not None and member.uncompressed_size == len(META) * 3


@settings(max_examples=200, deadline=None)
@given(
    names=st.lists(
        st.sampled_from(
            [
                "pkg/a.py",
                "pkg-1.0.dist-info/METADATA",
                "pkg-1.0.dist-info/RECORD",
                "x-2.dist-info/METADATA",
                "pkg/v/y-1.dist-info/METADATA",
                "pkg/ü.py",
                "pkg-1.0.dist-info/METADATA.bak",
                "a.dist-info/METADATA",
            ]
        ),
        max_size=8,
        unique=True,
    ),
    comments=st.lists(st.sampled_from([b"", b"x.dist-info/METADATA", b"PK\x01\x02"]), max_size=8),
)
def test_metadata_member_agrees_with_full_parse(names: list[str], comments: list[bytes]) -> None:
    entries = [(n, b"data", b"", c) for n, c in zip(names, comments + [b""] * 8, strict=False)]
    _both_ways(_directory(_custom_zip(entries)))


@given(st.binary(max_size=400), st.binary(max_size=60))
def test_metadata_member_garbage(prefix: bytes, suffix: bytes) -> None:
    """Any bytes: a Member or ZipFormatError, nothing else."""
    for data in (prefix, prefix + b".dist-info/METADATA" + suffix, b"PK\x01\x02" + prefix):
        with contextlib.suppress(_zip.ZipFormatError):
            _zip.metadata_member(data + _METADATA_TAIL + suffix, "pkg")


_METADATA_TAIL = b"a.dist-info/METADATA"


_LINES = [
    "Metadata-Version: 2.1",
    "Name: a",
    "Version: 1",
    "Requires-Dist: x>=1;",
    '  python_version < "3.12"',
    "\t",
    " ",
    "",
    "Requires-Dist: body",
    "Provides-Extra: e",
    "not a header",
    "Dynamic: Requires-Dist",
]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(_LINES), st.sampled_from(["\n", "\r\n", "\r", "\r\r\n", ""])),
        max_size=14,
    )
)
def test_parse_core_metadata_reads_only_the_headers(lines: list[tuple[str, str]]) -> None:
    """Cutting the document after the first empty line changes nothing."""
    from unittest import mock

    from lockfix.dist import metadata

    data = "".join(line + end for line, end in lines).encode()
    never = re.compile(r"(?!)")

    def parse() -> CoreMetadata | str:
        try:
            return parse_core_metadata(data)
        except MetadataError as e:
            return str(e)

    with mock.patch.object(metadata, "_empty_line", lambda: never):
        whole = parse()
    assert parse() == whole


def _email_headers(text: str) -> dict[str, list[str]]:
    msg = email.parser.Parser(policy=email.policy.compat32).parsestr(text, headersonly=True)
    out: dict[str, list[str]] = {}
    for key, value in msg.items():
        out.setdefault(key.lower(), []).append(str(value))
    return out


_NAMES = ["Name", "name", "Requires-Dist", "requires-dist", "From", "X Y", "Ünïcode", "", "a:b"]
_VALUES = ["", " x", "\tx>=1 ; extra == 'a'", "  two  words ", "é", "From x", ":", " "]


@settings(max_examples=500, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.tuples(
                st.sampled_from(_NAMES), st.sampled_from([":", " :", ""]), st.sampled_from(_VALUES)
            ),
            st.tuples(
                st.just(""), st.sampled_from(["", " ", "\t", "From "]), st.sampled_from(_VALUES)
            ),
        ).map("".join),
        max_size=10,
    ),
    st.sampled_from(["\n", "\r\n", "\x0c\n", ""]),
)
def test_plain_headers_read_as_email_parser_does(lines: list[str], end: str) -> None:
    text = "".join(line + "\n" for line in lines) + end
    fast = metadata._plain_headers(text)
    if fast is not None:
        assert fast == _email_headers(text)
    if "\r" not in text and "\x0c" not in text and "From " not in text:
        assert fast is not None


def test_plain_headers_take_real_metadata() -> None:
    """METADATA as wheel builders write it is read without the email package."""
    from fixtures.builder import build_wheel_bytes

    spec = {"name": "torch", "version": "2.7.1", "requires-dist": ["a>=1; extra == 'x'", "b"]}
    _, built = build_wheel_bytes(spec, "py3-none-any")
    for doc in (TORCH_LIKE.decode(), built.decode()):
        head = doc.split("\n\n")[0] + "\n"
        fast = metadata._plain_headers(head)
        assert fast is not None and fast == _email_headers(head)
        assert fast["requires-dist"]


def test_core_metadata_json_has_every_field() -> None:
    md = parse_core_metadata(TORCH_LIKE)
    expected = {
        k: list(v) if isinstance(v, tuple) else v
        for k, v in vars(md).items()
        if not k.startswith("_")  # a cached digest, not a field
    }
    assert md.to_json() == expected
    assert md.to_json(digest=True) == {**expected, REQUIREMENTS_DIGEST: md.requirements_digest}


def _installed_metadata() -> list[bytes]:
    """The METADATA of every distribution installed where the tests run: real documents
    written by many build backends over many years."""
    found: dict[str, bytes] = {}
    for dist in importlib.metadata.distributions():
        text = dist.read_text("METADATA")
        if text is not None:
            found.setdefault(text, text.encode())
    return list(found.values())


def test_parse_core_metadata_reads_real_metadata_as_packaging_does() -> None:
    """The fields lockfix reads, as ``packaging.metadata.parse_email`` reads them (lockfix
    only unfolds lines and drops repeated values) on real METADATA files."""
    documents = _installed_metadata()
    assert len(documents) >= 20
    for data in documents:
        md = parse_core_metadata(data)
        raw, unparsed = parse_email(data)
        assert not {"name", "version", "requires-dist", "requires-python"} & set(unparsed)
        assert md.name == raw["name"] and md.version == raw["version"]
        assert md.metadata_version == raw["metadata_version"]
        assert md.requires_python == raw.get("requires_python")
        assert md.requires_dist == tuple(dict.fromkeys(raw.get("requires_dist", [])))
        assert md.provides_extra == tuple(dict.fromkeys(raw.get("provides_extra", [])))
        assert md.dynamic == tuple(dict.fromkeys(raw.get("dynamic", [])))
