"""The uv.lock model: packages, sources, edges and artifacts, read from lock text.

This module does no I/O beyond what it is handed: it turns the text of a lock into
plain data, resolves every dependency reference to its package, and remembers where
each ``[[package]]`` block sits in the text so that the writer can replace only the
blocks that change.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import hashlib
import json
import marshal
import re
import sys
from collections.abc import Iterator, Mapping
from typing import Any, Final, Protocol
from urllib.parse import unquote

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from lockfix import __version__
from lockfix._toml import TOMLDecodeError, loads
from lockfix.dist.names import canonicalize_name
from lockfix.markers import InvalidMarker, Marker

SUPPORTED_LOCK_VERSION = 1
KNOWN_REVISIONS = frozenset({0, 1, 2, 3, 4, 5})

SOURCE_KINDS = ("registry", "git", "url", "path", "directory", "editable", "virtual")


class LockError(ValueError):
    """The text is not a uv.lock this tool can read."""


# -- the shape of values, checked where they are read -------------------------------------------

# uv's hash algorithms and the length of their hex digests
_DIGEST_LENGTHS = {"md5": 32, "sha256": 64, "sha384": 96, "sha512": 128, "blake2b": 128}
_HEX = re.compile(r"[0-9a-fA-F]+")


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, Mapping):
        return "a table"
    return "a date or time"


def _clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _string(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise LockError(f"{what} must be a string, not {_kind(value)}")
    return value


def _strings(value: object, what: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise LockError(f"{what} must be an array of strings, not {_kind(value)}")
    return tuple(_string(item, f"{what} entry") for item in value)


def _table(value: object, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise LockError(f"{what} must be a table, not {_kind(value)}")
    return value


def _array(value: object, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise LockError(f"{what} must be an array, not {_kind(value)}")
    return value


def _marker(value: object, what: str) -> str:
    text = _string(value, what)
    try:
        Marker.parse(text)
    except InvalidMarker as error:
        raise LockError(f"{what}: {_clip(str(error), 200)}") from None
    except RecursionError:
        raise LockError(f"{what}: the marker is nested too deeply") from None
    return text


def _markers(value: object, what: str) -> tuple[str, ...]:
    return tuple(_marker(text, f"{what} entry") for text in _strings(value, what))


def _version(value: object, what: str) -> str:
    text = _string(value, what)
    try:
        Version(text)
    except InvalidVersion:
        raise LockError(f"{what} {_clip(text)!r} is not a version") from None
    return text


def _specifiers(value: object, what: str) -> str:
    text = _string(value, what)
    try:
        SpecifierSet(text)
    except InvalidSpecifier:
        raise LockError(f"{what} {_clip(text)!r} is not a version specifier") from None
    return text


def _hash(value: object, what: str) -> str:
    text = _string(value, what)
    algorithm, _, digest = text.partition(":")
    length = _DIGEST_LENGTHS.get(algorithm.lower())
    if length is None or len(digest) != length or not _HEX.fullmatch(digest):
        raise LockError(
            f"{what} {_clip(text)!r} is not ALGORITHM:HEX-DIGEST ({', '.join(_DIGEST_LENGTHS)})"
        )
    return text


def _size(value: object, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        shown = repr(value) if isinstance(value, int) else _kind(value)
        raise LockError(f"{what} must be a non-negative integer, not {shown}")
    return value


class Source:
    __slots__ = ("kind", "location", "subdirectory")
    kind: Final[str]
    location: Final[str]
    subdirectory: Final[str | None]

    def __init__(self, kind: str, location: str, subdirectory: str | None = None) -> None:
        self.kind = kind
        self.location = location
        self.subdirectory = subdirectory

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Source):
            return NotImplemented
        return (
            self.kind == other.kind
            and self.location == other.location
            and self.subdirectory == other.subdirectory
        )

    def __hash__(self) -> int:
        return hash((self.kind, self.location, self.subdirectory))

    def __repr__(self) -> str:
        return f"Source({self.kind!r}, {self.location!r}, {self.subdirectory!r})"

    @classmethod
    def from_toml(cls, table: object, what: str = "`source`") -> Source:
        table = _table(table, what)
        for kind in SOURCE_KINDS:
            if kind in table:
                location = _string(table[kind], f"{what} `{kind}`")
                subdirectory = table.get("subdirectory")
                if subdirectory is not None:
                    _string(subdirectory, f"{what} `subdirectory`")
                return cls(kind, location, subdirectory)
        raise LockError(f"{what}: unknown source kind ({_clip(', '.join(map(str, table)))})")

    @property
    def is_registry(self) -> bool:
        return self.kind == "registry"

    def to_toml(self) -> str:
        text = f'{{ {self.kind} = "{self.location}"'
        if self.subdirectory is not None:
            text += f', subdirectory = "{self.subdirectory}"'
        return text + " }"

    def __str__(self) -> str:
        return f"{self.kind}+{self.location}"


class PackageId:
    __slots__ = ("_hash", "name", "source", "version")
    name: Final[str]
    version: Final[str | None]
    source: Final[Source]

    def __init__(self, name: str, version: str | None, source: Source) -> None:
        self.name = name
        self.version = version
        self.source = source
        # the hash, computed once: ids key most of the planner's tables (0: not yet known)
        self._hash = 0

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PackageId):
            return NotImplemented
        return (
            self.name == other.name
            and self.version == other.version
            and self.source == other.source
        )

    def __hash__(self) -> int:
        known = self._hash
        if not known:
            known = self._hash = hash((self.name, self.version, self.source)) or 1
        return known

    def __repr__(self) -> str:
        return f"PackageId({self.name!r}, {self.version!r}, {self.source!r})"

    def __reduce__(self) -> tuple[object, tuple[str, str | None, Source]]:
        # never the hash: another process hashes strings differently
        return (PackageId, (self.name, self.version, self.source))

    def __str__(self) -> str:
        version = f"=={self.version}" if self.version is not None else ""
        return f"{self.name}{version} @ {self.source}"

    def sort_key(self) -> tuple[Any, ...]:
        return (
            self.name,
            _version_key(self.version),
            SOURCE_KINDS.index(self.source.kind),
            self.source.location,
        )


class Dependency:
    """One edge as written in the lock: ``{ name, version?, source?, extra?, marker? }``."""

    __slots__ = ("extras", "marker", "name", "source", "version")
    name: Final[str]
    version: Final[str | None]
    source: Final[Source | None]
    extras: Final[tuple[str, ...]]
    marker: Final[str]

    def __init__(
        self,
        name: str,
        version: str | None,
        source: Source | None,
        extras: tuple[str, ...],
        marker: str,
    ) -> None:
        self.name = name
        self.version = version
        self.source = source
        self.extras = extras
        self.marker = marker

    def _key(self) -> tuple[object, ...]:
        return (self.name, self.version, self.source, self.extras, self.marker)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Dependency):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return "Dependency({!r}, {!r}, {!r}, {!r}, {!r})".format(*self._key())


class Artifact:
    """A locked sdist or wheel, with the fields the lock gives."""

    __slots__ = ("filename", "hash", "path", "size", "upload_time", "url")
    url: Final[str | None]
    path: Final[str | None]
    filename: Final[str | None]
    hash: Final[str | None]
    size: Final[int | None]
    upload_time: Final[str | None]

    def __init__(
        self,
        url: str | None,
        path: str | None,
        filename: str | None,
        hash: str | None,
        size: int | None,
        upload_time: str | None,
    ) -> None:
        self.url = url
        self.path = path
        self.filename = filename
        self.hash = hash
        self.size = size
        self.upload_time = upload_time

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Artifact):
            return NotImplemented
        return _artifact_row(self) == _artifact_row(other)

    def __hash__(self) -> int:
        return hash(_artifact_row(self))

    def __repr__(self) -> str:
        fields = ", ".join(
            f"{k}={v!r}" for k, v in zip(_ARTIFACT_FIELDS, _artifact_row(self), strict=True)
        )
        return f"Artifact({fields})"

    @classmethod
    def from_toml(cls, table: object, what: str = "file") -> Artifact:
        table = _table(table, what)

        def optional(key: str, check: Any) -> Any:
            value = table.get(key)
            return None if value is None else check(value, f"{what} `{key}`")

        key = "upload-time" if "upload-time" in table else "upload_time"
        upload_time = table.get(key)
        if upload_time is not None and not isinstance(
            upload_time, str | datetime.datetime | datetime.date
        ):
            raise LockError(f"{what} `{key}` must be a date and time, not {_kind(upload_time)}")
        return cls(
            url=optional("url", _string),
            path=optional("path", _string),
            filename=optional("filename", _string),
            hash=optional("hash", _hash),
            size=optional("size", _size),
            upload_time=str(upload_time) if upload_time is not None else None,
        )

    @property
    def name(self) -> str:
        """The file name, from whichever of filename/url/path the lock gives.

        A URL's last path segment is percent-decoded, as uv reads it: the PyTorch index
        links ``torch-2.7.1%2Bcpu-….whl`` and uv writes that URL into the lock. A path is
        a file system path and is taken as it is."""
        if self.filename:
            return self.filename
        if self.url:
            path = self.url.split("#", 1)[0].split("?", 1)[0]
            return unquote(path.rstrip("/").rsplit("/", 1)[-1])
        return (self.path or "").rstrip("/").rsplit("/", 1)[-1]

    @property
    def hashes(self) -> dict[str, str]:
        if not self.hash or ":" not in self.hash:
            return {}
        algorithm, digest = self.hash.split(":", 1)
        return {algorithm: digest}


class LockedFiles:
    """A package's locked sdist and wheels; those of a stored record (:func:`_from_record`)
    are built from its rows when first asked for."""

    __slots__ = ("_rows", "_sdist", "_wheels")

    def __init__(self, sdist: Artifact | None, wheels: tuple[Artifact, ...]) -> None:
        self._sdist, self._wheels = sdist, wheels
        self._rows: tuple[Any, Any] | None = None

    @classmethod
    def from_rows(cls, sdist: tuple[Any, ...] | None, wheels: tuple[Any, ...]) -> LockedFiles:
        """The files of these :func:`_artifact_row` rows."""
        files = cls(None, ())
        files._rows = (sdist, wheels)
        return files

    def _build(self) -> None:
        if self._rows is not None:
            sdist, wheels = self._rows
            self._sdist = None if sdist is None else Artifact(*sdist)
            self._wheels = tuple(Artifact(*w) for w in wheels)
            self._rows = None

    @property
    def sdist(self) -> Artifact | None:
        self._build()
        return self._sdist

    @property
    def wheels(self) -> tuple[Artifact, ...]:
        self._build()
        return self._wheels

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LockedFiles):
            return NotImplemented
        return self.sdist == other.sdist and self.wheels == other.wheels

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"LockedFiles(sdist={self.sdist!r}, wheels={self.wheels!r})"


class Package:
    __slots__ = (
        "_digest",
        "block",
        "dependencies",
        "dev_dependencies",
        "files",
        "id",
        "metadata",
        "optional_dependencies",
        "resolution_markers",
    )

    def __init__(
        self,
        id: PackageId,
        resolution_markers: tuple[str, ...],
        dependencies: tuple[Dependency, ...],
        optional_dependencies: dict[str, tuple[Dependency, ...]],
        dev_dependencies: dict[str, tuple[Dependency, ...]],
        files: LockedFiles,
        metadata: Mapping[str, Any],
        block: int = -1,  # index into Lock.blocks
        _digest: str | None = None,  # locked_digest, when already known
    ) -> None:
        self.id = id
        self.resolution_markers = resolution_markers
        self.dependencies = dependencies
        self.optional_dependencies = optional_dependencies
        self.dev_dependencies = dev_dependencies
        self.files = files
        self.metadata = metadata
        self.block = block
        self._digest = _digest

    def _key(self) -> tuple[object, ...]:
        return (
            self.id,
            self.resolution_markers,
            self.dependencies,
            self.optional_dependencies,
            self.dev_dependencies,
            self.files,
            self.metadata,
            self.block,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Package):
            return NotImplemented
        return self._key() == other._key()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Package({self.id!r}, block={self.block})"

    @property
    def name(self) -> str:
        return self.id.name

    @property
    def sdist(self) -> Artifact | None:
        return self.files.sdist

    @property
    def wheels(self) -> tuple[Artifact, ...]:
        return self.files.wheels

    @property
    def locked_digest(self) -> str:
        """The sha256 of what the lock says of the package apart from its edges, resolution
        markers and metadata: its id and every field of every locked file."""
        if self._digest is None:
            source = self.id.source
            doc = [
                self.id.name,
                self.id.version,
                [source.kind, source.location, source.subdirectory],
                [None if a is None else list(_artifact_row(a)) for a in (self.sdist, *self.wheels)],
            ]
            self._digest = hashlib.sha256(json.dumps(doc).encode()).hexdigest()
        return self._digest

    def same_edges(self, other: Package) -> bool:
        """Whether the lock says the same of both packages apart from their ids and files
        (what :attr:`locked_digest` covers): their edges, resolution markers and metadata."""
        return (
            self.resolution_markers == other.resolution_markers
            and self.dependencies == other.dependencies
            and self.optional_dependencies == other.optional_dependencies
            and self.dev_dependencies == other.dev_dependencies
            and self.metadata == other.metadata
        )

    @property
    def version(self) -> str | None:
        return self.id.version

    @property
    def source(self) -> Source:
        return self.id.source

    def edges(self) -> Iterator[tuple[str | None, str | None, Dependency]]:
        """Every edge with its table: (None, None) main, ('extra', e), ('group', g)."""
        for dep in self.dependencies:
            yield None, None, dep
        for extra, deps in self.optional_dependencies.items():
            for dep in deps:
                yield "extra", extra, dep
        for group, deps in self.dev_dependencies.items():
            for dep in deps:
                yield "group", group, dep


class ConflictItem:
    __slots__ = ("kind", "name", "package")
    package: Final[str]
    kind: Final[str]  # "extra" | "group" | "project"
    name: Final[str | None]

    def __init__(self, package: str, kind: str, name: str | None) -> None:
        self.package = package
        self.kind = kind
        self.name = name

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ConflictItem):
            return NotImplemented
        return (self.package, self.kind, self.name) == (other.package, other.kind, other.name)

    def __hash__(self) -> int:
        return hash((self.package, self.kind, self.name))

    def __repr__(self) -> str:
        return f"ConflictItem({self.package!r}, {self.kind!r}, {self.name!r})"


# the planner asks for the same few hundred names many times over
_canonical_name = functools.lru_cache(maxsize=16384)(canonicalize_name)


class Lock:
    """A parsed uv.lock. ``blocks`` are the exact text slices: the header, then one per package."""

    __slots__ = (
        "_by_id",
        "_by_name",
        "block_keys",
        "blocks",
        "conflicts",
        "manifest",
        "newline",
        "options",
        "packages",
        "required_markers",
        "requires_python",
        "resolution_markers",
        "revision",
        "supported_markers",
        "text",
        "version",
    )

    def __init__(
        self,
        text: str,
        newline: str,
        version: int,
        revision: int,
        requires_python: str | None,
        resolution_markers: tuple[str, ...],
        supported_markers: tuple[str, ...],
        required_markers: tuple[str, ...],
        conflicts: tuple[tuple[ConflictItem, ...], ...],
        options: Mapping[str, Any],
        manifest: Mapping[str, Any],
        packages: list[Package],
        blocks: list[str],
    ) -> None:
        self.text = text
        self.newline = newline
        self.version = version
        self.revision = revision
        self.requires_python = requires_python
        self.resolution_markers = resolution_markers
        self.supported_markers = supported_markers
        self.required_markers = required_markers
        self.conflicts = conflicts
        self.options = options
        self.manifest = manifest
        self.packages = packages
        self.blocks = blocks
        # the key of each block's stored package (block_keys) when the lock was read block
        # by block against a store (parse_lock), else None
        self.block_keys: list[str] | None = None
        self._by_name: dict[str, list[Package]] = {}
        self._by_id: dict[PackageId, Package] = {}
        for package in packages:
            self._by_name.setdefault(package.name, []).append(package)
            self._by_id.setdefault(package.id, package)

    def named(self, name: str) -> list[Package]:
        return self._by_name.get(_canonical_name(name), [])

    def package(self, package_id: PackageId) -> Package | None:
        return self._by_id.get(package_id)

    def resolve(self, dep: Dependency, parent: Package | None = None) -> Package:
        """The package an edge points to, with uv's rules for unqualified edges."""
        candidates = self.named(dep.name)
        if dep.version is not None:
            candidates = [p for p in candidates if p.version == dep.version]
        if dep.source is not None:
            candidates = [p for p in candidates if p.source == dep.source]
        if len(candidates) == 1:
            return candidates[0]
        where = f" of {parent.id}" if parent else ""
        if not candidates:
            raise LockError(f"dependency {_describe(dep)}{where} has no locked package")
        raise LockError(
            f"dependency {_describe(dep)}{where} matches more than one locked package; "
            "it needs `version` and `source`"
        )

    @property
    def members(self) -> list[Package]:
        """The workspace members: the roots every install starts from."""
        names = self.manifest.get("members")
        if names:
            wanted = {canonicalize_name(n) for n in names}
            return [p for p in self.packages if p.name in wanted and not p.source.is_registry]
        roots = [
            p
            for p in self.packages
            if p.source.kind in ("editable", "virtual", "directory") and p.source.location == "."
        ]
        if roots:
            return roots
        return [p for p in self.packages if p.source.kind in ("editable", "virtual")]

    @property
    def registries(self) -> list[str]:
        seen: dict[str, None] = {}
        for package in self.packages:
            if package.source.is_registry:
                seen.setdefault(package.source.location, None)
        return list(seen)


def _describe(dep: Dependency) -> str:
    text = dep.name
    if dep.version:
        text += f"=={dep.version}"
    if dep.source:
        text += f" @ {dep.source}"
    return f"`{text}`"


def _version_key(version: str | None) -> tuple[int, Any]:
    if version is None:
        return (0, ())
    try:
        return (1, Version(version))
    except InvalidVersion:
        return (2, version)


def _dependency(table: object, where: str) -> Dependency:
    table = _table(table, f"{where}: a dependency")
    if "name" not in table:
        raise LockError(f"{where}: a dependency has no `name`")
    name = _string(table["name"], f"{where}: a dependency's `name`")
    what = f"{where}: dependency {_clip(name)}"
    source = Source.from_toml(table["source"], f"{what}: `source`") if "source" in table else None
    version = table.get("version")
    return Dependency(
        name=canonicalize_name(name),
        version=None if version is None else _version(version, f"{what}: `version`"),
        source=source,
        extras=_strings(table.get("extra", []), f"{what}: `extra`"),
        marker=_marker(table.get("marker", ""), f"{what}: `marker`"),
    )


def _dependency_tables(table: object, where: str) -> dict[str, tuple[Dependency, ...]]:
    if not table:
        return {}
    table = _table(table, where)
    return {
        name: tuple(_dependency(d, where) for d in _array(deps, f"{where}: `{name}`"))
        for name, deps in table.items()
    }


def _requirements(value: object, what: str) -> None:
    """``requires-dist``-like arrays of ``{ name, extras?, marker? }`` tables."""
    for entry in _array(value, what):
        entry = _table(entry, f"{what} entry")
        _string(entry.get("name"), f"{what}: `name`")
        _strings(entry.get("extras", []), f"{what}: `extras`")
        _marker(entry.get("marker", ""), f"{what}: `marker`")


def _package(table: object) -> Package:
    table = _table(table, "a [[package]] entry")
    if "name" not in table or "source" not in table:
        raise LockError("a [[package]] entry lacks `name` or `source`")
    raw_name = _string(table["name"], "a [[package]] `name`")
    version = table.get("version")
    where = f"package {_clip(raw_name)}"
    if version is not None:
        version = _version(version, f"{where}: `version`")
        where += f" {_clip(version)}"
    source = Source.from_toml(table["source"], f"{where}: `source`")
    if source.is_registry and version is None:
        raise LockError(f"registry package `{raw_name}` has no version")
    package_id = PackageId(canonicalize_name(raw_name), version, source)
    sdist = table.get("sdist")
    metadata = _table(table.get("metadata", {}), f"{where}: `metadata`")
    for key in ("requires-dist", "dev-dependencies"):
        if key in metadata:
            _requirements(metadata[key], f"{where}: `metadata.{key}`")
    for group, requirements in _table(
        metadata.get("requires-dev", {}), f"{where}: `metadata.requires-dev`"
    ).items():
        _requirements(requirements, f"{where}: `metadata.requires-dev.{group}`")
    return Package(
        id=package_id,
        resolution_markers=_markers(
            table.get("resolution-markers", []), f"{where}: `resolution-markers`"
        ),
        dependencies=tuple(
            _dependency(d, where)
            for d in _array(table.get("dependencies", []), f"{where}: `dependencies`")
        ),
        optional_dependencies=_dependency_tables(
            table.get("optional-dependencies"), f"{where}: `optional-dependencies`"
        ),
        dev_dependencies=_dependency_tables(
            table.get("dev-dependencies", table.get("dependency-groups")),
            f"{where}: `dev-dependencies`",
        ),
        files=LockedFiles(
            Artifact.from_toml(sdist, f"{where}: sdist") if sdist else None,
            tuple(
                Artifact.from_toml(w, f"{where}: wheel")
                for w in _array(table.get("wheels", []), f"{where}: `wheels`")
            ),
        ),
        metadata=metadata,
    )


def _conflicts(raw: Any) -> tuple[tuple[ConflictItem, ...], ...]:
    sets = []
    for conflict_set in _array(raw or [], "`conflicts`"):
        items = []
        for item in _array(conflict_set, "a `conflicts` entry"):
            item = _table(item, "a `conflicts` item")
            if "extra" in item:
                kind, name = "extra", _string(item["extra"], "a `conflicts` item's `extra`")
            elif "group" in item:
                kind, name = "group", _string(item["group"], "a `conflicts` item's `group`")
            else:
                kind, name = "project", None
            package = _string(item.get("package"), "a `conflicts` item's `package`")
            items.append(ConflictItem(canonicalize_name(package), kind, name))
        sets.append(tuple(items))
    return tuple(sets)


def _manifest(raw: object) -> Mapping[str, Any]:
    manifest = _table(raw, "`manifest`")
    for entry in _array(manifest.get("overrides", []), "`manifest.overrides`"):
        entry = _table(entry, "a `manifest.overrides` entry")
        _string(entry.get("name"), "a `manifest.overrides` entry's `name`")
        _marker(entry.get("marker", ""), "a `manifest.overrides` entry's `marker`")
    for entry in _array(manifest.get("dependency-metadata", []), "`manifest.dependency-metadata`"):
        entry = _table(entry, "a `manifest.dependency-metadata` entry")
        what = "a `manifest.dependency-metadata` entry"
        _string(entry.get("name"), f"{what}'s `name`")
        _strings(entry.get("requires-dist", []), f"{what}'s `requires-dist`")
        _strings(entry.get("provides-extras", []), f"{what}'s `provides-extras`")
    _strings(manifest.get("excludes", []), "`manifest.excludes`")
    _strings(manifest.get("members", []), "`manifest.members`")
    return manifest


PACKAGE_HEADER = "[[package]]"


# besides "\n", what ends a line for str.splitlines or is whitespace for str.strip in ASCII
_OTHER_BREAKS = "\r\x0b\x0c\x1c\x1d\x1e\x1f"


def split_blocks(text: str) -> list[str]:
    """Split lock text into the header and one slice per ``[[package]]`` block, losslessly:
    a block starts at each line (as :meth:`str.splitlines` cuts them) that is the header
    once stripped of white space."""
    if not text.isascii() or any(c in text for c in _OTHER_BREAKS):
        return _split_lines(text)
    # lines end at "\n" alone and only " " and "\t" are white space: find the headers
    starts = []
    found = text.find(PACKAGE_HEADER)
    while found >= 0:
        line = text.rfind("\n", 0, found) + 1
        end = text.find("\n", found)
        after = text[found + len(PACKAGE_HEADER) : end if end >= 0 else len(text)]
        if not text[line:found].strip(" \t") and not after.strip(" \t"):
            starts.append(line)
        found = text.find(PACKAGE_HEADER, found + len(PACKAGE_HEADER))
    return [text[a:b] for a, b in zip([0, *starts], [*starts, len(text)], strict=True)]


def _split_lines(text: str) -> list[str]:
    blocks: list[str] = []
    start = 0
    position = 0
    for line in text.splitlines(keepends=True):
        if line.rstrip("\r\n").strip() == PACKAGE_HEADER:
            blocks.append(text[start:position])
            start = position
        position += len(line)
    blocks.append(text[start:])
    return blocks


class BlockRecords(Protocol):
    """Stored packages of ``[[package]]`` blocks (:func:`_record`), by :func:`_record_keys`."""

    def records(self, keys: list[str]) -> dict[str, bytes]: ...

    def put_record(self, key: str, record: bytes) -> None: ...


# Part of every record key: a change to what a record holds, to how a block is read into a
# Package, or to Package.locked_digest must come with a new value here. The lockfix version
# and the Python implementation and version (marshal's format) are part of the key too.
RECORD_FORMAT = "lockfix-package-record-1"
# Artifact's fields, in the order its constructor takes them
_ARTIFACT_FIELDS = ("url", "path", "filename", "hash", "size", "upload_time")


def _artifact_row(a: Artifact) -> tuple[Any, ...]:
    return (a.url, a.path, a.filename, a.hash, a.size, a.upload_time)


def _dependency_row(dep: Dependency) -> tuple[Any, ...]:
    source = dep.source
    where = None if source is None else (source.kind, source.location, source.subdirectory)
    return (dep.name, dep.version, where, dep.extras, dep.marker)


def _record_keys(blocks: list[str], part: str = "") -> list[str]:
    """The key of each block's record: the sha256 of the record format, the lockfix version,
    the Python implementation and version (marshal's format) and the block's text.
    ``part``: the key of what is stored of a part of blocks (``"wheels"``:
    :func:`_split_wheels`)."""
    seed = f"{RECORD_FORMAT}\0{__version__}\0{sys.implementation.cache_tag}\0{part}".encode()
    prefix = hashlib.sha256(seed)
    keys = []
    for block in blocks:
        digest = prefix.copy()
        digest.update(block.encode())
        keys.append(digest.hexdigest())
    return keys


def block_keys(blocks: list[str]) -> list[str]:
    """The key of each block's stored package (:func:`parse_lock` with a store): a digest
    of its text that also names this lockfix and Python."""
    return _record_keys(blocks)


def recorded_packages(store: BlockRecords, keys: list[str]) -> dict[str, Package]:
    """The packages stored for blocks (by :func:`block_keys`), those the store holds."""
    found = {}
    for key, record in store.records(keys).items():
        package = _from_record(record)
        if package is not None:
            found[key] = package
    return found


def _record(package: Package) -> bytes | None:
    """The stored form of a package read and checked from its block (with its
    :attr:`Package.locked_digest`); None when its metadata holds what marshal does not
    keep (a TOML date)."""
    package_id, source = package.id, package.id.source
    optional, dev = package.optional_dependencies, package.dev_dependencies
    record: tuple[Any, ...] = (
        package_id.name,
        package_id.version,
        (source.kind, source.location, source.subdirectory),
        package.resolution_markers,
        tuple(map(_dependency_row, package.dependencies)),
        {k: tuple(map(_dependency_row, v)) for k, v in optional.items()},
        {k: tuple(map(_dependency_row, v)) for k, v in dev.items()},
        None if package.sdist is None else _artifact_row(package.sdist),
        tuple(map(_artifact_row, package.wheels)),
        package.metadata,
        package.locked_digest,
    )
    try:
        return marshal.dumps(record)
    except ValueError:
        return None


def _dependencies(rows: tuple[Any, ...]) -> tuple[Dependency, ...]:
    return tuple(
        Dependency(name, version, None if where is None else Source(*where), extras, marker)
        for name, version, where, extras, marker in rows
    )


def _from_record(record: bytes) -> Package | None:
    """The package :func:`_record` stored; None for what it did not write."""
    try:
        (
            name,
            version,
            source,
            resolution_markers,
            dependencies,
            optional,
            dev,
            sdist,
            wheels,
            metadata,
            digest,
        ) = marshal.loads(record)
        width = len(_ARTIFACT_FIELDS)
        if not (
            isinstance(digest, str)
            and isinstance(metadata, dict)
            and (sdist is None or len(sdist) == width)
            and all(len(w) == width for w in wheels)
        ):
            return None
        return Package(
            id=PackageId(name, version, Source(*source)),
            resolution_markers=resolution_markers,
            dependencies=_dependencies(dependencies),
            optional_dependencies={k: _dependencies(v) for k, v in optional.items()},
            dev_dependencies={k: _dependencies(v) for k, v in dev.items()},
            files=LockedFiles.from_rows(sdist, wheels),
            metadata=metadata,
            _digest=digest,
        )
    except (EOFError, ValueError, TypeError, AttributeError):
        return None


def _load_blocks(
    text: str, blocks: list[str], store: BlockRecords
) -> tuple[dict[str, Any], list[str] | None]:
    """The TOML document of the lock, each ``[[package]]`` block either a :class:`Package`
    stored before or its decoded table: the same as :func:`loads` of the whole text. Anything
    but a header without ``package`` followed by blocks that each hold exactly one package
    table is decoded as a whole (so that errors read the same too). With the document, the
    record key of each block (None: decoded as a whole)."""
    try:
        data = loads(blocks[0])
    except (TOMLDecodeError, RecursionError):
        return loads(text), None
    if "package" in data:
        return loads(text), None
    keys = _record_keys(blocks[1:])
    stored = store.records(keys)
    packages: list[Any] = []
    for key in keys:
        record = stored.get(key)
        packages.append(None if record is None else _from_record(record))
    new = [i for i, package in enumerate(packages) if package is None]
    splits = {i: split for i in new if (split := _split_wheels(blocks[i + 1])) is not None}
    pieces = _record_keys([split[1] for split in splits.values()], "wheels")
    wheel_keys = dict(zip(splits, pieces, strict=True))
    stored_wheels = store.records(list(wheel_keys.values())) if wheel_keys else {}
    for i in new:
        doc = None
        if i in splits:
            key = wheel_keys[i]
            doc = _pieced_document(splits[i], stored_wheels.get(key), key, store)
        if doc is None:
            try:
                doc = loads(blocks[i + 1])
            except (TOMLDecodeError, RecursionError):
                return loads(text), None
            if not _one_package(doc):
                return loads(text), None
        packages[i] = doc["package"][0]
    if packages:
        data["package"] = packages
    return data, keys


# A wheel list shorter than this is decoded with the rest of its block.
_WHEELS_APART = 2048
_BRACKET_LINE = re.compile(r"\n[ \t]*\[")


def _split_wheels(block: str) -> tuple[str, str, str] | None:
    """(head, wheels, tail): ``block`` cut around its ``wheels = [`` … ``]`` lines, when the
    head holds no table header (so that the wheels belong to the package table) and the
    wheel list is long enough to be worth decoding apart; else None."""
    start = block.find("\nwheels = [\n")
    if start < 0:
        return None
    end = block.find("\n]\n", start)
    if end < 0 or end - start < _WHEELS_APART:
        return None
    head = block[: start + 1]
    if _BRACKET_LINE.search(head) is not None:
        return None
    return head, block[start + 1 : end + 3], block[end + 3 :]


def _pieced_document(
    split: tuple[str, str, str], stored: bytes | None, key: str, store: BlockRecords
) -> dict[str, Any] | None:
    """The document of a block from its pieces (:func:`_split_wheels`): the head and the
    tail decoded, the wheel list taken from ``stored`` (its record) or decoded and stored
    under ``key``. That is the document of the whole block when each piece decodes on its
    own (so that each ends where a statement may end) and they set different keys of the
    package table; None when they do not (the block is then decoded whole)."""
    head, wheels, tail = split
    try:
        head_doc = loads(head)
        tail_doc = loads(PACKAGE_HEADER + "\n" + tail)
    except (TOMLDecodeError, RecursionError):
        return None
    if not (_one_package(head_doc) and _one_package(tail_doc)):
        return None
    value = None
    if stored is not None:
        with contextlib.suppress(EOFError, ValueError, TypeError):
            value = marshal.loads(stored)
    if not isinstance(value, list):
        try:
            wheels_doc = loads(wheels)
        except (TOMLDecodeError, RecursionError):
            return None
        if list(wheels_doc) != ["wheels"] or not isinstance(wheels_doc["wheels"], list):
            return None
        value = wheels_doc["wheels"]
        with contextlib.suppress(ValueError):  # a TOML date: not kept
            store.put_record(key, marshal.dumps(value))
    first, rest = head_doc["package"][0], tail_doc["package"][0]
    if "wheels" in first or "wheels" in rest or first.keys() & rest.keys():
        return None
    return {"package": [{**first, **rest, "wheels": value}]}


def _one_package(doc: Any) -> bool:
    return (
        isinstance(doc, dict)
        and list(doc) == ["package"]
        and isinstance(doc["package"], list)
        and len(doc["package"]) == 1
        and isinstance(doc["package"][0], dict)
    )


def parse_lock(text: str, store: BlockRecords | None = None, *, references: bool = True) -> Lock:
    """Read lock text into a :class:`Lock`; :class:`LockError` on anything uv would refuse.
    ``store``: where the packages of blocks read before are kept (:func:`_load_blocks`).
    ``references=False``: a part of a lock (its header and some blocks), whose edges may
    name packages it does not hold."""
    if text.startswith("\ufeff"):
        raise LockError("the file starts with a byte-order mark, which uv does not write")
    blocks = split_blocks(text)
    keys = None
    try:
        if store is None:
            data = loads(text)
        else:
            data, keys = _load_blocks(text, blocks, store)
    except TOMLDecodeError as error:
        raise LockError(f"not valid TOML: {error}") from None
    except RecursionError:
        raise LockError("not valid TOML: arrays or tables nested too deeply") from None
    try:
        lock = _read(text, data, blocks, references)
    except LockError:
        raise
    except RecursionError:
        raise LockError("malformed lock (nested too deeply)") from None
    except (TypeError, AttributeError, KeyError, IndexError, ValueError) as error:
        # A value of the wrong type somewhere (found by fuzzing): still one clear error.
        raise LockError(f"malformed lock ({type(error).__name__}: {error})") from None
    if store is not None and keys is not None:
        lock.block_keys = [*_record_keys(blocks[:1]), *keys]
        for key, raw, package in zip(keys, data.get("package", []), lock.packages, strict=True):
            if not isinstance(raw, Package):
                record = _record(package)
                if record is not None:
                    store.put_record(key, record)
    return lock


def _read(text: str, data: dict[str, Any], blocks: list[str], references: bool = True) -> Lock:
    """The lock of ``data``: its TOML document, where a package table may already be the
    :class:`Package` read from it (:func:`_load_blocks`)."""
    if "version" not in data:
        raise LockError("not a uv lock: no top-level `version`")
    if data["version"] != SUPPORTED_LOCK_VERSION:
        raise LockError(f"unsupported lock version {data['version']!r} (lockfix reads version 1)")
    revision = data.get("revision", 0)
    if not isinstance(revision, int):
        raise LockError(f"`revision` must be an integer, not {revision!r}")
    raw_packages = data.get("package", [])
    if not isinstance(raw_packages, list):
        raise LockError("`package` must be an array of tables")
    requires_python = data.get("requires-python")
    if requires_python is not None:
        _specifiers(requires_python, "`requires-python`")
    packages = [p if isinstance(p, Package) else _package(p) for p in raw_packages]

    if len(blocks) - 1 == len(packages):
        for index, package in enumerate(packages):
            package.block = index + 1
    # the line break most lines end with (one stray CRLF does not make an LF lock CRLF)
    newline = "\r\n" if "\r\n" in text and 2 * text.count("\r\n") > text.count("\n") else "\n"
    lock = Lock(
        text=text,
        newline=newline,
        version=data["version"],
        revision=revision,
        requires_python=requires_python,
        resolution_markers=_markers(data.get("resolution-markers", []), "`resolution-markers`"),
        supported_markers=_markers(data.get("supported-markers", []), "`supported-markers`"),
        required_markers=_markers(data.get("required-markers", []), "`required-markers`"),
        conflicts=_conflicts(data.get("conflicts")),
        options=_table(data.get("options", {}), "`options`"),
        manifest=_manifest(data.get("manifest", {})),
        packages=packages,
        blocks=blocks,
    )
    if references:
        _check_references(lock)
    return lock


def _check_references(lock: Lock) -> None:
    seen: set[PackageId] = set()
    for package in lock.packages:
        if package.id in seen:
            raise LockError(f"package {package.id} appears twice")
        seen.add(package.id)
    for package in lock.packages:
        for _, _, dep in package.edges():
            lock.resolve(dep, package)
