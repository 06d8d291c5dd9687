"""Minimal zip parsing for reading one member of a remote wheel through HTTP ranges.

Only what is needed to find ``*.dist-info/METADATA`` from the end of the archive:
end-of-central-directory (incl. ZIP64), central directory entries, local header.
Every size read from the archive is checked, because the bytes come from the network.
"""

from __future__ import annotations

import re
import struct
import zlib
from dataclasses import dataclass

from lockfix.dist.names import canonicalize_name

EOCD_SIG = b"PK\x05\x06"
EOCD64_LOCATOR_SIG = b"PK\x06\x07"
EOCD64_SIG = b"PK\x06\x06"
CDH_SIG = b"PK\x01\x02"
LFH_SIG = b"PK\x03\x04"

EOCD_SIZE = 22
EOCD64_LOCATOR_SIZE = 20
EOCD64_SIZE = 56
CDH_SIZE = 46
LFH_SIZE = 30


class ZipFormatError(Exception):
    """The bytes are not a zip archive we can read remotely (caller falls back)."""


@dataclass(frozen=True, slots=True)
class CentralDirectory:
    offset: int
    size: int
    entries: int


@dataclass(frozen=True, slots=True)
class Member:
    name: str
    method: int
    flags: int
    crc: int
    compressed_size: int
    uncompressed_size: int
    header_offset: int
    extra_len: int


def find_central_directory(tail: bytes, tail_start: int, total: int) -> CentralDirectory:
    """Locate the central directory using the last bytes of the archive.

    ``tail`` holds bytes ``[tail_start, total)``.
    """
    pos = len(tail)
    while True:
        pos = tail.rfind(EOCD_SIG, 0, pos)
        if pos < 0:
            raise ZipFormatError("end of central directory not found")
        if pos + EOCD_SIZE <= len(tail):
            (comment_len,) = struct.unpack_from("<H", tail, pos + 20)
            # A signature inside the comment would not account for exactly the rest of the file.
            if pos + EOCD_SIZE + comment_len == len(tail):
                break
    _, _, _, n_total, cd_size, cd_offset, _ = struct.unpack_from("<4xHHHHIIH", tail, pos)
    loc = pos - EOCD64_LOCATOR_SIZE
    if loc >= 0 and tail[loc : loc + 4] == EOCD64_LOCATOR_SIG:
        (eocd64_offset,) = struct.unpack_from("<Q", tail, loc + 8)
        rel = eocd64_offset - tail_start
        if rel < 0 or rel + EOCD64_SIZE > len(tail) or tail[rel : rel + 4] != EOCD64_SIG:
            raise ZipFormatError("ZIP64 end of central directory not within the fetched tail")
        n_total, cd_size, cd_offset = struct.unpack_from("<24xQQQ", tail, rel + 8)
    if cd_offset + cd_size > total:
        raise ZipFormatError("central directory extends past the end of the file")
    return CentralDirectory(offset=cd_offset, size=cd_size, entries=n_total)


def parse_central_directory(data: bytes, max_entries: int = 1_000_000) -> list[Member]:
    members: list[Member] = []
    pos = 0
    while pos + CDH_SIZE <= len(data) and data[pos : pos + 4] == CDH_SIG:
        if len(members) >= max_entries:
            raise ZipFormatError("too many central directory entries")
        member, pos = _member_at(data, pos)
        members.append(member)
    return members


def _member_at(data: bytes, pos: int) -> tuple[Member, int]:
    """The central directory entry whose header starts at ``pos``, and where it ends."""
    (flags, method, crc, csize, usize, nlen, elen, clen, offset) = struct.unpack_from(
        "<8xHH4xIIIHHH8xI", data, pos
    )
    name_start = pos + CDH_SIZE
    extra_start = name_start + nlen
    end = extra_start + elen + clen
    if end > len(data):
        raise ZipFormatError("truncated central directory")
    raw_name = data[name_start:extra_start]
    # Both encodings agree on ASCII, and the ascii codec is far cheaper than cp437's charmap.
    if raw_name.isascii():
        name = raw_name.decode("ascii")
    else:
        name = raw_name.decode("utf-8" if flags & 0x800 else "cp437", errors="replace")
    if 0xFFFFFFFF in (csize, usize, offset):
        extra = data[extra_start : extra_start + elen]
        usize, csize, offset = _zip64_extra(extra, usize, csize, offset)
    return Member(name, method, flags, crc, csize, usize, offset, elen), end


def _zip64_extra(extra: bytes, usize: int, csize: int, offset: int) -> tuple[int, int, int]:
    pos = 0
    while pos + 4 <= len(extra):
        tag, size = struct.unpack_from("<HH", extra, pos)
        body = extra[pos + 4 : pos + 4 + size]
        if tag == 0x0001:
            fields = [v for (v,) in struct.iter_unpack("<Q", body[: len(body) // 8 * 8])]
            idx = 0
            if usize == 0xFFFFFFFF and idx < len(fields):
                usize, idx = fields[idx], idx + 1
            if csize == 0xFFFFFFFF and idx < len(fields):
                csize, idx = fields[idx], idx + 1
            if offset == 0xFFFFFFFF and idx < len(fields):
                offset = fields[idx]
            return usize, csize, offset
        pos += 4 + size
    raise ZipFormatError("ZIP64 sizes without a ZIP64 extra field")


_DIST_INFO_METADATA = re.compile(r"^([^/]+)\.dist-info/METADATA$")


def find_metadata_member(members: list[Member], project: str | None = None) -> Member:
    """The top-level ``<name>-<version>.dist-info/METADATA`` member.

    With several candidates (vendored dist-infos are nested, but be careful anyway) prefer
    the one whose directory name matches ``project``.
    """
    candidates = [(m, found[1]) for m in members if (found := _DIST_INFO_METADATA.match(m.name))]
    if not candidates:
        raise ZipFormatError("no .dist-info/METADATA in the archive")
    if len(candidates) > 1 and project is not None:
        want = canonicalize_name(project)
        for m, stem in candidates:
            if canonicalize_name(stem.split("-", 1)[0]) == want:
                return m
    return candidates[0][0]


_METADATA_SUFFIX = b".dist-info/METADATA"
_CDH_LENGTHS = struct.Struct("<I24xHHH")  # signature; name, extra and comment lengths


def metadata_member(
    directory: bytes, project: str | None = None, max_entries: int = 1_000_000
) -> Member:
    """``find_metadata_member(parse_central_directory(directory), project)``, without
    decoding every entry (numpy/torch wheels have thousands).

    When ``.dist-info/METADATA`` occurs once in the directory, only the entry whose name
    ends there can be a candidate; the headers are walked (lengths only, exactly as the
    full parse walks them) to check that such an entry exists. Anything else takes the
    full parse: several candidates, none, or a walk the full parse would refuse."""
    member = _sole_metadata_member(directory, max_entries)
    if member is not None:
        return member
    return find_metadata_member(parse_central_directory(directory, max_entries), project)


def _sole_metadata_member(data: bytes, max_entries: int) -> Member | None:
    at = data.rfind(_METADATA_SUFFIX)
    # Every candidate name contains the suffix (ASCII in both name encodings), which cannot
    # overlap itself: a second occurrence means a possible second candidate.
    if at < 0 or data.find(_METADATA_SUFFIX, 0, at) >= 0:
        return None
    name_end = at + len(_METADATA_SUFFIX)
    header = _CDH_LENGTHS.unpack_from
    signature = int.from_bytes(CDH_SIG, "little")
    pos, count, found = 0, 0, -1
    size = len(data)
    while pos + CDH_SIZE <= size:
        sig, nlen, elen, clen = header(data, pos)
        if sig != signature:
            break
        if pos + CDH_SIZE + nlen == name_end:
            found = pos
        pos += CDH_SIZE + nlen + elen + clen
        count += 1
    if found < 0 or pos > size or count > max_entries:
        return None
    member, _ = _member_at(data, found)
    return member if _DIST_INFO_METADATA.match(member.name) else None


def local_data_span(header: bytes, member: Member) -> tuple[int, int]:
    """Given bytes starting at the member's local header, return (data_start, data_end)
    relative to the header start."""
    if len(header) < LFH_SIZE or header[:4] != LFH_SIG:
        raise ZipFormatError("bad local file header")
    nlen, elen = struct.unpack_from("<HH", header, 26)
    start = LFH_SIZE + nlen + elen
    return start, start + member.compressed_size


def decompress_member(member: Member, data: bytes, max_size: int) -> bytes:
    if member.flags & 0x1:
        raise ZipFormatError("encrypted zip member")
    if member.uncompressed_size > max_size:
        raise ZipFormatError(
            f"member is {member.uncompressed_size} bytes, over the {max_size} limit"
        )
    if member.method == 0:
        out = data
    elif member.method == 8:
        d = zlib.decompressobj(-15)
        out = d.decompress(data, max_size + 1)
        if len(out) > max_size:
            raise ZipFormatError("member decompresses past the size limit")
    else:
        raise ZipFormatError(f"unsupported compression method {member.method}")
    if len(out) != member.uncompressed_size or zlib.crc32(out) != member.crc:
        raise ZipFormatError("member CRC or size mismatch")
    return out
