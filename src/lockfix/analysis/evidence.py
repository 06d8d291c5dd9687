"""What the checks of the locked packages learned, as the planner reads it.

The engine (and the second process, whose :class:`Evidence` it merges) fills one: the
metadata of each registry package read from its index, and the packages whose metadata
could not be had, each with an :class:`UnverifiedStatus` and the reason to show. It may
also hand over requirements lowered in an earlier run (:meth:`Evidence.add_lowered`), which
the planner takes instead of lowering the same metadata again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

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


@dataclass(frozen=True, slots=True)
class Unverified:
    status: UnverifiedStatus
    reason: str


@dataclass(slots=True, repr=False, eq=False)
class Evidence:
    metadata: dict[PackageId, CoreMetadata] = field(default_factory=dict)
    # wheels that disagree: everything any of them declares, each with its own marker
    # (``metadata`` holds the merged view)
    loose: dict[PackageId, CoreMetadata] = field(default_factory=dict)
    unverified: dict[PackageId, Unverified] = field(default_factory=dict)
    # requirements lowered earlier: package → (the metadata they were lowered from, by
    # override rule (legacy or not) the tables), under the lock's manifest rules
    lowered: dict[PackageId, tuple[CoreMetadata, dict[bool, Lowered]]] = field(default_factory=dict)

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
