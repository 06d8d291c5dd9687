"""Core metadata (METADATA / PKG-INFO) parsing and extraction from wheels and sdists.

Nothing here builds or executes anything: an sdist whose dependencies are not declared
statically (PEP 643) is reported as :class:`MetadataUnavailable`.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import re
from collections.abc import Mapping
from typing import IO, Any, Final

from packaging.version import InvalidVersion, Version

from lockfix.dist.names import canonicalize_name

# email, zipfile, tarfile and lockfix.dist._zip are imported where a document or an
# archive is read: a check answered from stored facts reads neither.

#: Bound on a METADATA/PKG-INFO document (sidecar download or zip/tar member).
MAX_METADATA_SIZE = 10 * 1024 * 1024

# Fields whose presence in Dynamic makes sdist metadata useless for dependency edges.
_DEPENDENCY_FIELDS = frozenset({"requires-dist", "requires-python", "provides-extra"})


class MetadataError(Exception):
    """Metadata could not be read or is malformed."""


class MetadataUnavailable(MetadataError):
    """Metadata cannot be trusted without building (dynamic sdist, Metadata-Version < 2.2, …).

    Callers should report the file as unverifiable, not fail."""


#: The field of :meth:`CoreMetadata.to_json` that carries
#: :attr:`CoreMetadata.requirements_digest`; a new way of computing the digest comes with a
#: new field name, so that a digest stored by other code is never read.
REQUIREMENTS_DIGEST = "requirements_digest_1"


def requirements_digest(
    name: str, requires_dist: tuple[str, ...], provides_extra: tuple[str, ...]
) -> str:
    """The sha256 of a metadata's name, Requires-Dist and Provides-Extra."""
    return hashlib.sha256(json.dumps([name, requires_dist, provides_extra]).encode()).hexdigest()


class CoreMetadata:
    name: Final[str]
    version: Final[str]
    requires_dist: Final[tuple[str, ...]]
    requires_python: Final[str | None]
    provides_extra: Final[tuple[str, ...]]
    dynamic: Final[tuple[str, ...]]
    metadata_version: Final[str]
    # Lines lockfix derived from wheels that declare different things (empty for a file's
    # own metadata): (the line in requires_dist, what the index declares, which wheels)
    origins: Final[tuple[tuple[str, str, str], ...]]

    def __init__(
        self,
        name: str,
        version: str,
        requires_dist: tuple[str, ...],
        requires_python: str | None,
        provides_extra: tuple[str, ...],
        dynamic: tuple[str, ...],
        metadata_version: str,
        origins: tuple[tuple[str, str, str], ...] = (),
    ) -> None:
        self.name = name
        self.version = version
        self.requires_dist = requires_dist
        self.requires_python = requires_python
        self.provides_extra = provides_extra
        self.dynamic = dynamic
        self.metadata_version = metadata_version
        self.origins = origins
        self._requirements_digest: str | None = None

    @property
    def requirements_digest(self) -> str:
        """:func:`requirements_digest` of this metadata, computed once (or read with it by
        :meth:`from_json`)."""
        digest = self._requirements_digest
        if digest is None:
            digest = self._requirements_digest = requirements_digest(
                self.name, self.requires_dist, self.provides_extra
            )
        return digest

    def _key(self) -> tuple[Any, ...]:
        return (
            self.name,
            self.version,
            self.requires_dist,
            self.requires_python,
            self.provides_extra,
            self.dynamic,
            self.metadata_version,
            self.origins,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CoreMetadata):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return "CoreMetadata({!r}, {!r}, {!r}, {!r}, {!r}, {!r}, {!r}, {!r})".format(*self._key())

    def with_requirements(
        self,
        requires_dist: tuple[str, ...],
        provides_extra: tuple[str, ...],
        origins: tuple[tuple[str, str, str], ...] | None = None,
    ) -> CoreMetadata:
        """This metadata with other Requires-Dist and Provides-Extra (and origins), the
        rest kept."""
        return CoreMetadata(
            self.name,
            self.version,
            requires_dist,
            self.requires_python,
            provides_extra,
            self.dynamic,
            self.metadata_version,
            self.origins if origins is None else origins,
        )

    def to_json(self, *, digest: bool = False) -> dict[str, Any]:
        """The JSON form; ``digest``: with :attr:`requirements_digest`, which
        :meth:`from_json` then reads instead of computing it."""
        doc: dict[str, Any] = {
            "name": self.name,
            "version": self.version,
            "requires_dist": list(self.requires_dist),
            "requires_python": self.requires_python,
            "provides_extra": list(self.provides_extra),
            "dynamic": list(self.dynamic),
            "metadata_version": self.metadata_version,
            "origins": [list(o) for o in self.origins],
        }
        if digest:
            doc[REQUIREMENTS_DIGEST] = self.requirements_digest
        return doc

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CoreMetadata:
        metadata = cls(
            name=str(data["name"]),
            version=str(data["version"]),
            requires_dist=tuple(data["requires_dist"]),
            requires_python=data.get("requires_python"),
            provides_extra=tuple(data["provides_extra"]),
            dynamic=tuple(data["dynamic"]),
            metadata_version=str(data["metadata_version"]),
            origins=tuple((str(a), str(b), str(c)) for a, b, c in data.get("origins", ())),
        )
        # Stored by to_json with the requirements it stands for; a doc without it (or
        # written by code that digests otherwise) has it computed when asked.
        digest = data.get(REQUIREMENTS_DIGEST)
        if isinstance(digest, str):
            metadata._requirements_digest = digest
        return metadata


# A line ending followed by one more: an empty line, splitting lines as email.feedparser
# does (CRLF is one ending; the atomic group never splits one into CR + LF).
@functools.cache
def _empty_line() -> re.Pattern[str]:
    return re.compile(r"(?>\r\n|\r|\n)(?>\r\n|\r|\n)")


def _unfold(value: str) -> str:
    # compat32 keeps folded continuation lines verbatim; a requirement never spans lines.
    return " ".join(part.strip() for part in value.splitlines() if part.strip())


# email.feedparser's test for a header line: a name (printable ASCII but ':'), a
# continuation, or a Unix "From " line; the first other line ends the headers.
@functools.cache
def _header_line() -> re.Pattern[str]:
    return re.compile(r"From |[\041-\071\073-\176]*:|[\t ]")


# Line breaks other than "\n", which email and str.splitlines treat differently.
@functools.cache
def _odd_breaks() -> re.Pattern[str]:
    return re.compile("[\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")


def _plain_headers(text: str) -> dict[str, list[str]] | None:
    """Lower-cased header name → raw values, as ``email.parser`` (compat32) reads a header
    block, for a block with LF line breaks only and no "From " line; None for any other,
    which goes to ``email.parser`` itself."""
    if _odd_breaks().search(text):
        return None
    fields: list[tuple[str, list[str]]] = []
    value: list[str] | None = None
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()  # the text ended with a line break
    header_line = _header_line()
    for line in lines:
        if not header_line.match(line):
            break
        if line[0] in " \t":
            if value is not None:
                value.append(line)
            continue
        if line.startswith("From "):
            return None
        name, _, rest = line.partition(":")
        if not name:
            value = None  # a line without a name: email drops it and its continuations
            continue
        value = [rest.lstrip(" \t")]
        fields.append((name.lower(), value))
    headers: dict[str, list[str]] = {}
    for name, parts in fields:
        headers.setdefault(name, []).append("\n".join(parts))
    return headers


def parse_core_metadata(data: bytes) -> CoreMetadata:
    """Parse an email-header style METADATA / PKG-INFO document, leniently: only Name and
    Version are required; undecodable bytes are replaced, repeated values dropped.

    Reads the fields as ``packaging.metadata.parse_email`` does, but only the header
    block, without the email package for the common shape: a cold check parses thousands
    of documents, where ``parse_email`` costs several times more (benchmarks/README.md)."""
    if len(data) > MAX_METADATA_SIZE:
        raise MetadataError("metadata document too large")
    text = data.decode("utf-8", errors="replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    # The headers end at the first empty line; the description after it (often most of the
    # document) would only be read line by line and thrown away.
    if "\r" in text:
        found = _empty_line().search(text)
        end = found.end() if found is not None else -1
    else:
        end = text.find("\n\n")
        end = end + 2 if end >= 0 else -1
    if end >= 0:
        text = text[:end]
    headers = _plain_headers(text)
    if headers is None:
        from email.parser import Parser
        from email.policy import compat32

        msg = Parser(policy=compat32).parsestr(text, headersonly=True)
        headers = {}
        for key, value in msg.items():
            headers.setdefault(key.lower(), []).append(str(value))

    def all_of(field: str) -> tuple[str, ...]:
        return tuple(v for v in (_unfold(x) for x in headers.get(field.lower(), ())) if v)

    def one(field: str) -> str | None:
        values = all_of(field)
        return values[0] if values else None

    name, version = one("Name"), one("Version")
    if not name or not version:
        raise MetadataError("metadata has no Name or Version")
    # Deduplicate while preserving order: some tools emit a header twice.
    requires = tuple(dict.fromkeys(all_of("Requires-Dist")))
    extras = tuple(dict.fromkeys(all_of("Provides-Extra")))
    return CoreMetadata(
        name=name,
        version=version,
        requires_dist=requires,
        requires_python=one("Requires-Python"),
        provides_extra=extras,
        dynamic=tuple(dict.fromkeys(all_of("Dynamic"))),
        metadata_version=one("Metadata-Version") or "1.0",
    )


def _version_tuple(v: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in v.strip().split("."))
    except ValueError:
        return (0,)


def check_sdist_metadata(md: CoreMetadata) -> CoreMetadata:
    """PEP 643: trust PKG-INFO only at 2.2+ with no dependency field marked Dynamic."""
    if _version_tuple(md.metadata_version) < (2, 2):
        raise MetadataUnavailable(
            f"{md.name} {md.version}: sdist PKG-INFO is Metadata-Version {md.metadata_version}"
            " (< 2.2), dependencies are only known after a build"
        )
    dynamic = {d.lower() for d in md.dynamic} & _DEPENDENCY_FIELDS
    if dynamic:
        raise MetadataUnavailable(
            f"{md.name} {md.version}: sdist declares {', '.join(sorted(dynamic))} as Dynamic"
        )
    return md


def check_matches_file(md: CoreMetadata, name: str | None, version: str | None) -> None:
    """Reject metadata that belongs to another project/version than the file it came for."""
    if name is not None and canonicalize_name(md.name) != canonicalize_name(name):
        raise MetadataError(f"metadata is for {md.name!r}, expected {name!r}")
    if version is not None:
        try:
            same = Version(md.version) == Version(version)
        except InvalidVersion:
            same = md.version == version
        if not same:
            raise MetadataError(f"metadata is for version {md.version!r}, expected {version!r}")


def _bounded_read(f: IO[bytes], limit: int = MAX_METADATA_SIZE) -> bytes:
    data = f.read(limit + 1)
    if len(data) > limit:
        raise MetadataError("metadata member larger than the size limit")
    return data


def read_wheel_metadata(fileobj: IO[bytes], project: str | None = None) -> bytes:
    """Raw METADATA bytes from a wheel (a seekable file object)."""
    import zipfile

    from lockfix.dist import _zip

    try:
        with zipfile.ZipFile(fileobj) as zf:
            members = [
                _zip.Member(
                    i.filename,
                    i.compress_type,
                    i.flag_bits,
                    i.CRC,
                    i.compress_size,
                    i.file_size,
                    i.header_offset,
                    0,
                )
                for i in zf.infolist()
            ]
            member = _zip.find_metadata_member(members, project)
            info = zf.getinfo(member.name)
            if info.file_size > MAX_METADATA_SIZE:
                raise MetadataError("METADATA larger than the size limit")
            with zf.open(info) as f:
                return _bounded_read(f)
    except (zipfile.BadZipFile, _zip.ZipFormatError, NotImplementedError, OSError) as e:
        raise MetadataError(f"cannot read METADATA from wheel: {e}") from e


def read_sdist_pkg_info(fileobj: IO[bytes], filename: str) -> bytes:
    """Raw top-level ``<dir>/PKG-INFO`` bytes from an sdist (tar.* or zip)."""
    import tarfile
    import zipfile

    lower = filename.lower()
    try:
        if lower.endswith(".zip"):
            with zipfile.ZipFile(fileobj) as zf:
                for info in zf.infolist():
                    parts = info.filename.split("/")
                    if len(parts) == 2 and parts[1] == "PKG-INFO":
                        if info.file_size > MAX_METADATA_SIZE:
                            raise MetadataError("PKG-INFO larger than the size limit")
                        with zf.open(info) as f:
                            return _bounded_read(f)
        else:
            # Stream mode: never seek back, never extract; members are only read.
            with tarfile.open(fileobj=fileobj, mode="r|*") as tf:
                for ti in tf:
                    parts = ti.name.lstrip("./").split("/")
                    if len(parts) == 2 and parts[1] == "PKG-INFO" and ti.isfile():
                        if ti.size > MAX_METADATA_SIZE:
                            raise MetadataError("PKG-INFO larger than the size limit")
                        member = tf.extractfile(ti)
                        if member is None:
                            break
                        return _bounded_read(member)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as e:
        raise MetadataError(f"cannot read PKG-INFO from {filename}: {e}") from e
    raise MetadataUnavailable(f"{filename}: no top-level PKG-INFO in the sdist")


def metadata_from_archive(fileobj: IO[bytes], filename: str, project: str | None) -> CoreMetadata:
    """Parse core metadata from a downloaded wheel or sdist, applying the sdist rules."""
    if filename.lower().endswith(".whl"):
        return parse_core_metadata(read_wheel_metadata(fileobj, project))
    return check_sdist_metadata(parse_core_metadata(read_sdist_pkg_info(fileobj, filename)))


def metadata_from_bytes(data: bytes, filename: str, project: str | None = None) -> CoreMetadata:
    return metadata_from_archive(io.BytesIO(data), filename, project)
