"""Requirements lowered into a package's tables, under the lock's ``[manifest]`` rules.

Each Requires-Dist line goes to the main table or to the extra tables it belongs to, with
the package's own extras resolved; the manifest's excludes drop requirements and its
overrides replace them, as the uv that wrote the lock did.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any, Final

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from lockfix.dist.metadata import CoreMetadata
from lockfix.dist.names import canonicalize_name
from lockfix.dist.requirements import parse_requirement, read_requirement, requirement_marker
from lockfix.lock.edits import MAIN, Table
from lockfix.lock.lockfile import Lock, Package, PackageId
from lockfix.markers import Marker


class LoweredRequirement:
    """One Requires-Dist line, placed in its table with the package's own extras resolved."""

    __slots__ = ("extras", "marker", "name", "specifier", "text")
    name: Final[str]
    extras: Final[tuple[str, ...]]
    specifier: Final[SpecifierSet]
    marker: Final[Marker]
    text: Final[str]

    def __init__(
        self, name: str, extras: tuple[str, ...], specifier: SpecifierSet, marker: Marker, text: str
    ) -> None:
        self.name = name
        self.extras = extras
        self.specifier = specifier
        self.marker = marker
        self.text = text

    def _key(self) -> tuple[object, ...]:
        return (self.name, self.extras, self.specifier, self.marker, self.text)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LoweredRequirement):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return "LoweredRequirement({!r}, {!r}, {!r}, {!r}, {!r})".format(*self._key())


class Override:
    """One ``[manifest] overrides`` entry: the requirement that replaces every one on its name."""

    __slots__ = ("extras", "marker", "specifier")
    extras: Final[tuple[str, ...]]
    specifier: Final[SpecifierSet]
    marker: Final[Marker]

    def __init__(self, extras: tuple[str, ...], specifier: SpecifierSet, marker: Marker) -> None:
        self.extras = extras
        self.specifier = specifier
        self.marker = marker

    def _key(self) -> tuple[object, ...]:
        return (self.extras, self.specifier, self.marker)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Override):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return "Override({!r}, {!r}, {!r})".format(*self._key())


class Root:
    """A requirement the lock installs from outside its members: ``[manifest] requirements``
    (a PEP 723 script's dependencies) or ``[manifest.dependency-groups]`` (the groups of a
    workspace root that has no ``[project]``)."""

    __slots__ = ("extras", "marker", "name", "registry", "specifier")
    name: Final[str]
    extras: Final[tuple[str, ...]]
    specifier: Final[SpecifierSet]
    marker: Final[Marker]
    registry: Final[bool]  # no url, git or path: an index can supply it

    def __init__(
        self,
        name: str,
        extras: tuple[str, ...],
        specifier: SpecifierSet,
        marker: Marker,
        registry: bool,
    ) -> None:
        self.name = name
        self.extras = extras
        self.specifier = specifier
        self.marker = marker
        self.registry = registry

    def _key(self) -> tuple[object, ...]:
        return (self.name, self.extras, self.specifier, self.marker, self.registry)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Root):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return "Root({!r}, {!r}, {!r}, {!r}, {!r})".format(*self._key())


_DIRECT_KEYS = ("url", "git", "path", "editable", "directory")


_DeclaredMetadata = tuple[tuple[str | None, tuple[str, ...], tuple[str, ...]], ...]


class ManifestRules:
    """What the lock's ``[manifest]`` changes about every package's requirements."""

    __slots__ = ("excludes", "fingerprint", "metadata", "overrides", "roots")
    excludes: Final[frozenset[str]]
    # name → overrides; together they replace every requirement on the name
    overrides: Final[Mapping[str, tuple[Override, ...]]]
    # name → [(version or None, requires-dist, provides-extras)]
    metadata: Final[Mapping[str, _DeclaredMetadata]]
    roots: Final[tuple[Root, ...]]
    # the manifest entries behind ``excludes`` and ``overrides`` as written (JSON): equal
    # text, equal lowering of any metadata
    fingerprint: Final[str]

    def __init__(
        self,
        excludes: frozenset[str] = frozenset(),
        overrides: Mapping[str, tuple[Override, ...]] | None = None,
        metadata: Mapping[str, _DeclaredMetadata] | None = None,
        roots: tuple[Root, ...] = (),
        fingerprint: str = "",
    ) -> None:
        self.excludes = excludes
        self.overrides = {} if overrides is None else overrides
        self.metadata = {} if metadata is None else metadata
        self.roots = roots
        self.fingerprint = fingerprint

    def __repr__(self) -> str:
        return f"ManifestRules(fingerprint={self.fingerprint!r}, roots={self.roots!r})"

    @classmethod
    def from_manifest(cls, manifest: Mapping[str, Any]) -> ManifestRules:
        excludes = frozenset(canonicalize_name(str(n)) for n in manifest.get("excludes", ()) or ())
        overrides: dict[str, list[Override]] = {}
        for entry in manifest.get("overrides", ()) or ():
            if not isinstance(entry, Mapping) or "name" not in entry:
                continue
            specifier = _entry_specifier(entry)
            extras = tuple(sorted({canonicalize_name(e) for e in entry.get("extras", ()) or ()}))
            overrides.setdefault(canonicalize_name(entry["name"]), []).append(
                Override(extras, specifier, Marker.parse(entry.get("marker", "")))
            )
        metadata: dict[str, list[tuple[str | None, tuple[str, ...], tuple[str, ...]]]] = {}
        for entry in manifest.get("dependency-metadata", ()) or ():
            if isinstance(entry, Mapping) and "name" in entry:
                metadata.setdefault(canonicalize_name(entry["name"]), []).append(
                    (
                        entry.get("version"),
                        tuple(entry.get("requires-dist", ())),
                        tuple(entry.get("provides-extras", ())),
                    )
                )
        fingerprint = json.dumps(
            [manifest.get("excludes"), manifest.get("overrides")], sort_keys=True, default=repr
        )
        return cls(
            excludes,
            {k: tuple(v) for k, v in overrides.items()},
            {k: tuple(v) for k, v in metadata.items()},
            _manifest_roots(manifest),
            fingerprint,
        )

    def declared(self, package_id: PackageId) -> CoreMetadata | None:
        """Metadata the project declares for a package (``tool.uv.dependency-metadata``)."""
        for version, requires_dist, extras in self.metadata.get(package_id.name, ()):
            if version is None or version == package_id.version:
                return CoreMetadata(
                    name=package_id.name,
                    version=package_id.version or "",
                    requires_dist=requires_dist,
                    requires_python=None,
                    provides_extra=extras,
                    dynamic=(),
                    metadata_version="2.3",
                )
        return None


def _entry_specifier(entry: Mapping[str, Any]) -> SpecifierSet:
    """A manifest entry's specifier; one uv wrote but packaging cannot read allows any version."""
    try:
        return SpecifierSet(entry.get("specifier", ""))
    except InvalidSpecifier:
        return SpecifierSet()


def _manifest_roots(manifest: Mapping[str, Any]) -> tuple[Root, ...]:
    entries: list[Any] = list(manifest.get("requirements", ()) or ())
    groups = manifest.get("dependency-groups") or {}
    if isinstance(groups, Mapping):
        for members in groups.values():
            entries.extend(members or ())
    roots = []
    for entry in entries:
        if not isinstance(entry, Mapping) or "name" not in entry:
            continue
        specifier = _entry_specifier(entry)
        roots.append(
            Root(
                canonicalize_name(entry["name"]),
                tuple(sorted({canonicalize_name(e) for e in entry.get("extras", ()) or ()})),
                specifier,
                Marker.parse(entry.get("marker", "")),
                not any(key in entry for key in _DIRECT_KEYS),
            )
        )
    return tuple(roots)


NO_RULES = ManifestRules.from_manifest({})


Lowered = dict[Table, list[LoweredRequirement]]


def lower_requirements(
    metadata: CoreMetadata, rules: ManifestRules = NO_RULES, *, legacy_overrides: bool = False
) -> dict[Table, list[LoweredRequirement]]:
    """Place each Requires-Dist line in the main table or the extra tables it belongs to.

    The manifest's excludes drop requirements, and its overrides replace them whole, as
    uv does: each override of the name stands in with its own extras, specifier and
    marker, and keeps of the original only the extras it was under (``extra == 'a' or
    extra == 'b'`` stays; its other markers go). ``legacy_overrides``: the rule of older
    uv (0.10.9), which keeps only an extra every environment of the original has, and
    otherwise applies the override unconditionally (see :func:`override_scope`).
    """
    tables: dict[Table, list[LoweredRequirement]] = {}
    own_extras: set[str] = {canonicalize_name(e) for e in metadata.provides_extra}
    for line in metadata.requires_dist:
        requirement = read_requirement(line)
        if requirement is None:
            continue
        name = canonicalize_name(requirement.name)
        if name in rules.excludes:
            continue
        marker = requirement_marker(requirement)
        if name in rules.overrides:
            scope = override_scope(marker, legacy=legacy_overrides)
            for override in rules.overrides[name]:
                _place(
                    tables,
                    own_extras,
                    name,
                    override.extras,
                    override.specifier,
                    scope & override.marker,
                    line,
                )
            continue
        if requirement.url:
            continue
        extras = tuple(sorted(canonicalize_name(e) for e in requirement.extras))
        _place(tables, own_extras, name, extras, requirement.specifier, marker, line)
    return _flatten_self_extras(canonicalize_name(metadata.name), tables)


def override_scope(marker: Marker, *, legacy: bool = False) -> Marker:
    """The part of an overridden requirement's marker that its overrides keep.

    uv 0.13.9 keeps the extras part: ``extra == 'a' or extra == 'b'`` stays as it is. uv
    0.10.9 keeps an ``extra == 'x'`` only when every environment of the marker has it, so
    for that marker it keeps nothing and the override applies with no extra at all.
    """
    extras_part = marker.only_extras()
    if not legacy:
        return extras_part
    implied = [
        e for e in sorted(marker.extras()) if marker.implies(Marker.parse(f"extra == '{e}'"))
    ]
    if len(implied) == 1:
        return Marker.parse(f"extra == '{implied[0]}'")
    return extras_part if implied else Marker.TRUE


def _place(
    tables: dict[Table, list[LoweredRequirement]],
    own_extras: set[str],
    name: str,
    extras: tuple[str, ...],
    specifier: SpecifierSet,
    marker: Marker,
    line: str,
) -> None:
    mentioned = marker.extras()
    everything = own_extras | mentioned
    base = marker.restrict_extras((), everything) if mentioned else marker
    if not base.is_false():
        tables.setdefault(MAIN, []).append(LoweredRequirement(name, extras, specifier, base, line))
    for extra in sorted(mentioned):
        when = marker.restrict_extras((extra,), everything - {extra})
        if when.is_false() or (not base.is_false() and when.implies(base)):
            continue
        tables.setdefault(("extra", extra), []).append(
            LoweredRequirement(name, extras, specifier, when, line)
        )


def _flatten_self_extras(
    name: str, tables: dict[Table, list[LoweredRequirement]]
) -> dict[Table, list[LoweredRequirement]]:
    """Inline ``pkg[x]`` requirements of a package on itself, as uv does (no self-edges)."""

    def expand(requirement: LoweredRequirement, seen: frozenset[str]) -> list[LoweredRequirement]:
        if requirement.name != name:
            return [requirement]
        out: list[LoweredRequirement] = []
        for extra in requirement.extras:
            if extra in seen:
                continue
            for inner in tables.get(("extra", extra), ()):
                marker = inner.marker & requirement.marker
                if not marker.is_false():
                    combined = LoweredRequirement(
                        inner.name, inner.extras, inner.specifier, marker, inner.text
                    )
                    out.extend(expand(combined, seen | {extra}))
        return out

    return {
        table: [r for requirement in requirements for r in expand(requirement, frozenset())]
        for table, requirements in tables.items()
    }


# Environments that exist: Windows and only Windows has os_name 'nt'. uv simplifies


def _request_lines(entries: object) -> list[str]:
    """Requirement lines for the entries of a member's ``[package.metadata]`` that ask for
    extras (name, extras and marker; the version does not matter here)."""
    lines = []
    for entry in entries if isinstance(entries, list) else ():
        if not isinstance(entry, Mapping):
            continue
        name, extras, marker = entry.get("name"), entry.get("extras"), entry.get("marker")
        if not isinstance(name, str) or not isinstance(extras, list) or not extras:
            continue
        if not all(isinstance(e, str) for e in extras):
            continue
        line = f"{name}[{','.join(extras)}]"
        if isinstance(marker, str) and marker:
            line += f" ; {marker}"
        lines.append(line)
    return lines


def member_requests(
    package: Package, rules: ManifestRules
) -> dict[Table, dict[str, dict[str, Marker]]]:
    """Table → name → extra → where the member's ``[package.metadata]`` asks for it."""
    metadata = package.metadata if isinstance(package.metadata, Mapping) else {}
    by_table: dict[Table, list[str]] = {}
    provides = metadata.get("provides-extras")
    if not isinstance(provides, list):
        provides = list(package.optional_dependencies)
    for line in _request_lines(metadata.get("requires-dist")):
        by_table.setdefault(MAIN, []).append(line)
    groups = metadata.get("requires-dev")
    for group, entries in groups.items() if isinstance(groups, Mapping) else ():
        by_table[("group", str(group))] = _request_lines(entries)
    result: dict[Table, dict[str, dict[str, Marker]]] = {}
    for source_table, lines in by_table.items():
        own = tuple(str(e) for e in provides) if source_table == MAIN else ()
        try:
            lowered = lower_requirements(
                CoreMetadata(
                    package.name, package.version or "", tuple(lines), None, own, (), "2.3"
                )
            )
        except ValueError:  # a marker lockfix cannot read: ask for nothing
            continue
        for table, requirements in lowered.items():
            target_table = table if source_table == MAIN else source_table
            for requirement in requirements:
                if requirement.name in rules.overrides or requirement.name in rules.excludes:
                    continue
                extras = result.setdefault(target_table, {}).setdefault(requirement.name, {})
                for extra in requirement.extras:
                    extras[extra] = extras.get(extra, Marker.FALSE) | requirement.marker
    return result


def legacy_overrides(
    lock: Lock, rules: ManifestRules, known: Mapping[PackageId, CoreMetadata]
) -> bool:
    """Whether to read overrides the way older uv did (see :func:`lower_requirements`).

    uv 0.10.9 and 0.13.9 differ on an override of a requirement under ``extra == 'a' or
    extra == 'b'`` (:func:`override_scope`): the older one puts it in the main table.
    The lock's own main tables tell which rule wrote it; a tie takes the current rule.
    """
    if not rules.overrides:
        return False
    votes = 0
    for package in lock.packages:
        metadata = rules.declared(package.id) or known.get(package.id)
        if metadata is None:
            continue
        names: set[str] = set()
        for line in metadata.requires_dist:
            requirement = parse_requirement(line)
            if requirement is None or not requirement.marker:
                continue
            name: str = canonicalize_name(requirement.name)
            marker = requirement_marker(requirement)
            if name in rules.overrides and override_scope(marker) != override_scope(
                marker, legacy=True
            ):
                names.add(name)
        if not names:
            continue
        current = lower_requirements(metadata, rules).get(MAIN, [])
        legacy = lower_requirements(metadata, rules, legacy_overrides=True).get(MAIN, [])
        locked = {dep.name for dep in package.dependencies}
        for name in names:
            in_current = any(r.name == name for r in current)
            in_legacy = any(r.name == name for r in legacy)
            if in_current != in_legacy:
                votes += 1 if (name in locked) == in_legacy else -1
    return votes > 0


def contains(specifier: SpecifierSet, version: str | Version) -> bool:
    """Whether a version satisfies a specifier, prereleases included (False for a version
    or specifier packaging cannot read)."""
    try:
        return specifier.contains(
            _version(version) if isinstance(version, str) else version, prereleases=True
        )
    except (InvalidSpecifier, InvalidVersion):
        return False


@functools.lru_cache(maxsize=4096)
def _version(text: str) -> str | Version:
    """A version string read once: the Version where its text is the normal form (so that
    ``===`` compares the same text), else the string itself."""
    try:
        parsed = Version(text)
    except InvalidVersion:
        return text
    return parsed if str(parsed) == text else text
