"""The uv.lock model: packages, sources, edges and artifacts, read from lock text.

This module does no I/O beyond what it is handed: it turns the text of a lock into
plain data, resolves every dependency reference to its package, and remembers where
each ``[[package]]`` block sits in the text so that the writer can replace only the
blocks that change.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import tomllib
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

SUPPORTED_LOCK_VERSION = 1
KNOWN_REVISIONS = frozenset({0, 1, 2, 3, 4, 5})

SOURCE_KINDS = ("registry", "git", "url", "path", "directory", "editable", "virtual")


class LockError(ValueError):
    """The text is not a uv.lock this tool can read."""


@dataclass(frozen=True, slots=True)
class Source:
    kind: str
    location: str
    subdirectory: str | None = None

    @classmethod
    def from_toml(cls, table: Mapping[str, Any]) -> Source:
        for kind in SOURCE_KINDS:
            if kind in table:
                return cls(kind, str(table[kind]), table.get("subdirectory"))
        raise LockError(f"unknown source {dict(table)!r}")

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


@dataclass(frozen=True, slots=True)
class PackageId:
    name: str
    version: str | None
    source: Source

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


@dataclass(frozen=True, slots=True)
class Dependency:
    """One edge as written in the lock: ``{ name, version?, source?, extra?, marker? }``."""

    name: str
    version: str | None
    source: Source | None
    extras: tuple[str, ...]
    marker: str


@dataclass(frozen=True, slots=True)
class Artifact:
    """A locked sdist or wheel, with the fields the lock gives."""

    url: str | None
    path: str | None
    filename: str | None
    hash: str | None
    size: int | None
    upload_time: str | None

    @classmethod
    def from_toml(cls, table: Mapping[str, Any]) -> Artifact:
        upload_time = table.get("upload-time", table.get("upload_time"))
        return cls(
            url=table.get("url"),
            path=table.get("path"),
            filename=table.get("filename"),
            hash=table.get("hash"),
            size=table.get("size"),
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


@dataclass(slots=True)
class Package:
    id: PackageId
    resolution_markers: tuple[str, ...]
    dependencies: tuple[Dependency, ...]
    optional_dependencies: dict[str, tuple[Dependency, ...]]
    dev_dependencies: dict[str, tuple[Dependency, ...]]
    sdist: Artifact | None
    wheels: tuple[Artifact, ...]
    metadata: Mapping[str, Any]
    block: int = -1  # index into Lock.blocks

    @property
    def name(self) -> str:
        return self.id.name

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


@dataclass(frozen=True, slots=True)
class ConflictItem:
    package: str
    kind: str  # "extra" | "group" | "project"
    name: str | None


@dataclass(slots=True)
class Lock:
    """A parsed uv.lock. ``blocks`` are the exact text slices: the header, then one per package."""

    text: str
    newline: str
    version: int
    revision: int
    requires_python: str | None
    resolution_markers: tuple[str, ...]
    supported_markers: tuple[str, ...]
    required_markers: tuple[str, ...]
    conflicts: tuple[tuple[ConflictItem, ...], ...]
    options: Mapping[str, Any]
    manifest: Mapping[str, Any]
    packages: list[Package]
    blocks: list[str]
    _by_name: dict[str, list[Package]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._by_name = {}
        for package in self.packages:
            self._by_name.setdefault(package.name, []).append(package)

    def named(self, name: str) -> list[Package]:
        return self._by_name.get(canonicalize_name(name), [])

    def package(self, package_id: PackageId) -> Package | None:
        for package in self.named(package_id.name):
            if package.id == package_id:
                return package
        return None

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


def _dependency(table: Mapping[str, Any]) -> Dependency:
    if not isinstance(table, Mapping) or "name" not in table:
        raise LockError(f"malformed dependency entry {table!r}")
    source = Source.from_toml(table["source"]) if "source" in table else None
    return Dependency(
        name=canonicalize_name(table["name"]),
        version=table.get("version"),
        source=source,
        extras=tuple(table.get("extra", ())),
        marker=table.get("marker", ""),
    )


def _dependency_tables(table: Mapping[str, Any] | None) -> dict[str, tuple[Dependency, ...]]:
    if not table:
        return {}
    return {name: tuple(_dependency(d) for d in deps) for name, deps in table.items()}


def _package(table: Mapping[str, Any]) -> Package:
    if "name" not in table or "source" not in table:
        raise LockError("a [[package]] entry lacks `name` or `source`")
    source = Source.from_toml(table["source"])
    version = table.get("version")
    if source.is_registry and version is None:
        raise LockError(f"registry package `{table['name']}` has no version")
    package_id = PackageId(canonicalize_name(table["name"]), version, source)
    sdist = table.get("sdist")
    return Package(
        id=package_id,
        resolution_markers=tuple(table.get("resolution-markers", ())),
        dependencies=tuple(_dependency(d) for d in table.get("dependencies", ())),
        optional_dependencies=_dependency_tables(table.get("optional-dependencies")),
        dev_dependencies=_dependency_tables(
            table.get("dev-dependencies", table.get("dependency-groups"))
        ),
        sdist=Artifact.from_toml(sdist) if sdist else None,
        wheels=tuple(Artifact.from_toml(w) for w in table.get("wheels", ())),
        metadata=table.get("metadata", {}),
    )


def _conflicts(raw: Any) -> tuple[tuple[ConflictItem, ...], ...]:
    sets = []
    for conflict_set in raw or ():
        items = []
        for item in conflict_set:
            if "extra" in item:
                kind, name = "extra", item["extra"]
            elif "group" in item:
                kind, name = "group", item["group"]
            else:
                kind, name = "project", None
            items.append(ConflictItem(canonicalize_name(item["package"]), kind, name))
        sets.append(tuple(items))
    return tuple(sets)


PACKAGE_HEADER = "[[package]]"


def split_blocks(text: str) -> list[str]:
    """Split lock text into the header and one slice per ``[[package]]`` block, losslessly."""
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


def parse_lock(text: str) -> Lock:
    """Read lock text into a :class:`Lock`; :class:`LockError` on anything uv would refuse."""
    if text.startswith("\ufeff"):
        raise LockError("the file starts with a byte-order mark, which uv does not write")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise LockError(f"not valid TOML: {error}") from None
    try:
        return _read(text, data)
    except LockError:
        raise
    except (TypeError, AttributeError, KeyError, IndexError, ValueError) as error:
        # A value of the wrong type somewhere (found by fuzzing): still one clear error.
        raise LockError(f"malformed lock ({type(error).__name__}: {error})") from None


def _read(text: str, data: dict[str, Any]) -> Lock:
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
    packages = [_package(p) for p in raw_packages]

    blocks = split_blocks(text)
    if len(blocks) - 1 == len(packages):
        for index, package in enumerate(packages):
            package.block = index + 1
    # the line break most lines end with (one stray CRLF does not make an LF lock CRLF)
    newline = "\r\n" if 2 * text.count("\r\n") > text.count("\n") else "\n"
    lock = Lock(
        text=text,
        newline=newline,
        version=data["version"],
        revision=revision,
        requires_python=data.get("requires-python"),
        resolution_markers=tuple(data.get("resolution-markers", ())),
        supported_markers=tuple(data.get("supported-markers", ())),
        required_markers=tuple(data.get("required-markers", ())),
        conflicts=_conflicts(data.get("conflicts")),
        options=data.get("options", {}),
        manifest=data.get("manifest", {}),
        packages=packages,
        blocks=blocks,
    )
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
