"""The graph the lock *should* have, and what each of its requirements reaches.

Registry packages take their edges from their metadata (lowered under the manifest's
rules), every other package keeps the edges the lock gives. A requirement on a name locked
at several versions goes to the version(s) the lock's forks and edges prove (see
:meth:`Graph.targets`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from packaging.specifiers import SpecifierSet

from lockfix.analysis.environment import Environment, union
from lockfix.analysis.evidence import Evidence, Unverified
from lockfix.analysis.lowering import (
    Lowered,
    LoweredRequirement,
    ManifestRules,
    contains,
    lower_requirements,
    member_requests,
)
from lockfix.dist.metadata import CoreMetadata
from lockfix.lock.edits import AddedPackage, Table
from lockfix.lock.lockfile import Lock, Package, PackageId
from lockfix.markers import Marker

Node = tuple[PackageId, str | None, str | None]
# table → target → {None: when the edge is installed, extra: when it asks for that extra}
Edges = dict[Table, dict[PackageId, dict[str | None, Marker]]]
# a requirement's specifier and the versions of its name that fit it
_Fitting = tuple[SpecifierSet, list[PackageId]]


def fits(package_id: PackageId, requirement: LoweredRequirement) -> bool:
    """Whether a locked package can stand for a requirement: its version satisfies the
    specifier (a package from a git, path or URL source stands for any: uv's source
    choice for a name applies across the graph)."""
    if package_id.version is None or not package_id.source.is_registry:
        return True
    return contains(requirement.specifier, package_id.version)


class _Fits:
    """Which locked versions fit a requirement's specifier, read once per name and specifier
    and once per specifier and version (by the specifier's id: each specifier is kept, so
    that its id stays its own). A name the graph does not hold never reads a specifier."""

    def __init__(self) -> None:
        # name → (its versions in the graph, id of a specifier → (it, the versions that fit))
        self.by_name: dict[str, tuple[list[PackageId], dict[int, _Fitting]]] = {}
        self._versions: dict[tuple[int, str], tuple[SpecifierSet, bool]] = {}

    def fitting(
        self, requirement: LoweredRequirement, named: Callable[[str], list[PackageId]]
    ) -> tuple[list[PackageId], list[PackageId]]:
        known = self.by_name.get(requirement.name)
        if known is None:
            known = self.by_name[requirement.name] = (named(requirement.name), {})
        candidates, by_specifier = known
        if not candidates:
            return candidates, candidates
        specifier = requirement.specifier
        fit = by_specifier.get(id(specifier))
        if fit is None:
            fitting = [c for c in candidates if self._fits(c, specifier)]
            fit = by_specifier[id(specifier)] = (specifier, fitting)
        return candidates, fit[1]

    def _fits(self, package_id: PackageId, specifier: SpecifierSet) -> bool:
        """:func:`fits`, once per specifier and version (many names share both)."""
        version = package_id.version
        if version is None or not package_id.source.is_registry:
            return True
        key = (id(specifier), version)
        known = self._versions.get(key)
        if known is None:
            known = self._versions[key] = (specifier, contains(specifier, version))
        return known[1]


class Graph:
    """The lock, the evidence and the packages to add, read as one dependency graph."""

    def __init__(self, lock: Lock, rules: ManifestRules, evidence: Evidence) -> None:
        self.lock = lock
        self.rules = rules
        self.evidence = evidence
        self.env = Environment(lock)
        self.added: dict[str, AddedPackage] = {}
        self.legacy_overrides = False
        # the unverified packages the planner takes as such (see refresh)
        self.unverified: dict[PackageId, Unverified] = {}
        # packages whose wheels disagree whose locked edges are kept (see Planner.plan)
        self.tolerated: dict[PackageId, list[str]] = {}
        self.members = {m.id for m in lock.members}
        # the lines behind each expected edge: parent → (table, target, line) (see declared)
        self._declared: dict[PackageId, list[tuple[Table, PackageId, str]]] = {}
        # package → (metadata, its tables, whether the tables were lowered in this run)
        self._lowered: dict[PackageId, tuple[CoreMetadata, Lowered, bool]] = {}
        # a requirement on a name locked at several versions: the part of its marker that
        # no edge of the lock covers and no version is proven for (see targets), and the
        # versions proven later from what is installed there anyway (see settle)
        self.open: dict[tuple[PackageId, Table, LoweredRequirement], Marker] = {}
        self._settled: dict[tuple[PackageId, Table, str], dict[PackageId, Marker]] = {}
        # computed from the graph as it is (see forget): expected edges, defined extras,
        # versions by requirement name and specifier
        self._expected: dict[PackageId, Edges | None] = {}
        self._extras: dict[tuple[PackageId, str], bool] = {}
        self._fits = _Fits()

    def forget(self) -> None:
        """Drop what was computed from the graph as it was: to be called whenever the
        evidence, the packages to add or the settled versions change."""
        self._expected.clear()
        self._extras.clear()
        self._fits.by_name.clear()

    def refresh(self, legacy_overrides: bool) -> None:
        """Read the evidence anew (a package whose metadata the project declares needs
        none fetched, so it is never unverified), under the override rule given."""
        self.forget()
        self.unverified = {
            package_id: item
            for package_id, item in self.evidence.unverified.items()
            if self.rules.declared(package_id) is None
        }
        if legacy_overrides != self.legacy_overrides:
            self.legacy_overrides = legacy_overrides
            self._lowered.clear()

    def all_ids(self) -> list[PackageId]:
        return [p.id for p in self.lock.packages] + [a.id for a in self.added.values()]

    def named(self, name: str) -> list[PackageId]:
        ids = [p.id for p in self.lock.named(name)]
        if name in self.added:
            ids.append(self.added[name].id)
        return ids

    def metadata(self, package_id: PackageId) -> CoreMetadata | None:
        """The metadata a package's edges come from: declared by the project, read from
        its index, or (a package to add) chosen by the planner."""
        metadata = self.rules.declared(package_id) or self.evidence.metadata.get(package_id)
        if metadata is None:
            added = self.added.get(package_id.name)
            metadata = added.metadata if added and added.id == package_id else None
        return metadata

    def lowered_for(self, package_id: PackageId) -> dict[Table, list[LoweredRequirement]] | None:
        metadata = self.metadata(package_id)
        if metadata is None:
            return None
        cached = self._lowered.get(package_id)
        if cached is not None and cached[0] is metadata:
            return cached[1]
        lowered = self.evidence.known_lowering(package_id, metadata, self.legacy_overrides)
        fresh = lowered is None
        if lowered is None:
            lowered = lower_requirements(
                metadata, self.rules, legacy_overrides=self.legacy_overrides
            )
        self._lowered[package_id] = (metadata, lowered, fresh)
        return lowered

    def lowered_here(self) -> list[tuple[PackageId, CoreMetadata, Lowered]]:
        """The requirements this graph lowered itself (not taken from the evidence), under
        its current override rule."""
        return [
            (package_id, metadata, tables)
            for package_id, (metadata, tables, fresh) in self._lowered.items()
            if fresh
        ]

    def targets(
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
        ``resolution-markers`` allow the environment, or (see :meth:`settle`) the only
        one installed there anyway. The part left open is recorded in ``self.open``.
        """
        candidates, fitting = self.fitting(requirement)
        if len(candidates) <= 1:
            return [(c, Marker.TRUE) for c in fitting]
        result = self._by_edges(parent, table, requirement.name, fitting)
        covered = Marker.FALSE
        for marker in result.values():
            covered |= marker
        rest = ~covered
        forks = {c: self.forks(c) for c in fitting}
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
            self.open.pop(key, None)
        else:
            self.open[key] = open_part
        return [(target, marker) for target, marker in result.items() if not marker.is_false()]

    def fitting(self, requirement: LoweredRequirement) -> tuple[list[PackageId], list[PackageId]]:
        """The versions of a requirement's name in the graph, and those that fit it."""
        return self._fits.fitting(requirement, self.named)

    def _by_edges(
        self, parent: PackageId, table: Table, name: str, fitting: list[PackageId]
    ) -> dict[PackageId, Marker]:
        """Where the lock's own edges from a table of ``parent`` go to each fitting version
        of ``name`` (see :meth:`targets`)."""
        package = self.lock.package(parent)
        split: dict[PackageId, Marker] = {}
        if package is not None:
            for kind, table_name, dep in package.edges():
                if (kind, table_name) == table and dep.name == name:
                    target = self.lock.resolve(dep, package).id
                    split[target] = split.get(target, Marker.FALSE) | Marker.parse(dep.marker)
        trusted = {t: m & self.forks(t) for t, m in split.items() if t in fitting}
        result: dict[PackageId, Marker] = {}
        for target, marker in trusted.items():
            for other, elsewhere in trusted.items():
                if other != target:
                    marker &= ~elsewhere  # two versions at once: neither edge is evidence
            result[target] = marker
        return result

    def forks(self, target: PackageId) -> Marker:
        locked = self.lock.package(target)
        if locked is None or not locked.resolution_markers:
            return Marker.TRUE
        return union(locked.resolution_markers)

    def expected_edges(self, package_id: PackageId) -> Edges | None:
        """For each table: target → {None: when installed, extra: when that extra is active}
        (computed once until :meth:`forget`; not to be modified)."""
        if package_id in self._expected:
            return self._expected[package_id]
        lowered = self.lowered_for(package_id)
        expected = None if lowered is None else self.activations(package_id, lowered)
        self._expected[package_id] = expected
        return expected

    def activations(
        self,
        package_id: PackageId,
        lowered: Mapping[Table, list[LoweredRequirement]],
        record: bool = True,
    ) -> Edges:
        tables: Edges = {}
        declared = self._declared.setdefault(package_id, []) if record else None
        for table, requirements in lowered.items():
            targets = tables.setdefault(table, {})
            for requirement in requirements:
                candidates, fitting = self.fitting(requirement)
                if len(candidates) > 1:
                    found = self.targets(package_id, table, requirement)
                elif fitting:  # targets' answer for one version, without its call
                    found = [(fitting[0], Marker.TRUE)]
                else:
                    continue  # the name is not locked, or its one version does not fit
                for target, forks in found:
                    if declared is not None:
                        declared.append((table, target, requirement.text))
                    when = requirement.marker if forks.is_true() else requirement.marker & forks
                    activation = targets.setdefault(target, {})
                    extras = [e for e in requirement.extras if self.defines_extra(target, e)]
                    for key in (None, *extras):
                        before = activation.get(key)
                        activation[key] = when if before is None else before | when
        return tables

    def declared(self, parent: PackageId, table: Table, target: PackageId) -> list[str]:
        """The lines behind an expected edge (once per computation of the edges)."""
        return [t for w, to, t in self._declared.get(parent, ()) if w == table and to == target]

    def defines_extra(self, package_id: PackageId, extra: str) -> bool:
        """Whether an extra of a package has anything to install (uv drops empty ones)."""
        known = self._extras.get((package_id, extra))
        if known is not None:
            return known
        lowered = self.lowered_for(package_id)
        if lowered is None:
            package = self.lock.package(package_id)
            known = package is None or extra in package.optional_dependencies
        else:
            root = self.env.root
            known = any(not (r.marker & root).is_false() for r in lowered.get(("extra", extra), ()))
        self._extras[(package_id, extra)] = known
        return known

    def locked_edges(self, package: Package) -> Edges:
        tables: Edges = {}
        for kind, name, dep in package.edges():
            target = self.lock.resolve(dep, package).id
            activation = tables.setdefault((kind, name), {}).setdefault(target, {})
            marker = Marker.parse(dep.marker)
            for key in (None, *dep.extras):
                activation[key] = activation.get(key, Marker.FALSE) | marker
        return tables

    def edges(self, package_id: PackageId) -> Edges:
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
        if package is not None and package_id in self.members:
            return self.member_edges(package)
        if package is not None:
            return self.locked_edges(package)
        return self.expected_edges(package_id) or {}

    # -- members asking for extras ------------------------------------------------------

    def member_edges(self, package: Package) -> Edges:
        """A member's locked edges, with the extras its own requirements ask for added
        where the locked target defines them and the edge lacks them.

        uv reads the metadata of one wheel; when that wheel lacks an extra other wheels of
        the version define (openmm's ``cuda12``), uv drops the extra from the member's
        edge. Everything else about a member's edges is kept as locked."""
        tables = self.locked_edges(package)
        for table, by_name in member_requests(package, self.rules).items():
            for target, activation in tables.get(table, {}).items():
                for extra, marker in by_name.get(target.name, {}).items():
                    if target in self.unverified or self.lowered_for(target) is None:
                        continue  # only what the index's metadata says
                    if not self.defines_extra(target, extra):
                        continue
                    wanted = activation.get(None, Marker.FALSE) & marker
                    activation[extra] = activation.get(extra, Marker.FALSE) | wanted
        return tables

    def settle(self, reach: Mapping[Node, Marker]) -> bool:
        """Name the version for open parts of requirements where only one fitting version
        is installed anyway (reached from elsewhere): an environment holds one version of a
        name, so the edge must go there. True when something new was settled."""
        changed = False
        for (parent, table, requirement), open_part in list(self.open.items()):
            region = open_part & reach.get((parent, *table), Marker.FALSE)
            if region.is_false():
                continue
            fitting = self.fitting(requirement)[1]
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
        if changed:
            self._expected.clear()
        return changed
