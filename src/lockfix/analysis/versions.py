"""Versions: which to add for a name the lock lacks, where an added version clashes with a
locked one, and the ``resolution-markers`` of a name that gets a second version."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from lockfix.analysis.edges import qualified, table_edges
from lockfix.analysis.findings import Finding, FindingKind, Missing
from lockfix.analysis.graph import Graph, Node
from lockfix.analysis.lowering import contains
from lockfix.dist.requirements import parse_requirement, parse_specifiers
from lockfix.dist.simple import IndexFile, ProjectPage
from lockfix.dist.tags import wheel_marker_text
from lockfix.lock.edits import AddedPackage, PackagePlan
from lockfix.lock.lockfile import PackageId
from lockfix.lock.project import ProjectConfig
from lockfix.markers import Marker


class NoMatchingVersion(Exception):
    """No version on the index satisfies what the graph asks of a missing package."""


class Versions:
    """The versions of the names the plan adds, and of names that end up with two."""

    def __init__(self, graph: Graph, config: ProjectConfig) -> None:
        self.graph = graph
        self.config = config

    def missing(self, reach: Mapping[Node, Marker]) -> list[Missing]:
        wanted: dict[str, list[tuple[SpecifierSet, str]]] = {}
        for (package_id, kind, name), here in reach.items():
            lowered = self.graph.lowered_for(package_id)
            if lowered is None or (
                self.graph.lock.package(package_id) is not None
                and not package_id.source.is_registry
            ):
                continue
            for requirement in lowered.get((kind, name), ()):
                if self.graph.fitting(requirement)[1] or (here & requirement.marker).is_false():
                    continue
                wanted.setdefault(requirement.name, []).append(
                    (requirement.specifier, f"{package_id.name} {package_id.version}")
                )
        for root in self.graph.rules.roots:
            if (
                root.registry
                and not self.graph.named(root.name)
                and not (self.graph.env.root & root.marker).is_false()
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

    def pick_version(self, missing: Missing, page: ProjectPage) -> tuple[str, list[IndexFile]]:
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
        lower = _python_floor(self.graph.lock.requires_python)
        # as uv: every final release that satisfies the specifiers before any prerelease,
        # newest first, whether or not a specifier names a prerelease; a prerelease only once
        # no final release is left (none satisfies, or none has files it can install)
        allowed = [v for v in by_version if missing.specifier.contains(v, prereleases=True)]
        for version in sorted(allowed, key=lambda v: (not v.is_prerelease, v), reverse=True):
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

    def clashes(
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
            for other in self.graph.lock.named(item.id.name):
                if other.id in removed:
                    continue
                both = mine & reach.get((other.id, None, None), Marker.FALSE)
                if both.is_false():
                    continue
                wanting = self.requirers(item.id, both, reach)
                holding = self.requirers(other.id, both, reach)
                upgrade = [
                    p.name for p, _ in wanting if p.source.is_registry and p.name != item.id.name
                ]
                command = " ".join(
                    f"--upgrade-package {n}" for n in dict.fromkeys([*upgrade, item.id.name])
                )
                message = (
                    f"{_requirers_text(wanting, item.id)}, {_requirers_text(holding, other.id)}, "
                    f"both where {both.simplify_under(self.graph.env.root) or 'it applies'}; one "
                    f"environment cannot hold two versions of {item.id.name}, so there is no "
                    f"repair in place: run `uv lock {command}`"
                )
                problems.append(message)
                findings.append(
                    Finding(item.id, FindingKind.VERSION_CONFLICT, message, target=item.id.name)
                )
        return problems

    def requirers(
        self, target: PackageId, where: Marker, reach: Mapping[Node, Marker]
    ) -> list[tuple[PackageId, str]]:
        """The packages whose edges reach ``target`` somewhere in ``where``, with what each
        asks for (its requirement's specifier, if known)."""
        found: dict[PackageId, str] = {}
        for (package_id, kind, name), here in reach.items():
            activation = self.graph.edges(package_id).get((kind, name), {}).get(target)
            if not activation or (here & activation.get(None, Marker.FALSE) & where).is_false():
                continue
            asked = self.graph.declared(package_id, (kind, name), target)
            if not asked:
                package = self.graph.lock.package(package_id)
                metadata = package.metadata if package is not None else {}
                asked = [
                    f"{target.name}{entry.get('specifier', '')}"
                    for entry in metadata.get("requires-dist", ())
                    if isinstance(entry, Mapping) and entry.get("name") == target.name
                ]
            specifiers = [str(r.specifier) for r in map(parse_requirement, asked) if r]
            found.setdefault(package_id, ",".join(dict.fromkeys(s for s in specifiers if s)))
        return sorted(found.items(), key=lambda item: item[0].sort_key())

    def second_versions(
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
            and any(p.id not in removed for p in self.graph.lock.named(a.id.name))
        }
        if not names:
            return
        for item in added:
            if item.id.name in names:
                item.resolution_markers = self.resolution_markers(reach[(item.id, None, None)])
        for package in (p for n in sorted(names) for p in self.graph.lock.named(n)):
            if package.id in removed or package.resolution_markers:
                continue
            markers = self.resolution_markers(reach.get((package.id, None, None), Marker.FALSE))
            if markers:
                edits.setdefault(package.id, PackagePlan()).resolution_markers = markers
        for package in self.graph.lock.packages:
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
                plan.tables[table] = list(table_edges(package, table))
            if plan is None:
                continue
            for table, deps in plan.tables.items():
                plan.tables[table] = [
                    qualified(self.graph, dep, package) if dep.name in names else dep
                    for dep in deps
                ]

    def resolution_markers(self, here: Marker) -> tuple[str, ...]:
        """What uv writes as a package's ``resolution-markers``: the lock's forks that
        install it; their PEP 508 parts when those are disjoint, else the forks in full;
        none that is always true. A fork keeps the text uv gave it where it is unchanged."""
        forks = {
            text: marker
            for text, marker in ((t, Marker.parse(t)) for t in self.graph.lock.resolution_markers)
            if not (marker & here).is_false()
        }
        python = (
            Marker.from_requires_python(self.graph.lock.requires_python)
            if self.graph.lock.requires_python
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
    def wheel_reachable(filename: str, here: Marker) -> bool:
        text = wheel_marker_text(filename)
        return not text or not (here & Marker.parse(text)).is_false()


def _requirers_text(requirers: list[tuple[PackageId, str]], target: PackageId) -> str:
    """``torch 2.9.0 requires nvidia-nccl-cu12==2.27.5``, for up to three requirers."""
    shown = [
        f"{p.name} {p.version or ''}".rstrip()
        + (f" requires {target.name}{spec}" if spec else f" reaches {target.name} {target.version}")
        for p, spec in requirers[:3]
    ]
    more = f" and {len(requirers) - 3} more" if len(requirers) > 3 else ""
    return ", ".join(shown) + more if shown else f"{target.name} {target.version} is installed"


def _python_allows(requires_python: str, version: Version) -> bool:
    """A file's Requires-Python as uv reads it; uv skips a file whose value it cannot read."""
    specifier = parse_specifiers(requires_python)
    return specifier is not None and contains(specifier, version)


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
