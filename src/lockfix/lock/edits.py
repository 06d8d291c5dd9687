"""The edits a plan asks of a lock, in the terms the writer applies them.

The analysis decides them; :mod:`lockfix.lock.writer` applies them. They live here so that
the lock layer never needs the analysis that produced them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from lockfix.dist.metadata import CoreMetadata
from lockfix.dist.simple import IndexFile
from lockfix.lock.lockfile import Dependency, PackageId

Table = tuple[str | None, str | None]  # (None, None) main, ("extra", e), ("group", g)
MAIN: Table = (None, None)


@dataclass(slots=True)
class AddedPackage:
    id: PackageId
    metadata: CoreMetadata | None
    sdist: IndexFile | None
    wheels: tuple[IndexFile, ...]
    resolution_markers: tuple[str, ...] = ()


@dataclass(slots=True)
class PackagePlan:
    """New contents for the dependency tables of one package (None: leave as is)."""

    tables: dict[Table, list[Dependency]] = field(default_factory=dict)
    removed_tables: set[Table] = field(default_factory=set)
    # the package's `resolution-markers`, when a second version of its name is added
    resolution_markers: tuple[str, ...] | None = None


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
