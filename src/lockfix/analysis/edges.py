"""Writing the edges of one table the way uv does: unchanged targets keep their text."""

from __future__ import annotations

from collections.abc import Mapping

from lockfix.analysis.graph import Graph
from lockfix.lock.edits import MAIN, Table
from lockfix.lock.lockfile import Dependency, Package, PackageId
from lockfix.markers import Marker


def write_edges(
    graph: Graph,
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
                kept.setdefault(graph.lock.resolve(dep, package).id, []).append(dep)
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
            written = graph.env.edge_marker(marker, here)
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


def qualified(graph: Graph, dep: Dependency, parent: Package) -> Dependency:
    if dep.version is not None:
        return dep
    target = graph.lock.resolve(dep, parent).id
    return Dependency(dep.name, target.version, target.source, dep.extras, dep.marker)


def table_edges(package: Package, table: Table) -> tuple[Dependency, ...]:
    kind, name = table
    if kind is None:
        return package.dependencies
    tables = package.optional_dependencies if kind == "extra" else package.dev_dependencies
    return tables.get(name or "", ())
