"""Turn (lock, true metadata) into findings and a list of edits.

The planner is pure: it never fetches anything. The engine feeds it the metadata of every
registry package and, for names the lock lacks, the index pages and metadata it asks for,
then calls :meth:`Planner.plan` again until nothing is pending.

Reachability is computed over the graph the lock *should* have: registry packages take
their edges from their metadata, every other package keeps the edges the lock gives. Each
node — a package's main table, or one of its extras or dependency groups — gets a
universal marker (environment plus uv's conflict pseudo-extras) saying when it is
installed. An edge is right when, wherever its parent is installed, it fires exactly when
the metadata says it should.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from lockfix.dist.metadata import CoreMetadata
from lockfix.dist.requirements import (
    parse_requirement,
    parse_specifiers,
    requirement_marker,
    unreadable_lines,
)
from lockfix.dist.simple import IndexFile, ProjectPage
from lockfix.dist.tags import wheel_marker_text
from lockfix.lock.lockfile import Dependency, Lock, Package, PackageId, Source
from lockfix.lock.project import ProjectConfig
from lockfix.markers import Marker, conflict_extra

Table = tuple[str | None, str | None]  # (None, None) main, ("extra", e), ("group", g)
Node = tuple[PackageId, str | None, str | None]
MAIN: Table = (None, None)
# why a package whose metadata has a line lockfix cannot read is not verified
UNREADABLE = "a Requires-Dist line lockfix cannot read"


@dataclass(frozen=True, slots=True)
class LoweredRequirement:
    """One Requires-Dist line, placed in its table with the package's own extras resolved."""

    name: str
    extras: tuple[str, ...]
    specifier: SpecifierSet
    marker: Marker
    text: str


@dataclass(frozen=True, slots=True)
class Finding:
    package: PackageId
    kind: str
    message: str
    target: str | None = None
    requirement: str | None = None
    fix: str | None = None
    # "less": the lock installs less than the index's metadata needs somewhere; "more":
    # only more than needed; None: neither applies (orphans, unused tables)
    harm: str | None = None


@dataclass(slots=True)
class AddedPackage:
    id: PackageId
    metadata: CoreMetadata | None
    sdist: IndexFile | None
    wheels: tuple[IndexFile, ...]
    resolution_markers: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Missing:
    """A name the lock needs but lacks: the engine fetches its page from ``indexes`` in order."""

    name: str
    specifier: SpecifierSet
    indexes: tuple[str, ...]
    chain: tuple[str, ...]


@dataclass(slots=True)
class PackagePlan:
    """New contents for the dependency tables of one package (None: leave as is)."""

    tables: dict[Table, list[Dependency]] = field(default_factory=dict)
    removed_tables: set[Table] = field(default_factory=set)
    # the package's `resolution-markers`, when a second version of its name is added
    resolution_markers: tuple[str, ...] | None = None


@dataclass(slots=True)
class Plan:
    findings: list[Finding]
    edits: dict[PackageId, PackagePlan]
    added: list[AddedPackage]
    added_edges: dict[PackageId, dict[Table, list[Dependency]]]
    removed: list[PackageId]
    pending: list[Missing]
    unverified: dict[PackageId, str]
    verified: int
    failed: set[PackageId] = field(default_factory=set)
    # packages whose wheels disagree and whose locked edges install only more than the
    # picked wheel needs, within what some wheel declares: kept as locked (where, per edge)
    excess: dict[PackageId, list[str]] = field(default_factory=dict)
    # why no repair in place exists (two versions of a name needed in one environment)
    unrepairable: list[str] = field(default_factory=list)

    @property
    def changes(self) -> bool:
        return bool(self.edits or self.added or self.removed)


class NoMatchingVersion(Exception):
    """No version on the index satisfies what the graph asks of a missing package."""


@dataclass(frozen=True, slots=True)
class Override:
    """One ``[manifest] overrides`` entry: the requirement that replaces every one on its name."""

    extras: tuple[str, ...]
    specifier: SpecifierSet
    marker: Marker


@dataclass(frozen=True, slots=True)
class Root:
    """A requirement the lock installs from outside its members: ``[manifest] requirements``
    (a PEP 723 script's dependencies) or ``[manifest.dependency-groups]`` (the groups of a
    workspace root that has no ``[project]``)."""

    name: str
    extras: tuple[str, ...]
    specifier: SpecifierSet
    marker: Marker
    registry: bool  # no url, git or path: an index can supply it


_DIRECT_KEYS = ("url", "git", "path", "editable", "directory")


@dataclass(frozen=True, slots=True)
class ManifestRules:
    """What the lock's ``[manifest]`` changes about every package's requirements."""

    excludes: frozenset[str] = frozenset()
    # name → overrides; together they replace every requirement on the name
    overrides: Mapping[str, tuple[Override, ...]] = field(default_factory=dict)
    # name → [(version or None, requires-dist, provides-extras)]
    metadata: Mapping[str, tuple[tuple[str | None, tuple[str, ...], tuple[str, ...]], ...]] = field(
        default_factory=dict
    )
    roots: tuple[Root, ...] = ()

    @classmethod
    def from_manifest(cls, manifest: Mapping[str, object]) -> ManifestRules:
        excludes = frozenset(canonicalize_name(str(n)) for n in manifest.get("excludes", ()) or ())
        overrides: dict[str, list[Override]] = {}
        for entry in manifest.get("overrides", ()) or ():
            if not isinstance(entry, Mapping) or "name" not in entry:
                continue
            try:
                specifier = SpecifierSet(entry.get("specifier", ""))
            except InvalidSpecifier:
                specifier = SpecifierSet()
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
        return cls(
            excludes,
            {k: tuple(v) for k, v in overrides.items()},
            {k: tuple(v) for k, v in metadata.items()},
            _manifest_roots(manifest),
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


NO_RULES = ManifestRules()


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
        try:
            specifier = SpecifierSet(entry.get("specifier", ""))
        except InvalidSpecifier:
            specifier = SpecifierSet()
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
    own_extras = {canonicalize_name(e) for e in metadata.provides_extra}
    for line in metadata.requires_dist:
        requirement = parse_requirement(line)
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
# markers with this knowledge, so a lock's edges are only meaningful within it.
_REAL_PLATFORMS = Marker.parse(
    "(os_name == 'nt' and sys_platform == 'win32') or (os_name != 'nt' and sys_platform != 'win32')"
)


def _union(markers: Iterable[str]) -> Marker:
    result = Marker.FALSE
    for text in markers:
        result |= Marker.parse(text)
    return result


class Planner:
    def __init__(self, lock: Lock, config: ProjectConfig) -> None:
        self.lock = lock
        self.config = config
        self.metadata: dict[PackageId, CoreMetadata] = {}
        self.unverified: dict[PackageId, str] = {}
        self.failed: set[PackageId] = set()
        self.added: dict[str, AddedPackage] = {}
        self.rules = ManifestRules.from_manifest(lock.manifest)
        self.conflicts_allowed = self._conflicts_allowed()
        self.root = self._root_marker()
        self._lowered: dict[PackageId, dict[Table, list[LoweredRequirement]]] = {}
        self._declared: dict[tuple[PackageId, Table, PackageId], list[str]] = {}
        # wheels that disagree: what any wheel declares, and the packages whose locked
        # edges stay within it while installing more than the picked wheel needs
        self.loose: dict[PackageId, CoreMetadata] = {}
        self.tolerated: dict[PackageId, list[str]] = {}
        self._members = {m.id for m in lock.members}
        self._loose: dict[Node, Marker] | None = None  # reach without the conflicts: per plan
        self.legacy_overrides = False  # see _choose_override_rule
        # a requirement on a name locked at several versions: the part of its marker that
        # no edge of the lock covers and no version is proven for (see _targets), and the
        # versions proven later from what is installed there anyway (see _settle)
        self._open: dict[tuple[PackageId, Table, LoweredRequirement], Marker] = {}
        self._settled: dict[tuple[PackageId, Table, str], dict[PackageId, Marker]] = {}

    # -- inputs -------------------------------------------------------------------------

    def add_metadata(self, package_id: PackageId, metadata: CoreMetadata) -> None:
        """The package's metadata; one with a Requires-Dist line lockfix cannot read makes
        the package not verified (its locked edges are kept), never a line read as absent."""
        unreadable = unreadable_lines(metadata.requires_dist)
        if unreadable:
            more = f" and {len(unreadable) - 1} more" if len(unreadable) > 1 else ""
            self.mark_unverified(package_id, f"{UNREADABLE}: {unreadable[0]!r}{more}", failed=False)
            return
        self.metadata[package_id] = metadata
        self._lowered.pop(package_id, None)

    def add_loose(self, package_id: PackageId, metadata: CoreMetadata) -> None:
        """For a package whose wheels disagree: everything any of them declares, each with
        its own marker (the metadata given to :meth:`add_metadata` is the merged view)."""
        self.loose[package_id] = metadata

    def mark_unverified(self, package_id: PackageId, reason: str, *, failed: bool = True) -> None:
        """Record a package whose metadata could not be had.

        ``failed`` means the index or network failed (a retry may succeed); otherwise the
        metadata is unknowable without a build (dynamic sdist), which is not an error.
        """
        if self.rules.declared(package_id) is not None:
            return  # the project declares its metadata: nothing to fetch
        self.unverified[package_id] = reason
        if failed:
            self.failed.add(package_id)

    def choose(self, missing: Missing, index_url: str, page: ProjectPage) -> AddedPackage:
        """Pick the version uv would lock for a missing name from one index's page."""
        version, files = self._pick_version(missing, page)
        sdists = [f for f in files if not f.is_wheel]
        package = AddedPackage(
            id=PackageId(missing.name, version, Source("registry", index_url)),
            metadata=None,
            sdist=sdists[0] if sdists else None,
            wheels=tuple(f for f in files if f.is_wheel),
        )
        self.added[missing.name] = package
        return package

    # -- the graph ----------------------------------------------------------------------

    def _root_marker(self, conflicts: bool = True) -> Marker:
        root = (
            Marker.from_requires_python(self.lock.requires_python)
            if self.lock.requires_python
            else Marker.TRUE
        )
        if self.lock.supported_markers:
            root &= _union(self.lock.supported_markers)
        return root & (self.conflicts_allowed if conflicts else Marker.TRUE) & _REAL_PLATFORMS

    def _conflicts_allowed(self) -> Marker:
        """True where no two items of one conflict set are active together."""
        allowed = Marker.TRUE
        for conflict_set in self.lock.conflicts:
            extras = [self._conflict_var(i.package, i.kind, i.name) for i in conflict_set]
            for i, first in enumerate(extras):
                for second in extras[i + 1 :]:
                    allowed &= ~(first & second)
        return allowed

    @staticmethod
    def _conflict_var(package: str, kind: str, name: str | None) -> Marker:
        return Marker.parse(f"extra == '{conflict_extra(kind, package, name)}'")  # type: ignore[arg-type]

    def _gate(self, package: Package, table: Table) -> Marker:
        kind, name = table
        for conflict_set in self.lock.conflicts:
            for item in conflict_set:
                if (
                    item.package == package.name
                    and item.kind == kind
                    and item.name is not None
                    and canonicalize_name(item.name) == canonicalize_name(name or "")
                ):
                    return self._conflict_var(package.name, kind, item.name)
        return Marker.TRUE

    def _all_ids(self) -> list[PackageId]:
        return [p.id for p in self.lock.packages] + [a.id for a in self.added.values()]

    def _named(self, name: str) -> list[PackageId]:
        ids = [p.id for p in self.lock.named(name)]
        if name in self.added:
            ids.append(self.added[name].id)
        return ids

    def _lowered_for(self, package_id: PackageId) -> dict[Table, list[LoweredRequirement]] | None:
        if package_id in self._lowered:
            return self._lowered[package_id]
        metadata = self.rules.declared(package_id) or self.metadata.get(package_id)
        if metadata is None:
            added = self.added.get(package_id.name)
            metadata = added.metadata if added and added.id == package_id else None
        if metadata is None:
            return None
        self._lowered[package_id] = lower_requirements(
            metadata, self.rules, legacy_overrides=self.legacy_overrides
        )
        return self._lowered[package_id]

    def _targets(
        self, parent: PackageId, table: Table, requirement: LoweredRequirement
    ) -> list[tuple[PackageId, Marker]]:
        """Which locked package(s) a requirement goes to, with the part each one covers.

        Only versions that satisfy the requirement's specifier count. With several of
        them, the lock's own edges from the parent say which one each environment reaches:
        their full markers, platform and conflict parts together, as uv writes them (the
        requirement's marker AND the forks that chose the version). An edge can only fire
        where its target was chosen, so each is kept within that version's
        ``resolution-markers``, and where edges to two versions fire together neither is
        taken as evidence. Where no edge covers the requirement, a version is named
        only when that is proven: it is the only fitting version whose
        ``resolution-markers`` allow the environment, or (see :meth:`_settle`) the only
        one installed there anyway. The part left open is recorded in ``self._open``.
        """
        candidates = self._named(requirement.name)
        fitting = [c for c in candidates if self._fits(c, requirement)]
        if len(candidates) <= 1:
            return [(c, Marker.TRUE) for c in fitting]
        package = self.lock.package(parent)
        split: dict[PackageId, Marker] = {}
        if package is not None:
            for kind, name, dep in package.edges():
                if (kind, name) == table and dep.name == requirement.name:
                    target = self.lock.resolve(dep, package).id
                    split[target] = split.get(target, Marker.FALSE) | Marker.parse(dep.marker)
        trusted = {t: m & self._forks(t) for t, m in split.items() if t in fitting}
        result: dict[PackageId, Marker] = {}
        for target, marker in trusted.items():
            for other, elsewhere in trusted.items():
                if other != target:
                    marker &= ~elsewhere  # two versions at once: neither edge is evidence
            result[target] = marker
        covered = Marker.FALSE
        for marker in result.values():
            covered |= marker
        rest = ~covered
        forks = {c: self._forks(c) for c in fitting}
        for target in fitting:
            others = Marker.FALSE
            for other, marker in forks.items():
                if other != target:
                    others |= marker
            proven = rest & forks[target] & ~others
            if not proven.is_false():
                result[target] = result.get(target, Marker.FALSE) | proven
                covered |= proven
        settled = self._settled.get((parent, table, requirement.name), {})
        for target, marker in settled.items():
            if target in fitting:
                result[target] = result.get(target, Marker.FALSE) | marker
                covered |= marker
        open_part = requirement.marker & ~covered
        key = (parent, table, requirement)
        if open_part.is_false():
            self._open.pop(key, None)
        else:
            self._open[key] = open_part
        return [(target, marker) for target, marker in result.items() if not marker.is_false()]

    def _fits(self, package_id: PackageId, requirement: LoweredRequirement) -> bool:
        """Whether a locked package can stand for a requirement: its version satisfies the
        specifier (a package from a git, path or URL source stands for any: uv's source
        choice for a name applies across the graph)."""
        if package_id.version is None or not package_id.source.is_registry:
            return True
        return _contains(requirement.specifier, package_id.version)

    def _forks(self, target: PackageId) -> Marker:
        locked = self.lock.package(target)
        if locked is None or not locked.resolution_markers:
            return Marker.TRUE
        return _union(locked.resolution_markers)

    def expected_edges(
        self, package_id: PackageId
    ) -> dict[Table, dict[PackageId, dict[str | None, Marker]]] | None:
        """For each table: target → {None: when installed, extra: when that extra is active}."""
        lowered = self._lowered_for(package_id)
        if lowered is None:
            return None
        return self._activations(package_id, lowered)

    def _activations(
        self,
        package_id: PackageId,
        lowered: Mapping[Table, list[LoweredRequirement]],
        record: bool = True,
    ) -> dict[Table, dict[PackageId, dict[str | None, Marker]]]:
        tables: dict[Table, dict[PackageId, dict[str | None, Marker]]] = {}
        for table, requirements in lowered.items():
            targets = tables.setdefault(table, {})
            for requirement in requirements:
                for target, forks in self._targets(package_id, table, requirement):
                    if record:
                        self._declared.setdefault((package_id, table, target), []).append(
                            requirement.text
                        )
                    when = requirement.marker & forks
                    activation = targets.setdefault(target, {})
                    extras = [e for e in requirement.extras if self._defines_extra(target, e)]
                    for key in (None, *extras):
                        activation[key] = activation.get(key, Marker.FALSE) | when
        return tables

    def _defines_extra(self, package_id: PackageId, extra: str) -> bool:
        """Whether an extra of a package has anything to install (uv drops empty ones)."""
        lowered = self._lowered_for(package_id)
        if lowered is None:
            package = self.lock.package(package_id)
            return package is None or extra in package.optional_dependencies
        return any(not (r.marker & self.root).is_false() for r in lowered.get(("extra", extra), ()))

    def locked_edges(
        self, package: Package
    ) -> dict[Table, dict[PackageId, dict[str | None, Marker]]]:
        tables: dict[Table, dict[PackageId, dict[str | None, Marker]]] = {}
        for kind, name, dep in package.edges():
            target = self.lock.resolve(dep, package).id
            activation = tables.setdefault((kind, name), {}).setdefault(target, {})
            marker = Marker.parse(dep.marker)
            for key in (None, *dep.extras):
                activation[key] = activation.get(key, Marker.FALSE) | marker
        return tables

    def _edges(
        self, package_id: PackageId
    ) -> dict[Table, dict[PackageId, dict[str | None, Marker]]]:
        package = self.lock.package(package_id)
        if (
            package is not None
            and package.source.is_registry
            and package_id not in self.unverified
            and package_id not in self.tolerated
        ):
            expected = self.expected_edges(package_id)
            if expected is not None:
                return expected
        if package is not None and package_id in self._members:
            return self.member_edges(package)
        if package is not None:
            return self.locked_edges(package)
        return self.expected_edges(package_id) or {}

    # -- members asking for extras ------------------------------------------------------

    def member_edges(
        self, package: Package
    ) -> dict[Table, dict[PackageId, dict[str | None, Marker]]]:
        """A member's locked edges, with the extras its own requirements ask for added
        where the locked target defines them and the edge lacks them.

        uv reads the metadata of one wheel; when that wheel lacks an extra other wheels of
        the version define (openmm's ``cuda12``), uv drops the extra from the member's
        edge. Everything else about a member's edges is kept as locked."""
        tables = self.locked_edges(package)
        for table, by_name in self._member_requests(package).items():
            for target, activation in tables.get(table, {}).items():
                for extra, marker in by_name.get(target.name, {}).items():
                    if target in self.unverified or self._lowered_for(target) is None:
                        continue  # only what the index's metadata says
                    if not self._defines_extra(target, extra):
                        continue
                    wanted = activation.get(None, Marker.FALSE) & marker
                    activation[extra] = activation.get(extra, Marker.FALSE) | wanted
        return tables

    def _member_requests(self, package: Package) -> dict[Table, dict[str, dict[str, Marker]]]:
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
                    if (
                        requirement.name in self.rules.overrides
                        or requirement.name in self.rules.excludes
                    ):
                        continue
                    extras = result.setdefault(target_table, {}).setdefault(requirement.name, {})
                    for extra in requirement.extras:
                        extras[extra] = extras.get(extra, Marker.FALSE) | requirement.marker
        return result

    def _excess(self, package: Package, reach: Mapping[Node, Marker]) -> list[str] | None:
        """Where a package whose wheels disagree has locked edges that install more than the
        picked wheel needs but nothing no wheel declares, and nothing less: one line per
        such edge. None when the edges miss something, go beyond every wheel, or match."""
        loose_metadata = self.loose.get(package.id)
        expected = self.expected_edges(package.id)
        if loose_metadata is None or expected is None:
            return None
        loose = self._activations(
            package.id, lower_requirements(loose_metadata, self.rules), record=False
        )
        actual = self.locked_edges(package)
        excess: list[str] = []
        for table in set(expected) | set(actual):
            here = reach.get((package.id, *table), Marker.FALSE)
            if here.is_false():
                if table != MAIN and table in actual:
                    return None  # an unused extra table: the comparison reports it
                continue
            want, have, allowed = (
                expected.get(table, {}),
                actual.get(table, {}),
                loose.get(table, {}),
            )
            for target in set(want) | set(have):
                activation = have.get(target, {})
                for key in set(want.get(target, {})) | set(activation):
                    wanted = want.get(target, {}).get(key, Marker.FALSE) & here
                    locked = activation.get(key, Marker.FALSE) & here
                    if not (wanted & ~locked).is_false():
                        return None
                    if not (locked & ~allowed.get(target, {}).get(key, Marker.FALSE)).is_false():
                        return None
                    more = locked & ~wanted
                    if not more.is_false():
                        name = target.name + (f"[{key}]" if key else "")
                        where = self._edge_marker(more, here)
                        excess.append(f"{name} where {where}" if str(where) else name)
        return sorted(excess) or None

    def reachability(
        self,
        start: Mapping[Node, Marker] | None = None,
        changed: Iterable[PackageId] = (),
        *,
        roots: Marker | None = None,
    ) -> dict[Node, Marker]:
        """When each node (package table) is installed, as a fixpoint over the graph.

        ``start``: a fixpoint already reached, to grow from after the edges of ``changed``
        packages grew (only their reached tables are walked again). ``roots``: where the
        roots are installed (default: :attr:`root`)."""
        base = self.root if roots is None else roots
        reach: dict[Node, Marker] = dict(start or {})
        edges_cache: dict[PackageId, dict[Table, dict[PackageId, dict[str | None, Marker]]]] = {}
        queue: deque[Node] = deque()
        queued: set[Node] = set()

        def grow(node: Node, marker: Marker) -> None:
            current = reach.get(node, Marker.FALSE)
            new = current | marker
            if new != current:
                reach[node] = new
                if node not in queued:
                    queued.add(node)
                    queue.append(node)

        if start is not None:
            again = set(changed)
            queue.extend(node for node in reach if node[0] in again)
            queued.update(queue)
        for member in self.lock.members if start is None else ():
            grow((member.id, None, None), base)
            for extra in member.optional_dependencies:
                grow((member.id, "extra", extra), base & self._gate(member, ("extra", extra)))
            for group in member.dev_dependencies:
                grow((member.id, "group", group), base & self._gate(member, ("group", group)))
        # Roots outside the members, as uv installs them: each locked version of the name
        # where its resolution-markers hold, with the extras the root asks for.
        for root in self.rules.roots if start is None else ():
            for target in self._named(root.name):
                when = base & root.marker & self._forks(target)
                if when.is_false():
                    continue
                grow((target, None, None), when)
                for extra in root.extras:
                    grow((target, "extra", extra), when)

        while queue:
            node = queue.popleft()
            queued.discard(node)
            package_id, kind, name = node
            if package_id not in edges_cache:
                edges_cache[package_id] = self._edges(package_id)
            table = edges_cache[package_id].get((kind, name), {})
            here = reach[node]
            for target, activation in table.items():
                for key, marker in activation.items():
                    contribution = here & marker
                    if contribution.is_false():
                        continue
                    grow((target, None, None), contribution)
                    if key is not None:
                        grow((target, "extra", key), contribution)
        return reach

    # -- planning -----------------------------------------------------------------------

    def _missing(self, reach: Mapping[Node, Marker]) -> list[Missing]:
        wanted: dict[str, list[tuple[SpecifierSet, str]]] = {}
        for (package_id, kind, name), here in reach.items():
            lowered = self._lowered_for(package_id)
            if lowered is None or (
                self.lock.package(package_id) is not None and not package_id.source.is_registry
            ):
                continue
            for requirement in lowered.get((kind, name), ()):
                if (here & requirement.marker).is_false() or any(
                    self._fits(c, requirement) for c in self._named(requirement.name)
                ):
                    continue
                wanted.setdefault(requirement.name, []).append(
                    (requirement.specifier, f"{package_id.name} {package_id.version}")
                )
        for root in self.rules.roots:
            if (
                root.registry
                and not self._named(root.name)
                and not (self.root & root.marker).is_false()
            ):
                wanted.setdefault(root.name, []).append((root.specifier, "[manifest]"))
        missing = []
        for name, asks in sorted(wanted.items()):
            specifier = SpecifierSet()
            for spec, _ in asks:
                specifier &= spec
            indexes = tuple(i.url for i in self.config.search_order(name))
            missing.append(Missing(name, specifier, indexes, tuple(parent for _, parent in asks)))
        return missing

    def _pick_version(self, missing: Missing, page: ProjectPage) -> tuple[str, list[IndexFile]]:
        by_version: dict[Version, list[IndexFile]] = {}
        for file in page.files:
            name_version = file.project_version
            if name_version is None:
                continue
            try:
                by_version.setdefault(Version(name_version[1]), []).append(file)
            except InvalidVersion:
                continue
        cutoff = _parse_time(self.config.cutoff(missing.name))
        lower = _python_floor(self.lock.requires_python)
        allow_pre = any(
            Version(s.version.rstrip(".*")).is_prerelease  # '==13.4.1.3.*'
            for s in missing.specifier
            if _is_version(s.version)
        )
        finals = [v for v in by_version if not v.is_prerelease]
        if not any(missing.specifier.contains(v) for v in finals):
            allow_pre = True
        for version in sorted(by_version, reverse=True):
            if version.is_prerelease and not allow_pre:
                continue
            if not missing.specifier.contains(version, prereleases=True):
                continue
            files = [f for f in by_version[version] if not f.yanked]
            if cutoff is not None:
                files = [
                    f
                    for f in files
                    if f.upload_time is None or (_parse_time(f.upload_time) or cutoff) <= cutoff
                ]
            if lower is not None:
                files = [
                    f
                    for f in files
                    if not f.requires_python or _python_allows(f.requires_python, lower)
                ]
            if files:
                return str(version), files
        chain = " ← ".join((missing.name, *missing.chain[:3]))
        raise NoMatchingVersion(
            f"no version of {missing.name} on {page.url} satisfies "
            f"'{missing.specifier or '*'}' (required by {chain})"
        )

    def _kept_by_uv(self, node: Node) -> bool:
        """Whether uv keeps a node no allowed environment installs.

        uv prunes what no path of edge markers reaches, but takes two items of one conflict
        set as a possible combination there (its own edge markers spell such combinations
        out). What only such a combination reaches stays in the lock it writes."""
        if not self.lock.conflicts:
            return False
        if self._loose is None:
            self._loose = self.reachability(roots=self._root_marker(conflicts=False))
        return node in self._loose

    def _choose_override_rule(self) -> None:
        """Read overrides the way the uv that wrote the lock did.

        uv 0.10.9 and 0.13.9 differ on an override of a requirement under ``extra == 'a' or
        extra == 'b'`` (:func:`override_scope`): the older one puts it in the main table.
        The lock's own main tables tell which rule wrote it; a tie keeps the current rule.
        """
        if not self.rules.overrides:
            return
        votes = 0
        for package in self.lock.packages:
            metadata = self.rules.declared(package.id) or self.metadata.get(package.id)
            if metadata is None:
                continue
            names = set()
            for line in metadata.requires_dist:
                requirement = parse_requirement(line)
                if requirement is None or not requirement.marker:
                    continue
                name = canonicalize_name(requirement.name)
                marker = requirement_marker(requirement)
                if name in self.rules.overrides and override_scope(marker) != override_scope(
                    marker, legacy=True
                ):
                    names.add(name)
            if not names:
                continue
            current = lower_requirements(metadata, self.rules).get(MAIN, [])
            legacy = lower_requirements(metadata, self.rules, legacy_overrides=True).get(MAIN, [])
            locked = {dep.name for dep in package.dependencies}
            for name in names:
                in_current = any(r.name == name for r in current)
                in_legacy = any(r.name == name for r in legacy)
                if in_current != in_legacy:
                    votes += 1 if (name in locked) == in_legacy else -1
        if (votes > 0) != self.legacy_overrides:
            self.legacy_overrides = votes > 0
            self._lowered.clear()

    def _settle(self, reach: Mapping[Node, Marker]) -> bool:
        """Name the version for open parts of requirements where only one fitting version
        is installed anyway (reached from elsewhere): an environment holds one version of a
        name, so the edge must go there. True when something new was settled."""
        changed = False
        for (parent, table, requirement), open_part in list(self._open.items()):
            region = open_part & reach.get((parent, *table), Marker.FALSE)
            if region.is_false():
                continue
            fitting = [c for c in self._named(requirement.name) if self._fits(c, requirement)]
            installed = {c: region & reach.get((c, None, None), Marker.FALSE) for c in fitting}
            settled = self._settled.setdefault((parent, table, requirement.name), {})
            for target, there in installed.items():
                for other, elsewhere in installed.items():
                    if other != target:
                        there &= ~elsewhere
                before = settled.get(target, Marker.FALSE)
                if not there.implies(before):
                    settled[target] = before | there
                    changed = True
        return changed

    def plan(self) -> Plan:
        self.tolerated = {}
        self._choose_override_rule()
        self._loose = None
        reach = self.reachability()
        while self._settle(reach):
            reach = self.reachability()
        pending = [m for m in self._missing(reach) if m.name not in self.added]
        if not pending and self.loose:
            # Wheels that disagree, where the lock installs only more than needed: keep
            # those packages' edges, and follow them (they may reach more).
            for package in self.lock.packages:
                if package.id in self.loose and package.id not in self.unverified:
                    excess = self._excess(package, reach)
                    if excess:
                        self.tolerated[package.id] = excess
            if self.tolerated:
                reach = self.reachability(reach, self.tolerated)
                pending = [m for m in self._missing(reach) if m.name not in self.added]
        findings: list[Finding] = []
        edits: dict[PackageId, PackagePlan] = {}
        verified = 0
        if pending:
            return Plan(
                findings, edits, [], {}, [], pending, dict(self.unverified), 0, set(self.failed)
            )

        final_names: dict[str, int] = {}
        removed = [
            p.id
            for p in self.lock.packages
            if (p.id, None, None) not in reach
            and p not in self.lock.members
            and not self._kept_by_uv((p.id, None, None))
        ]
        removed_set = set(removed)
        for package_id in self._all_ids():
            if package_id not in removed_set:
                final_names[package_id.name] = final_names.get(package_id.name, 0) + 1

        for package in self.lock.packages:
            if not package.source.is_registry or package.id in removed_set:
                continue
            if package.id in self.unverified:
                continue
            expected = self.expected_edges(package.id)
            if expected is None:
                continue
            verified += 1
            if package.id in self.tolerated:
                continue
            actual = self.locked_edges(package)
            plan = self._compare(package.id, expected, actual, reach, final_names, findings)
            self._open_findings(package.id, reach, findings)
            if plan.tables or plan.removed_tables:
                edits[package.id] = plan

        for member in self.lock.members:
            plan = self._compare_member(member, reach, final_names, findings)
            if plan.tables:
                edits[member.id] = plan

        added_edges: dict[PackageId, dict[Table, list[Dependency]]] = {}
        for added in self.added.values():
            expected = self.expected_edges(added.id) or {}
            tables: dict[Table, list[Dependency]] = {}
            for table, targets in expected.items():
                here = reach.get((added.id, *table), Marker.FALSE)
                if here.is_false():
                    continue
                tables[table] = self._write_edges(targets, here, final_names)
            added_edges[added.id] = tables
            findings.append(
                Finding(
                    added.id,
                    "missing-package",
                    f"{added.id.name} {added.id.version} is required but not in the lock",
                    fix=f"add {added.id.name} {added.id.version} from {added.id.source.location}",
                    harm="less",
                )
            )
        for package_id in removed:
            findings.append(
                Finding(
                    package_id,
                    "orphan",
                    f"{package_id.name} {package_id.version} is not reachable from any member",
                    fix="remove it",
                )
            )
        added = [a for a in self.added.values() if (a.id, None, None) in reach]
        unrepairable = self._clashes(added, removed_set, reach, findings)
        self._second_versions(added, edits, removed_set, final_names, reach)
        for item in added:
            # Like uv, count the combinations the conflicts forbid as reachable: uv keeps
            # every wheel such a combination could install.
            here = reach[(item.id, None, None)] | ~self.conflicts_allowed
            item.wheels = tuple(
                sorted(
                    (w for w in item.wheels if self._wheel_reachable(w.filename, here)),
                    key=lambda w: w.filename,
                )
            )
        return Plan(
            findings,
            edits,
            added,
            added_edges,
            removed,
            [],
            dict(self.unverified),
            verified,
            set(self.failed),
            dict(self.tolerated),
            unrepairable,
        )

    def _compare_member(
        self,
        member: Package,
        reach: Mapping[Node, Marker],
        final_names: Mapping[str, int],
        findings: list[Finding],
    ) -> PackagePlan:
        """A member's edges that lack an extra its requirements ask for (see
        :meth:`member_edges`); every other difference is left alone."""
        plan = PackagePlan()
        wanted_tables = self.member_edges(member)
        actual = self.locked_edges(member)
        for table, want in wanted_tables.items():
            have = actual.get(table, {})
            here = reach.get((member.id, *table), Marker.FALSE)
            if want == have or here.is_false():
                continue
            where = "" if table == MAIN else f" [{table[1]}]"
            changed = False
            for target in sorted(want, key=lambda t: t.sort_key()):
                for extra in sorted(k for k in want[target] if k is not None):
                    lacking = want[target][extra] & ~have.get(target, {}).get(extra, Marker.FALSE)
                    if (lacking & here).is_false():
                        continue
                    changed = True
                    findings.append(
                        Finding(
                            member.id,
                            "missing-extra",
                            f"{member.name}{where}: asks for {target.name}[{extra}], but its "
                            f"locked edge to {target.name} {target.version} lacks the extra, "
                            "which the index's metadata defines",
                            target=target.name,
                            requirement=f"{target.name}[{extra}]",
                            fix=f'add extra = ["{extra}"] to the edge to {target.name}',
                            harm="less",
                        )
                    )
            if changed:
                plan.tables[table] = self._write_edges(
                    want, here, final_names, keep=have, package=member, table=table
                )
        return plan

    def _clashes(
        self,
        added: list[AddedPackage],
        removed: set[PackageId],
        reach: Mapping[Node, Marker],
        findings: list[Finding],
    ) -> list[str]:
        """Versions to add that some environment needs beside a locked version of the same
        name: one environment cannot hold both, so no repair in place exists."""
        problems = []
        for item in added:
            mine = reach[(item.id, None, None)]
            for other in self.lock.named(item.id.name):
                if other.id in removed:
                    continue
                both = mine & reach.get((other.id, None, None), Marker.FALSE)
                if both.is_false():
                    continue
                wanting = self._requirers(item.id, both, reach)
                holding = self._requirers(other.id, both, reach)
                upgrade = [
                    p.name for p, _ in wanting if p.source.is_registry and p.name != item.id.name
                ]
                command = " ".join(
                    f"--upgrade-package {n}" for n in dict.fromkeys([*upgrade, item.id.name])
                )
                message = (
                    f"{_requirers_text(wanting, item.id)}, {_requirers_text(holding, other.id)}, "
                    f"both where {both.simplify_under(self.root) or 'it applies'}; one "
                    f"environment cannot hold two versions of {item.id.name}, so there is no "
                    f"repair in place: run `uv lock {command}`"
                )
                problems.append(message)
                findings.append(Finding(item.id, "version-conflict", message, target=item.id.name))
        return problems

    def _requirers(
        self, target: PackageId, where: Marker, reach: Mapping[Node, Marker]
    ) -> list[tuple[PackageId, str]]:
        """The packages whose edges reach ``target`` somewhere in ``where``, with what each
        asks for (its requirement's specifier, if known)."""
        found: dict[PackageId, str] = {}
        for (package_id, kind, name), here in reach.items():
            activation = self._edges(package_id).get((kind, name), {}).get(target)
            if not activation or (here & activation.get(None, Marker.FALSE) & where).is_false():
                continue
            asked = self._declared.get((package_id, (kind, name), target), [])
            if not asked:
                package = self.lock.package(package_id)
                metadata = package.metadata if package is not None else {}
                asked = [
                    f"{target.name}{entry.get('specifier', '')}"
                    for entry in metadata.get("requires-dist", ())
                    if isinstance(entry, Mapping) and entry.get("name") == target.name
                ]
            specifiers = [str(r.specifier) for r in map(parse_requirement, asked) if r]
            found.setdefault(package_id, ",".join(dict.fromkeys(s for s in specifiers if s)))
        return sorted(found.items(), key=lambda item: item[0].sort_key())

    def _second_versions(
        self,
        added: list[AddedPackage],
        edits: dict[PackageId, PackagePlan],
        removed: set[PackageId],
        final_names: Mapping[str, int],
        reach: Mapping[Node, Marker],
    ) -> None:
        """A name that gets a second version: every edge to it names its version and
        source, and each version gets the ``resolution-markers`` uv writes."""
        names = {
            a.id.name
            for a in added
            if final_names.get(a.id.name, 0) > 1
            and any(p.id not in removed for p in self.lock.named(a.id.name))
        }
        if not names:
            return
        for item in added:
            if item.id.name in names:
                item.resolution_markers = self._resolution_markers(reach[(item.id, None, None)])
        for package in (p for n in sorted(names) for p in self.lock.named(n)):
            if package.id in removed or package.resolution_markers:
                continue
            markers = self._resolution_markers(reach.get((package.id, None, None), Marker.FALSE))
            if markers:
                edits.setdefault(package.id, PackagePlan()).resolution_markers = markers
        for package in self.lock.packages:
            if package.id in removed:
                continue
            plan = edits.get(package.id)
            for kind, name, dep in package.edges():
                table = (kind, name)
                if dep.name not in names or dep.version is not None:
                    continue
                if plan is not None and table in plan.tables:
                    continue  # rewritten: qualified below
                plan = edits.setdefault(package.id, PackagePlan())
                plan.tables[table] = list(_table_edges(package, table))
            if plan is None:
                continue
            for table, deps in plan.tables.items():
                plan.tables[table] = [
                    self._qualified(dep, package) if dep.name in names else dep for dep in deps
                ]

    def _qualified(self, dep: Dependency, parent: Package) -> Dependency:
        if dep.version is not None:
            return dep
        target = self.lock.resolve(dep, parent).id
        return replace(dep, version=target.version, source=target.source)

    def _resolution_markers(self, here: Marker) -> tuple[str, ...]:
        """What uv writes as a package's ``resolution-markers``: the lock's forks that
        install it; their PEP 508 parts when those are disjoint, else the forks in full;
        none that is always true. A fork keeps the text uv gave it where it is unchanged."""
        forks = {
            text: marker
            for text, marker in ((t, Marker.parse(t)) for t in self.lock.resolution_markers)
            if not (marker & here).is_false()
        }
        python = (
            Marker.from_requires_python(self.lock.requires_python)
            if self.lock.requires_python
            else Marker.TRUE
        )
        plain: dict[Marker, str] = {}
        for text, marker in forks.items():
            part = marker.without_extras().simplify_under(python)
            plain.setdefault(part, text if part == marker else str(part))
        parts = list(plain)
        if all(a.is_disjoint(b) for i, a in enumerate(parts) for b in parts[i + 1 :]):
            return tuple(text for part, text in plain.items() if not part.is_true())
        return tuple(text for text, marker in forks.items() if not marker.is_true())

    @staticmethod
    def _wheel_reachable(filename: str, here: Marker) -> bool:
        text = wheel_marker_text(filename)
        return not text or not (here & Marker.parse(text)).is_false()

    def _compare(
        self,
        package_id: PackageId,
        expected: dict[Table, dict[PackageId, dict[str | None, Marker]]],
        actual: dict[Table, dict[PackageId, dict[str | None, Marker]]],
        reach: Mapping[Node, Marker],
        final_names: Mapping[str, int],
        findings: list[Finding],
    ) -> PackagePlan:
        plan = PackagePlan()
        package = self.lock.package(package_id)
        assert package is not None
        label = f"{package_id.name} {package_id.version}"
        for table in sorted(set(expected) | set(actual), key=lambda t: (t[0] or "", t[1] or "")):
            here = reach.get((package_id, *table), Marker.FALSE)
            want = expected.get(table, {})
            have = actual.get(table, {})
            where = "" if table == MAIN else f" [{table[1]}]"
            if here.is_false():
                if table != MAIN and table in actual and not self._kept_by_uv((package_id, *table)):
                    findings.append(
                        Finding(
                            package_id,
                            "unused-extra",
                            f"{label}: extra table{where} is never activated",
                            fix="remove the table",
                        )
                    )
                    plan.removed_tables.add(table)
                continue
            changed = False
            for target in sorted(set(want) | set(have), key=lambda t: t.sort_key()):
                wanted = {k: m & here for k, m in want.get(target, {}).items()}
                wanted = {k: m for k, m in wanted.items() if not m.is_false()}
                present = {k: m & here for k, m in have.get(target, {}).items()}
                present = {k: m for k, m in present.items() if not m.is_false()}
                if wanted == present:
                    continue
                changed = True
                findings.append(
                    self._finding(
                        package_id,
                        label + where,
                        target,
                        wanted,
                        present,
                        want.get(target, {}),
                        have.get(target, {}),
                        here,
                        table,
                    )
                )
            if changed:
                plan.tables[table] = self._write_edges(
                    want, here, final_names, keep=have, package=package, table=table
                )
        return plan

    def _finding(
        self,
        package_id: PackageId,
        label: str,
        target: PackageId,
        wanted: dict[str | None, Marker],
        present: dict[str | None, Marker],
        raw: dict[str | None, Marker],
        locked: dict[str | None, Marker],
        here: Marker,
        table: Table,
    ) -> Finding:
        name = target.name
        requirement, declared = self._declared_text(package_id, table, target)
        if not present:
            marker = self._edge_marker(raw.get(None, Marker.FALSE), here)
            edge = f'{{ name = "{name}", marker = "{marker}" }}' if str(marker) else name
            return Finding(
                package_id,
                "missing-dependency",
                f"{label}: missing dependency {name} — the index declares {declared}",
                target=name,
                requirement=requirement,
                fix=f"add {edge}",
                harm="less",
            )
        if not wanted:
            unmet = self._unmet(package_id, table, target)
            if unmet:
                return Finding(
                    package_id,
                    "unsatisfied-requirement",
                    f"{label}: dependency on {name} goes to {target.version}, which does not "
                    f"satisfy {'; '.join(unmet)}",
                    target=name,
                    requirement=unmet[0],
                    fix=f"remove edge to {name} {target.version}",
                )
            return Finding(
                package_id,
                "extra-dependency",
                f"{label}: dependency on {name} is not declared by the index",
                target=name,
                fix=f"remove edge to {name}",
                harm="more",
            )
        differences = []
        if wanted.get(None) != present.get(None):
            should = self._edge_marker(raw.get(None, Marker.FALSE), here)
            differences.append(f"lock: {_show(locked)}, should be: {_show({None: should})}")
        for extra in sorted(k for k in {*wanted, *present} if k is not None):
            if wanted.get(extra) == present.get(extra):
                continue
            if extra not in present:
                differences.append(f"the edge lacks extra {extra!r}")
            elif extra not in wanted:
                differences.append(f"extra {extra!r} is not asked for")
            else:
                should = self._edge_marker(raw.get(extra, Marker.FALSE), here)
                differences.append(
                    f"extra {extra!r}: lock: {_show({None: locked.get(extra, Marker.FALSE)})}, "
                    f"should be: {_show({None: should})}"
                )
        what = (
            "applies in the wrong environments"
            if wanted.get(None) != present.get(None)
            else "has the wrong extras"
        )
        return Finding(
            package_id,
            "wrong-marker",
            f"{label}: dependency on {name} {what} "
            f"({'; '.join(differences)}; index declares {declared})",
            target=name,
            requirement=requirement,
            fix=f"rewrite the edge to {name}",
            harm="less" if _misses(wanted, present) else "more",
        )

    def _declared_text(
        self, package_id: PackageId, table: Table, target: PackageId
    ) -> tuple[str, str]:
        """What the index declares for an edge: the lines, and for the message the lines
        with the wheels that declare them where lockfix merged wheels that disagree."""
        texts = dict.fromkeys(self._declared.get((package_id, table, target), []))
        metadata = self.metadata.get(package_id)
        origins = {line: (lines, by) for line, lines, by in metadata.origins} if metadata else {}
        requirement = "; ".join(dict.fromkeys(origins[t][0] if t in origins else t for t in texts))
        message = "; ".join(
            dict.fromkeys(f"{origins[t][0]}, {origins[t][1]}" if t in origins else t for t in texts)
        )
        return requirement, message

    def _unmet(self, package_id: PackageId, table: Table, target: PackageId) -> list[str]:
        """The requirements of one table on a target's name that its version fails
        ([] when none does, or when none is on that name)."""
        requirements = [
            r for r in (self._lowered_for(package_id) or {}).get(table, ()) if r.name == target.name
        ]
        if any(self._fits(target, r) for r in requirements):
            return []
        return list(dict.fromkeys(r.text for r in requirements))

    def _open_findings(
        self, package_id: PackageId, reach: Mapping[Node, Marker], findings: list[Finding]
    ) -> None:
        """Where a requirement on a name locked at several versions has no edge, and no
        version can be proven to be the one: a finding without a fix."""
        for (parent, table, requirement), open_part in self._open.items():
            if parent != package_id:
                continue
            here = reach.get((parent, *table), Marker.FALSE)
            if (open_part & here).is_false():
                continue
            fitting = [c for c in self._named(requirement.name) if self._fits(c, requirement)]
            if not fitting:
                continue  # a version to add: see _missing
            where = "" if table == MAIN else f" [{table[1]}]"
            marker = self._edge_marker(open_part, here)
            versions = ", ".join(str(c.version) for c in fitting)
            findings.append(
                Finding(
                    package_id,
                    "missing-dependency",
                    f"{package_id.name} {package_id.version}{where}: no edge to "
                    f"{requirement.name} where {str(marker) or 'it applies'}, and which of its "
                    f"locked versions ({versions}) it should reach there cannot be told",
                    target=requirement.name,
                    requirement=requirement.text,
                )
            )

    def _edge_marker(self, marker: Marker, here: Marker) -> Marker:
        """The marker to write: simplified under the parent's reach, with its conflict context."""
        if (marker & here).is_false():
            return Marker.FALSE
        context = here.only_extras()
        simplified = marker.simplify_under(here.without_extras())
        result = simplified & context
        return result.simplify_under(self.root.only_extras()) if not context.is_true() else result

    def _write_edges(
        self,
        want: dict[PackageId, dict[str | None, Marker]],
        here: Marker,
        final_names: Mapping[str, int],
        keep: dict[PackageId, dict[str | None, Marker]] | None = None,
        package: Package | None = None,
        table: Table = MAIN,
    ) -> list[Dependency]:
        """The edges of one table: unchanged targets keep their text, others are written anew."""
        kept: dict[PackageId, list[Dependency]] = {}
        if package is not None:
            for kind, name, dep in package.edges():
                if (kind, name) == table:
                    kept.setdefault(self.lock.resolve(dep, package).id, []).append(dep)
        edges: list[Dependency] = []
        for target in sorted(want, key=lambda t: t.sort_key()):
            activation = want[target]
            wanted = {k: m & here for k, m in activation.items()}
            wanted = {k: m for k, m in wanted.items() if not m.is_false()}
            if not wanted:
                continue
            if keep is not None and target in kept:
                present = {k: m & here for k, m in keep.get(target, {}).items()}
                present = {k: m for k, m in present.items() if not m.is_false()}
                if present == wanted:
                    edges.extend(kept[target])
                    continue
            qualified = final_names.get(target.name, 0) > 1
            by_marker: dict[Marker, list[str]] = {}
            extras_only = {k: m for k, m in activation.items() if k is not None}
            base = activation.get(None, Marker.FALSE)
            covered = Marker.FALSE
            for extra, marker in sorted(extras_only.items()):
                by_marker.setdefault(marker, []).append(extra)
                covered |= marker
            if not (base & here & ~covered).is_false() or not by_marker:
                by_marker.setdefault(base, [])
            for marker, extras in sorted(by_marker.items(), key=lambda kv: (kv[1], str(kv[0]))):
                written = self._edge_marker(marker, here)
                if written.is_false():
                    continue
                edges.append(
                    Dependency(
                        name=target.name,
                        version=target.version if qualified else None,
                        source=target.source if qualified else None,
                        extras=tuple(sorted(extras)),
                        marker=str(written),
                    )
                )
        return edges


def _misses(wanted: Mapping[str | None, Marker], present: Mapping[str | None, Marker]) -> bool:
    """Whether a locked edge is missing somewhere the metadata wants it (or lacks an extra
    there)."""
    return any(
        not (marker & ~present.get(key, Marker.FALSE)).is_false() for key, marker in wanted.items()
    )


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


def _table_edges(package: Package, table: Table) -> tuple[Dependency, ...]:
    kind, name = table
    if kind is None:
        return package.dependencies
    tables = package.optional_dependencies if kind == "extra" else package.dev_dependencies
    return tables.get(name or "", ())


def _requirers_text(requirers: list[tuple[PackageId, str]], target: PackageId) -> str:
    """``torch 2.9.0 requires nvidia-nccl-cu12==2.27.5``, for up to three requirers."""
    shown = [
        f"{p.name} {p.version or ''}".rstrip()
        + (f" requires {target.name}{spec}" if spec else f" reaches {target.name} {target.version}")
        for p, spec in requirers[:3]
    ]
    more = f" and {len(requirers) - 3} more" if len(requirers) > 3 else ""
    return ", ".join(shown) + more if shown else f"{target.name} {target.version} is installed"


def _show(activation: Mapping[str | None, Marker]) -> str:
    base = activation.get(None)
    return repr(str(base)) if base is not None and str(base) else "always"


def _python_allows(requires_python: str, version: Version) -> bool:
    """A file's Requires-Python as uv reads it; uv skips a file whose value it cannot read."""
    specifier = parse_specifiers(requires_python)
    return specifier is not None and _contains(specifier, version)


def _contains(specifier: SpecifierSet, version: str | Version) -> bool:
    try:
        return specifier.contains(version, prereleases=True)
    except (InvalidSpecifier, InvalidVersion):
        return False


def _is_version(text: str) -> bool:
    try:
        Version(text.rstrip(".*"))
    except InvalidVersion:
        return False
    return True


def _python_floor(requires_python: str | None) -> Version | None:
    if not requires_python:
        return None
    floors = [
        Version(s.version.rstrip(".*"))  # '==3.12.*': 3.12
        for s in SpecifierSet(requires_python)
        if s.operator in (">=", "~=", "==") and _is_version(s.version)
    ]
    floors += [
        Version(s.version)
        for s in SpecifierSet(requires_python)
        if s.operator == ">" and _is_version(s.version)
    ]
    return max(floors) if floors else None


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
