"""Expected edges against locked ones: the findings, and the tables to write anew."""

from __future__ import annotations

from collections.abc import Mapping

from lockfix.analysis.edges import write_edges
from lockfix.analysis.findings import Finding, FindingKind
from lockfix.analysis.graph import Edges, Graph, Node, fits
from lockfix.analysis.lowering import lower_requirements
from lockfix.analysis.reachability import Reachability
from lockfix.lock.edits import MAIN, PackagePlan, Table
from lockfix.lock.lockfile import Package, PackageId
from lockfix.markers import Marker


class Comparison:
    """Where each package's locked edges differ from the expected ones, under its reach."""

    def __init__(self, graph: Graph, reachability: Reachability) -> None:
        self.graph = graph
        self.reachability = reachability

    def compare(
        self,
        package_id: PackageId,
        expected: Edges,
        actual: Edges,
        reach: Mapping[Node, Marker],
        final_names: Mapping[str, int],
        findings: list[Finding],
    ) -> PackagePlan:
        plan = PackagePlan()
        package = self.graph.lock.package(package_id)
        assert package is not None
        label = f"{package_id.name} {package_id.version}"
        for table in sorted(set(expected) | set(actual), key=lambda t: (t[0] or "", t[1] or "")):
            here = reach.get((package_id, *table), Marker.FALSE)
            want = expected.get(table, {})
            have = actual.get(table, {})
            where = "" if table == MAIN else f" [{table[1]}]"
            if here.is_false():
                if (
                    table != MAIN
                    and table in actual
                    and not self.reachability.kept_by_uv((package_id, *table))
                ):
                    findings.append(_unused(package_id, f"{label}: extra table{where}"))
                    plan.removed_tables.add(table)
                continue
            changed = False
            # the same activations are the same wherever the table is installed
            differ = [t for t in {*want, *have} if want.get(t) != have.get(t)]
            for target in sorted(differ, key=lambda t: t.sort_key()):
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
                plan.tables[table] = write_edges(
                    self.graph, want, here, final_names, keep=have, package=package, table=table
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
            marker = self.graph.env.edge_marker(raw.get(None, Marker.FALSE), here)
            edge = f'{{ name = "{name}", marker = "{marker}" }}' if str(marker) else name
            return Finding(
                package_id,
                FindingKind.MISSING_DEPENDENCY,
                f"{label}: missing dependency {name} — the index declares {declared}",
                target=name,
                requirement=requirement,
                fix=f"add {edge}",
                harm="less",
            )
        if not wanted:
            return self._unwanted(package_id, label, target, table)
        differences = self._differences(wanted, present, raw, locked, here)
        what = (
            "applies in the wrong environments"
            if wanted.get(None) != present.get(None)
            else "has the wrong extras"
        )
        return Finding(
            package_id,
            FindingKind.WRONG_MARKER,
            f"{label}: dependency on {name} {what} "
            f"({'; '.join(differences)}; index declares {declared})",
            target=name,
            requirement=requirement,
            fix=f"rewrite the edge to {name}",
            harm="less" if _misses(wanted, present) else "more",
        )

    def _unwanted(
        self, package_id: PackageId, label: str, target: PackageId, table: Table
    ) -> Finding:
        """A locked edge the metadata does not ask for (or whose version does not fit)."""
        name = target.name
        unmet = self._unmet(package_id, table, target)
        if unmet:
            return Finding(
                package_id,
                FindingKind.UNSATISFIED_REQUIREMENT,
                f"{label}: dependency on {name} goes to {target.version}, which does not "
                f"satisfy {'; '.join(unmet)}",
                target=name,
                requirement=unmet[0],
                fix=f"remove edge to {name} {target.version}",
            )
        return Finding(
            package_id,
            FindingKind.EXTRA_DEPENDENCY,
            f"{label}: dependency on {name} is not declared by the index",
            target=name,
            fix=f"remove edge to {name}",
            harm="more",
        )

    def _differences(
        self,
        wanted: dict[str | None, Marker],
        present: dict[str | None, Marker],
        raw: dict[str | None, Marker],
        locked: dict[str | None, Marker],
        here: Marker,
    ) -> list[str]:
        """How a locked edge's markers and extras differ from the wanted ones, for people."""
        differences: list[str] = []
        if wanted.get(None) != present.get(None):
            should = self.graph.env.edge_marker(raw.get(None, Marker.FALSE), here)
            differences.append(f"lock: {_show(locked)}, should be: {_show({None: should})}")
        for extra in sorted(k for k in {*wanted, *present} if k is not None):
            if wanted.get(extra) == present.get(extra):
                continue
            if extra not in present:
                differences.append(f"the edge lacks extra {extra!r}")
            elif extra not in wanted:
                differences.append(f"extra {extra!r} is not asked for")
            else:
                should = self.graph.env.edge_marker(raw.get(extra, Marker.FALSE), here)
                differences.append(
                    f"extra {extra!r}: lock: {_show({None: locked.get(extra, Marker.FALSE)})}, "
                    f"should be: {_show({None: should})}"
                )
        return differences

    def _declared_text(
        self, package_id: PackageId, table: Table, target: PackageId
    ) -> tuple[str, str]:
        """What the index declares for an edge: the lines, and for the message the lines
        with the wheels that declare them where lockfix merged wheels that disagree."""
        texts = dict.fromkeys(self.graph.declared(package_id, table, target))
        metadata = self.graph.metadata(package_id)
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
            r
            for r in (self.graph.lowered_for(package_id) or {}).get(table, ())
            if r.name == target.name
        ]
        if any(fits(target, r) for r in requirements):
            return []
        return list(dict.fromkeys(r.text for r in requirements))

    def open_findings(
        self, package_id: PackageId, reach: Mapping[Node, Marker], findings: list[Finding]
    ) -> None:
        """Where a requirement on a name locked at several versions has no edge, and no
        version can be proven to be the one: a finding without a fix."""
        for (parent, table, requirement), open_part in self.graph.open.items():
            if parent != package_id:
                continue
            here = reach.get((parent, *table), Marker.FALSE)
            if (open_part & here).is_false():
                continue
            _, fitting = self.graph.fitting(requirement)
            if not fitting:
                continue  # a version to add: see _missing
            where = "" if table == MAIN else f" [{table[1]}]"
            marker = self.graph.env.edge_marker(open_part, here)
            versions = ", ".join(str(c.version) for c in fitting)
            findings.append(
                Finding(
                    package_id,
                    FindingKind.MISSING_DEPENDENCY,
                    f"{package_id.name} {package_id.version}{where}: no edge to "
                    f"{requirement.name} where {str(marker) or 'it applies'}, and which of its "
                    f"locked versions ({versions}) it should reach there cannot be told",
                    target=requirement.name,
                    requirement=requirement.text,
                )
            )

    def compare_member(
        self,
        member: Package,
        reach: Mapping[Node, Marker],
        final_names: Mapping[str, int],
        findings: list[Finding],
    ) -> PackagePlan:
        """A member's edges that lack an extra its requirements ask for (see
        :meth:`member_edges`); every other difference is left alone."""
        plan = PackagePlan()
        wanted_tables = self.graph.member_edges(member)
        actual = self.graph.locked_edges(member)
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
                            FindingKind.MISSING_EXTRA,
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
                plan.tables[table] = write_edges(
                    self.graph, want, here, final_names, keep=have, package=member, table=table
                )
        return plan


def _misses(wanted: Mapping[str | None, Marker], present: Mapping[str | None, Marker]) -> bool:
    """Whether a locked edge is missing somewhere the metadata wants it (or lacks an extra
    there)."""
    return any(
        not (marker & ~present.get(key, Marker.FALSE)).is_false() for key, marker in wanted.items()
    )


def _show(activation: Mapping[str | None, Marker]) -> str:
    base = activation.get(None)
    return repr(str(base)) if base is not None and str(base) else "always"


def tolerated_excess(
    graph: Graph, package: Package, reach: Mapping[Node, Marker]
) -> list[str] | None:
    """Where a package whose wheels disagree has locked edges that install more than the
    picked wheel needs but nothing no wheel declares, and nothing less: one line per
    such edge. None when the edges miss something, go beyond every wheel, or match."""
    loose_metadata = graph.evidence.loose.get(package.id)
    expected = graph.expected_edges(package.id)
    if loose_metadata is None or expected is None:
        return None
    loose = graph.activations(
        package.id, lower_requirements(loose_metadata, graph.rules), record=False
    )
    actual = graph.locked_edges(package)
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
                    where = graph.env.edge_marker(more, here)
                    excess.append(f"{name} where {where}" if str(where) else name)
    return sorted(excess) or None


def _unused(package_id: PackageId, table: str) -> Finding:
    return Finding(
        package_id,
        FindingKind.UNUSED_EXTRA,
        f"{table} is never activated",
        fix="remove the table",
    )
