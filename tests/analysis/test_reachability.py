"""The reach of every node, against a plain fixpoint that grows each target key by key."""

from __future__ import annotations

from collections import deque
from pathlib import Path

import pytest

from lockfix.analysis.graph import Edges, Node, fits
from lockfix.analysis.planner import Planner
from lockfix.analysis.reachability import _Walk
from lockfix.dist.metadata import CoreMetadata
from lockfix.lock.lockfile import PackageId, parse_lock
from lockfix.lock.project import infer_config
from lockfix.markers import Marker

_REPO = Path(__file__).resolve().parents[2]
_LOCKS = [
    _REPO / "fixtures" / "bench" / "real" / "uv.lock",
    *sorted((_REPO / "fixtures" / "locks").glob("*/reference.uv.lock")),
    *sorted((_REPO.parent / "shared" / "real-locks").glob("*/uv.lock")),
]


def _reference(planner: Planner, seed: dict[Node, Marker]) -> dict[Node, Marker]:
    """The fixpoint from ``seed``: every contribution of every key of an edge grown into
    its target's main table and extra one at a time, in queue order."""
    reach = dict(seed)
    queue = deque(reach)
    queued = set(queue)

    def grow(node: Node, marker: Marker) -> None:
        new = reach.get(node, Marker.FALSE) | marker
        if new != reach.get(node, Marker.FALSE):
            reach[node] = new
            if node not in queued:
                queued.add(node)
                queue.append(node)

    edges: dict[PackageId, Edges] = {}
    while queue:
        node = queue.popleft()
        queued.discard(node)
        package_id, kind, name = node
        if package_id not in edges:
            edges[package_id] = planner.graph.edges(package_id)
        for target, activation in edges[package_id].get((kind, name), {}).items():
            for key, marker in activation.items():
                contribution = reach[node] & marker
                if contribution.is_false():
                    continue
                grow((target, None, None), contribution)
                if key is not None:
                    grow((target, "extra", key), contribution)
    return reach


@pytest.mark.parametrize("path", _LOCKS, ids=lambda p: p.parent.name)
def test_the_reach_is_the_plain_fixpoint_in_the_same_order(path: Path) -> None:
    if not path.exists():
        pytest.skip("lock not present")
    lock = parse_lock(path.read_text())
    planner = Planner(lock, infer_config(lock))
    reach = planner.reachability.compute()
    seeded = _Walk({})  # the members' tables and the manifest's roots, in their order
    planner.reachability._seed(seeded, planner.graph.env.root)
    expected = _reference(planner, seeded.reach)
    assert reach == expected
    assert list(reach) == list(expected)  # the order later steps list findings in


def test_a_target_grows_by_every_key_of_its_edge(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where a key's marker is not within the edge's own (no table the graph builds has
    that, but the fixpoint must not depend on it), the target's main table still grows by
    every key's contribution."""
    lock = parse_lock(_LOCKS[0].read_text())
    planner = Planner(lock, infer_config(lock))
    edges = planner.graph.edges
    linux = Marker.parse("sys_platform == 'linux'")

    def narrowed(package_id: PackageId) -> Edges:
        return {
            table: {
                target: {
                    key: marker & linux if key is None else marker for key, marker in a.items()
                }
                for target, a in targets.items()
            }
            for table, targets in edges(package_id).items()
        }

    monkeypatch.setattr(planner.graph, "edges", narrowed)
    reach = planner.reachability.compute()
    seeded = _Walk({})
    planner.reachability._seed(seeded, planner.graph.env.root)
    expected = _reference(planner, seeded.reach)
    assert reach == expected
    # some table is installed off Linux only through an extra of its edge
    members = {m.id for m in lock.members}
    assert any(
        not m.implies(linux)
        for (package_id, kind, _), m in reach.items()
        if kind is None and package_id not in members
    )


def _reference_activations(planner: Planner, package_id: PackageId) -> Edges:
    """The expected edges of a package with every requirement sent through
    :meth:`Graph.targets` (which names the versions for any count of them)."""
    graph = planner.graph
    tables: Edges = {}
    for table, requirements in (graph.lowered_for(package_id) or {}).items():
        targets = tables.setdefault(table, {})
        for requirement in requirements:
            for target, forks in graph.targets(package_id, table, requirement):
                when = requirement.marker & forks
                activation = targets.setdefault(target, {})
                extras = [e for e in requirement.extras if graph.defines_extra(target, e)]
                for key in (None, *extras):
                    activation[key] = activation.get(key, Marker.FALSE) | when
    return tables


@pytest.mark.parametrize("path", _LOCKS[:12], ids=lambda p: p.parent.name)
def test_expected_edges_are_those_of_targets_for_every_requirement(path: Path) -> None:
    """Metadata made from each package's locked edges, with a requirement on a name the
    lock lacks and one no locked version fits: the expected edges are those every
    requirement's targets give, for names locked at one version as at several."""
    if not path.exists():
        pytest.skip("lock not present")
    lock = parse_lock(path.read_text())
    planner = Planner(lock, infer_config(lock))
    for package in lock.packages:
        if not package.source.is_registry:
            continue
        lines = [
            f"{dep.name}{'[' + ','.join(dep.extras) + ']' if dep.extras else ''}"
            + (f" ; {dep.marker}" if dep.marker else "")
            for kind, _, dep in package.edges()
            if kind is None
        ]
        lines += ["not-locked-anywhere>=1", f"{lines[0].split(' ')[0]}>=999999"] if lines else []
        meta = CoreMetadata(package.name, package.version or "0", tuple(lines), None, (), (), "2.3")
        planner.evidence.add_metadata(package.id, meta)
    compared = 0
    graph = planner.graph
    for package in lock.packages:
        expected = graph.expected_edges(package.id)
        if expected is None:
            continue
        assert expected == _reference_activations(planner, package.id), package.id
        for requirements in (graph.lowered_for(package.id) or {}).values():
            for requirement in requirements:
                named = graph.named(requirement.name)
                fitting = [c for c in named if fits(c, requirement)]
                assert graph.fitting(requirement) == (named, fitting), requirement
        compared += 1
    assert compared
