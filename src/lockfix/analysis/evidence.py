"""What the checks of the locked packages learned, as the planner reads it.

The engine (and the second process, whose :class:`Evidence` it merges) fills one: the
metadata of each registry package read from its index, and the packages whose metadata
could not be had, each with an :class:`UnverifiedStatus` and the reason to show. It may
also hand over requirements lowered in an earlier run (:meth:`Evidence.add_lowered`), which
the planner takes instead of lowering the same metadata again.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from lockfix.analysis.lowering import Lowered
from lockfix.dist.metadata import CoreMetadata
from lockfix.dist.requirements import unreadable_lines
from lockfix.lock.lockfile import PackageId

# why a package whose metadata has a line lockfix cannot read is not verified
UNREADABLE = "a Requires-Dist line lockfix cannot read"


class UnverifiedStatus(StrEnum):
    """Why a package's metadata is missing."""

    FAILED = "failed"  # the index or network failed: a retry may succeed
    SKIPPED = "skipped"  # configuration leaves it out
    UNREADABLE = "unreadable"  # metadata with a Requires-Dist line lockfix cannot read
    DYNAMIC = "dynamic"  # not knowable without a build (or no file to read it from)
    ARTIFACT = "artifact"  # a locked file disagrees with its index (an artifact finding)


class Unverified:
    __slots__ = ("reason", "status")
    status: Final[UnverifiedStatus]
    reason: Final[str]

    def __init__(self, status: UnverifiedStatus, reason: str) -> None:
        self.status = status
        self.reason = reason

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Unverified):
            return NotImplemented
        return self.status == other.status and self.reason == other.reason

    def __hash__(self) -> int:
        return hash((self.status, self.reason))

    def __repr__(self) -> str:
        return f"Unverified({self.status!r}, {self.reason!r})"


class Evidence:
    __slots__ = ("loose", "lowered", "metadata", "unverified")

    def __init__(
        self,
        metadata: dict[PackageId, CoreMetadata] | None = None,
        loose: dict[PackageId, CoreMetadata] | None = None,
        unverified: dict[PackageId, Unverified] | None = None,
        lowered: dict[PackageId, tuple[CoreMetadata, dict[bool, Lowered]]] | None = None,
    ) -> None:
        self.metadata: dict[PackageId, CoreMetadata] = {} if metadata is None else metadata
        # wheels that disagree: everything any of them declares, each with its own marker
        # (``metadata`` holds the merged view)
        self.loose: dict[PackageId, CoreMetadata] = {} if loose is None else loose
        self.unverified: dict[PackageId, Unverified] = {} if unverified is None else unverified
        # requirements lowered earlier: package → (the metadata they were lowered from, by
        # override rule (legacy or not) the tables), under the lock's manifest rules
        self.lowered: dict[PackageId, tuple[CoreMetadata, dict[bool, Lowered]]] = (
            {} if lowered is None else lowered
        )

    def add_metadata(
        self, package_id: PackageId, metadata: CoreMetadata, *, checked: bool = False
    ) -> None:
        """The package's metadata; one with a Requires-Dist line lockfix cannot read makes
        the package not verified (its locked edges are kept), never a line read as absent.
        ``checked``: metadata known to have passed that check (stored facts)."""
        unreadable = [] if checked else unreadable_lines(metadata.requires_dist)
        if unreadable:
            more = f" and {len(unreadable) - 1} more" if len(unreadable) > 1 else ""
            self.mark_unverified(
                package_id, UnverifiedStatus.UNREADABLE, f"{UNREADABLE}: {unreadable[0]!r}{more}"
            )
            return
        self.metadata[package_id] = metadata

    def add_loose(self, package_id: PackageId, metadata: CoreMetadata) -> None:
        self.loose[package_id] = metadata

    def add_lowered(
        self, package_id: PackageId, metadata: CoreMetadata, legacy: bool, tables: Lowered
    ) -> None:
        """``metadata``'s requirements as :func:`~lockfix.analysis.lowering.lower_requirements`
        lowers them under the lock's manifest rules (``legacy``: the older override rule)."""
        known = self.lowered.get(package_id)
        if known is None or known[0] is not metadata:
            known = self.lowered[package_id] = (metadata, {})
        known[1][legacy] = tables

    def known_lowering(
        self, package_id: PackageId, metadata: CoreMetadata, legacy: bool
    ) -> Lowered | None:
        """What :meth:`add_lowered` holds for exactly this metadata object and rule."""
        known = self.lowered.get(package_id)
        if known is None or known[0] is not metadata:
            return None
        return known[1].get(legacy)

    def mark_unverified(self, package_id: PackageId, status: UnverifiedStatus, reason: str) -> None:
        """Record a package whose metadata could not be had, and why."""
        self.unverified[package_id] = Unverified(status, reason)

    def update(self, other: Evidence) -> None:
        """Take in what another check (the second process) learned."""
        self.metadata.update(other.metadata)
        self.loose.update(other.loose)
        self.unverified.update(other.unverified)
        self.lowered.update(other.lowered)

    def in_order(self, order: dict[PackageId, int]) -> None:
        """Sort by ``order`` (lock order), so that what follows does not depend on which
        check finished first."""
        for table in (self.metadata, self.loose):
            items = sorted(table.items(), key=lambda kv: order.get(kv[0], len(order)))
            table.clear()
            table.update(items)
