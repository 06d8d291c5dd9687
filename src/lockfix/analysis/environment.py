"""Where a lock applies: its Python range and supported environments, and the rule of its
conflict sets, as one marker; and how an edge's marker is written under its parent's."""

from __future__ import annotations

from collections.abc import Iterable

from lockfix.dist.names import canonicalize_name
from lockfix.lock.edits import Table
from lockfix.lock.lockfile import Lock, Package
from lockfix.markers import Marker, conflict_extra

# Environments that exist: Windows and only Windows has os_name 'nt'. uv simplifies
# markers with this knowledge, so a lock's edges are only meaningful within it.
_REAL_PLATFORMS = Marker.parse(
    "(os_name == 'nt' and sys_platform == 'win32') or (os_name != 'nt' and sys_platform != 'win32')"
)


def union(markers: Iterable[str]) -> Marker:
    result = Marker.FALSE
    for text in markers:
        result |= Marker.parse(text)
    return result


class Environment:
    """The lock's environments: ``root`` is where its members are installed."""

    def __init__(self, lock: Lock) -> None:
        self.lock = lock
        self.conflicts_allowed = self._conflicts_allowed()
        self.root = self.root_marker()

    def root_marker(self, conflicts: bool = True) -> Marker:
        root = (
            Marker.from_requires_python(self.lock.requires_python)
            if self.lock.requires_python
            else Marker.TRUE
        )
        if self.lock.supported_markers:
            root &= union(self.lock.supported_markers)
        return root & (self.conflicts_allowed if conflicts else Marker.TRUE) & _REAL_PLATFORMS

    def _conflicts_allowed(self) -> Marker:
        """True where no two items of one conflict set are active together."""
        allowed = Marker.TRUE
        for conflict_set in self.lock.conflicts:
            extras = [self.conflict_var(i.package, i.kind, i.name) for i in conflict_set]
            for i, first in enumerate(extras):
                for second in extras[i + 1 :]:
                    allowed &= ~(first & second)
        return allowed

    @staticmethod
    def conflict_var(package: str, kind: str, name: str | None) -> Marker:
        return Marker.parse(f"extra == '{conflict_extra(kind, package, name)}'")  # type: ignore[arg-type]

    def gate(self, package: Package, table: Table) -> Marker:
        kind, name = table
        for conflict_set in self.lock.conflicts:
            for item in conflict_set:
                if (
                    item.package == package.name
                    and item.kind == kind
                    and item.name is not None
                    and canonicalize_name(item.name) == canonicalize_name(name or "")
                ):
                    return self.conflict_var(package.name, kind, item.name)
        return Marker.TRUE

    def edge_marker(self, marker: Marker, here: Marker) -> Marker:
        """The marker to write: simplified under the parent's reach, with its conflict context."""
        if (marker & here).is_false():
            return Marker.FALSE
        context = here.only_extras()
        simplified = marker.simplify_under(here.without_extras())
        result = simplified & context
        return result.simplify_under(self.root.only_extras()) if not context.is_true() else result
