"""Turn (lock, true metadata) into findings and a list of edits.

The planner is pure: it never fetches anything. It reads what the checks learned from an
:class:`~lockfix.analysis.evidence.Evidence` the engine fills (the metadata of every
registry package, and which ones could not be verified); for names the lock lacks, the
engine fetches the index pages it asks for (:attr:`Plan.pending`) and hands them to
:meth:`Planner.choose`, then calls :meth:`Planner.plan` again until nothing is pending.

Reachability is computed over the graph the lock *should* have: registry packages take
their edges from their metadata, every other package keeps the edges the lock gives. Each
node — a package's main table, or one of its extras or dependency groups — gets a
universal marker (environment plus uv's conflict pseudo-extras) saying when it is
installed. An edge is right when, wherever its parent is installed, it fires exactly when
the metadata says it should.

The jobs live in their own modules: :mod:`~lockfix.analysis.lowering` (requirements under
the manifest's rules), :mod:`~lockfix.analysis.graph` (expected and locked edges),
:mod:`~lockfix.analysis.reachability`, :mod:`~lockfix.analysis.compare` (findings and
tables to rewrite), :mod:`~lockfix.analysis.versions` (names to add, second versions) and
:mod:`~lockfix.analysis.edges` (writing edges as uv does).
"""

from __future__ import annotations

from collections.abc import Mapping

from lockfix._gc import collector_paused
from lockfix.analysis.compare import Comparison, tolerated_excess
from lockfix.analysis.edges import write_edges
from lockfix.analysis.evidence import Evidence
from lockfix.analysis.findings import Finding, FindingKind, Missing, Plan
from lockfix.analysis.graph import Graph, Node
from lockfix.analysis.lowering import Lowered, ManifestRules, legacy_overrides
from lockfix.analysis.reachability import Reachability
from lockfix.analysis.versions import Versions
from lockfix.dist.metadata import CoreMetadata
from lockfix.dist.simple import ProjectPage
from lockfix.lock.edits import AddedPackage, Table
from lockfix.lock.lockfile import Dependency, Lock, PackageId, Source
from lockfix.lock.project import ProjectConfig
from lockfix.markers import Marker


class Planner:
    """Plans the repair of one lock from the evidence it is given (read at each :meth:`plan`)."""

    def __init__(self, lock: Lock, config: ProjectConfig, evidence: Evidence | None = None) -> None:
        self.lock = lock
        self.config = config
        self.evidence = evidence if evidence is not None else Evidence()
        self.rules = ManifestRules.from_manifest(lock.manifest)
        self.graph = Graph(lock, self.rules, self.evidence)
        self.reachability = Reachability(self.graph)
        self.comparison = Comparison(self.graph, self.reachability)
        self.versions = Versions(self.graph, config)

    @property
    def added(self) -> dict[str, AddedPackage]:
        return self.graph.added

    def lowered_here(self) -> tuple[bool, list[tuple[PackageId, CoreMetadata, Lowered]]]:
        """The override rule of the last :meth:`plan` (True: the older one) and the
        requirements it lowered itself rather than took from the evidence."""
        return self.graph.legacy_overrides, self.graph.lowered_here()

    def choose(self, missing: Missing, index_url: str, page: ProjectPage) -> AddedPackage:
        """Pick the version uv would lock for a missing name from one index's page."""
        version, files = self.versions.pick_version(missing, page)
        sdists = [f for f in files if not f.is_wheel]
        package = AddedPackage(
            id=PackageId(missing.name, version, Source("registry", index_url)),
            metadata=None,
            sdist=sdists[0] if sdists else None,
            wheels=tuple(f for f in files if f.is_wheel),
        )
        self.graph.added[missing.name] = package
        self.graph.forget()
        return package

    @collector_paused()
    def plan(self) -> Plan:
        reach, pending = self._reach()
        unverified = {p: item.reason for p, item in self.graph.unverified.items()}
        statuses = {p: item.status for p, item in self.graph.unverified.items()}
        if pending:
            return Plan(pending=pending, unverified=unverified, statuses=statuses)
        plan = Plan(unverified=unverified, statuses=statuses, excess=dict(self.graph.tolerated))
        plan.removed = [
            p.id
            for p in self.lock.packages
            if (p.id, None, None) not in reach
            and p not in self.lock.members
            and not self.reachability.kept_by_uv((p.id, None, None))
        ]
        removed_set = set(plan.removed)
        final_names: dict[str, int] = {}
        for package_id in self.graph.all_ids():
            if package_id not in removed_set:
                final_names[package_id.name] = final_names.get(package_id.name, 0) + 1
        self._compare(plan, reach, final_names, removed_set)
        plan.added_edges = self._add(plan.findings, reach, final_names)
        for package_id in plan.removed:
            plan.findings.append(
                Finding(
                    package_id,
                    FindingKind.ORPHAN,
                    f"{package_id.name} {package_id.version} is not reachable from any member",
                    fix="remove it",
                )
            )
        plan.added = [a for a in self.graph.added.values() if (a.id, None, None) in reach]
        plan.unrepairable = self.versions.clashes(plan.added, removed_set, reach, plan.findings)
        self.versions.second_versions(plan.added, plan.edits, removed_set, final_names, reach)
        self._keep_reachable_wheels(plan.added, reach)
        return plan

    def _reach(self) -> tuple[dict[Node, Marker], list[Missing]]:
        """The reach of every node, and the names still to fetch."""
        graph = self.graph
        graph.tolerated = {}
        graph.refresh(legacy_overrides(self.lock, self.rules, self.evidence.metadata))
        self.reachability.reset()
        reach = self.reachability.compute()
        while graph.settle(reach):
            reach = self.reachability.compute()
        pending = [m for m in self.versions.missing(reach) if m.name not in graph.added]
        if not pending and self.evidence.loose:
            # Wheels that disagree, where the lock installs only more than needed: keep
            # those packages' edges, and follow them (they may reach more).
            for package in self.lock.packages:
                if package.id in self.evidence.loose and package.id not in graph.unverified:
                    excess = tolerated_excess(self.graph, package, reach)
                    if excess:
                        graph.tolerated[package.id] = excess
            if graph.tolerated:
                reach = self.reachability.compute(reach, graph.tolerated)
                pending = [m for m in self.versions.missing(reach) if m.name not in graph.added]
        return reach, pending

    def _compare(
        self,
        plan: Plan,
        reach: Mapping[Node, Marker],
        final_names: Mapping[str, int],
        removed: set[PackageId],
    ) -> None:
        """Compare every verified registry package's edges, then the members'."""
        for package in self.lock.packages:
            if not package.source.is_registry or package.id in removed:
                continue
            if package.id in self.graph.unverified:
                continue
            expected = self.graph.expected_edges(package.id)
            if expected is None:
                continue
            plan.verified += 1
            if package.id in self.graph.tolerated:
                continue
            actual = self.graph.locked_edges(package)
            edits = self.comparison.compare(
                package.id, expected, actual, reach, final_names, plan.findings
            )
            self.comparison.open_findings(package.id, reach, plan.findings)
            if edits.tables or edits.removed_tables:
                plan.edits[package.id] = edits
        for member in self.lock.members:
            edits = self.comparison.compare_member(member, reach, final_names, plan.findings)
            if edits.tables:
                plan.edits[member.id] = edits

    def _add(
        self, findings: list[Finding], reach: Mapping[Node, Marker], final_names: Mapping[str, int]
    ) -> dict[PackageId, dict[Table, list[Dependency]]]:
        """The edges of each package to add, with a finding for each."""
        added_edges: dict[PackageId, dict[Table, list[Dependency]]] = {}
        for added in self.graph.added.values():
            expected = self.graph.expected_edges(added.id) or {}
            tables: dict[Table, list[Dependency]] = {}
            for table, targets in expected.items():
                here = reach.get((added.id, *table), Marker.FALSE)
                if here.is_false():
                    continue
                tables[table] = write_edges(self.graph, targets, here, final_names)
            added_edges[added.id] = tables
            findings.append(
                Finding(
                    added.id,
                    FindingKind.MISSING_PACKAGE,
                    f"{added.id.name} {added.id.version} is required but not in the lock",
                    fix=f"add {added.id.name} {added.id.version} from {added.id.source.location}",
                    harm="less",
                )
            )
        return added_edges

    def _keep_reachable_wheels(
        self, added: list[AddedPackage], reach: Mapping[Node, Marker]
    ) -> None:
        for item in added:
            # Like uv, count the combinations the conflicts forbid as reachable: uv keeps
            # every wheel such a combination could install.
            here = reach[(item.id, None, None)] | ~self.graph.env.conflicts_allowed
            item.wheels = tuple(
                sorted(
                    (w for w in item.wheels if self.versions.wheel_reachable(w.filename, here)),
                    key=lambda w: w.filename,
                )
            )
