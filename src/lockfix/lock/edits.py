"""The edits a plan asks of a lock, in the terms the writer applies them.

The analysis decides them; :mod:`lockfix.lock.writer` applies them. They live here so that
the lock layer never needs the analysis that produced them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from lockfix.dist.metadata import CoreMetadata
from lockfix.dist.simple import IndexFile
from lockfix.lock.lockfile import Dependency, PackageId

Table = tuple[str | None, str | None]  # (None, None) main, ("extra", e), ("group", g)
MAIN: Table = (None, None)


class AddedPackage:
    __slots__ = ("id", "metadata", "resolution_markers", "sdist", "wheels")

    def __init__(
        self,
        id: PackageId,
        metadata: CoreMetadata | None,
        sdist: IndexFile | None,
        wheels: tuple[IndexFile, ...],
        resolution_markers: tuple[str, ...] = (),
    ) -> None:
        self.id = id
        self.metadata = metadata
        self.sdist = sdist
        self.wheels = wheels
        self.resolution_markers = resolution_markers

    def __repr__(self) -> str:
        return f"AddedPackage({self.id!r}, wheels={len(self.wheels)})"


class PackagePlan:
    """New contents for the dependency tables of one package (None: leave as is)."""

    __slots__ = ("removed_tables", "resolution_markers", "tables")

    def __init__(
        self,
        tables: dict[Table, list[Dependency]] | None = None,
        removed_tables: set[Table] | None = None,
        # the package's `resolution-markers`, when a second version of its name is added
        resolution_markers: tuple[str, ...] | None = None,
    ) -> None:
        self.tables: dict[Table, list[Dependency]] = {} if tables is None else tables
        self.removed_tables: set[Table] = set() if removed_tables is None else removed_tables
        self.resolution_markers = resolution_markers

    def __repr__(self) -> str:
        return f"PackagePlan({self.tables!r}, {self.removed_tables!r}, {self.resolution_markers!r})"


class LockEdits(Protocol):
    """What the writer reads of a plan."""

    @property
    def changes(self) -> bool: ...

    @property
    def edits(self) -> Mapping[PackageId, PackagePlan]: ...

    @property
    def added(self) -> Sequence[AddedPackage]: ...

    @property
    def added_edges(self) -> Mapping[PackageId, dict[Table, list[Dependency]]]: ...

    @property
    def removed(self) -> Sequence[PackageId]: ...
