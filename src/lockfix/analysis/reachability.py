"""When each node of the graph is installed: a package's main table, or one of its extras or
dependency groups, with a universal marker (environment plus uv's conflict pseudo-extras),
grown from the members and the manifest's roots along the edges to a fixpoint."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping

from lockfix.analysis.graph import Edges, Graph, Node
from lockfix.lock.lockfile import PackageId
from lockfix.markers import Marker


class _Walk:
    """One fixpoint computation: the reach so far, and the nodes whose reach grew."""

    def __init__(self, reach: dict[Node, Marker]) -> None:
        self.reach = reach
        self.queue: deque[Node] = deque()
        self.queued: set[Node] = set()

    def grow(self, node: Node, marker: Marker) -> None:
        current = self.reach.get(node)
        if current is None:  # FALSE so far: it grows to the marker, unless that is FALSE
            if not marker.is_false():
                self.reach[node] = marker
                self.again(node)
            return
        new = current | marker
        if new != current:
            self.reach[node] = new
            self.again(node)

    def again(self, node: Node) -> None:
        if node not in self.queued:
            self.queued.add(node)
            self.queue.append(node)

    def pop(self) -> Node:
        node = self.queue.popleft()
        self.queued.discard(node)
        return node


class Reachability:
    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self._loose: dict[Node, Marker] | None = None  # reach without the conflicts

    def reset(self) -> None:
        """Forget what was computed from the graph as it was."""
        self._loose = None

    def compute(
        self,
        start: Mapping[Node, Marker] | None = None,
        changed: Iterable[PackageId] = (),
        *,
        roots: Marker | None = None,
    ) -> dict[Node, Marker]:
        """When each node (package table) is installed, as a fixpoint over the graph.

        ``start``: a fixpoint already reached, to grow from after the edges of ``changed``
        packages grew (only their reached tables are walked again). ``roots``: where the
        roots are installed (default: the environment's root)."""
        base = self.graph.env.root if roots is None else roots
        walk = _Walk(dict(start or {}))
        if start is not None:
            again = set(changed)
            for node in [node for node in walk.reach if node[0] in again]:
                walk.again(node)
        else:
            self._seed(walk, base)
        edges_cache: dict[PackageId, Edges] = {}
        reach, queue, grow = walk.reach, walk.queue, walk.grow
        while queue:
            node = walk.pop()
            package_id, kind, name = node
            edges = edges_cache.get(package_id)
            if edges is None:
                edges = edges_cache[package_id] = self.graph.edges(package_id)
            table = edges.get((kind, name))
            if not table:
                continue
            here = reach[node]
            for target, activation in table.items():
                # the target's main table grows by the union of what each key brings (the
                # same fixpoint, and the same order of nodes, as growing it key by key)
                main: Marker | None = None
                extras = []
                for key, marker in activation.items():
                    contribution = here & marker
                    if contribution.is_false():
                        continue
                    main = contribution if main is None else main | contribution
                    if key is not None:
                        extras.append((key, contribution))
                if main is not None:
                    grow((target, None, None), main)
                for key, contribution in extras:
                    grow((target, "extra", key), contribution)
        return reach

    def _seed(self, walk: _Walk, base: Marker) -> None:
        """The members' tables, and the roots outside the members."""
        env = self.graph.env
        for member in self.graph.lock.members:
            walk.grow((member.id, None, None), base)
            for extra in member.optional_dependencies:
                walk.grow((member.id, "extra", extra), base & env.gate(member, ("extra", extra)))
            for group in member.dev_dependencies:
                walk.grow((member.id, "group", group), base & env.gate(member, ("group", group)))
        # Roots outside the members, as uv installs them: each locked version of the name
        # where its resolution-markers hold, with the extras the root asks for.
        for root in self.graph.rules.roots:
            for target in self.graph.named(root.name):
                when = base & root.marker & self.graph.forks(target)
                if when.is_false():
                    continue
                walk.grow((target, None, None), when)
                for extra in root.extras:
                    walk.grow((target, "extra", extra), when)

    def kept_by_uv(self, node: Node) -> bool:
        """Whether uv keeps a node no allowed environment installs.

        uv prunes what no path of edge markers reaches, but takes two items of one conflict
        set as a possible combination there (its own edge markers spell such combinations
        out). What only such a combination reaches stays in the lock it writes."""
        if not self.graph.lock.conflicts:
            return False
        if self._loose is None:
            self._loose = self.compute(roots=self.graph.env.root_marker(conflicts=False))
        return node in self._loose
