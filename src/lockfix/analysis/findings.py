"""What a plan reports: findings (each of a :class:`FindingKind`), names still to fetch, and
the :class:`Plan` that carries them with the edits for the writer."""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from packaging.specifiers import SpecifierSet

from lockfix.analysis.evidence import UnverifiedStatus
from lockfix.lock.edits import AddedPackage, PackagePlan, Table
from lockfix.lock.lockfile import Dependency, PackageId


class FindingKind(StrEnum):
    """The kind of a finding; its value is the text reports and JSON output show."""

    # the planner: edges and packages
    MISSING_DEPENDENCY = "missing-dependency"
    EXTRA_DEPENDENCY = "extra-dependency"
    UNSATISFIED_REQUIREMENT = "unsatisfied-requirement"
    WRONG_MARKER = "wrong-marker"
    MISSING_EXTRA = "missing-extra"
    UNUSED_EXTRA = "unused-extra"
    MISSING_PACKAGE = "missing-package"
    ORPHAN = "orphan"
    VERSION_CONFLICT = "version-conflict"
    # wheels of one version that declare different dependencies
    WHEELS_DISAGREE = "wheels-disagree"
    # locked files against the index (see lockfix.analysis.artifacts)
    ARTIFACT_NAME_MISMATCH = "artifact-name-mismatch"
    ARTIFACT_UNKNOWN = "artifact-unknown"
    ARTIFACT_HOST_MISMATCH = "artifact-host-mismatch"
    ARTIFACT_URL_MISMATCH = "artifact-url-mismatch"
    ARTIFACT_HASH_MISMATCH = "artifact-hash-mismatch"
    ARTIFACT_SIZE_MISMATCH = "artifact-size-mismatch"
    ARTIFACT_UPLOAD_TIME_MISMATCH = "artifact-upload-time-mismatch"
    ARTIFACT_YANKED = "artifact-yanked"


class Finding:
    __slots__ = ("fix", "harm", "kind", "message", "package", "requirement", "target")
    package: Final[PackageId]
    kind: Final[FindingKind]
    message: Final[str]
    target: Final[str | None]
    requirement: Final[str | None]
    fix: Final[str | None]
    # "less": the lock installs less than the index's metadata needs somewhere; "more":
    # only more than needed; None: neither applies (orphans, unused tables)
    harm: Final[str | None]

    def __init__(
        self,
        package: PackageId,
        # a FindingKind; its text (as stored facts keep it) is taken too and made one
        kind: FindingKind | str,
        message: str,
        target: str | None = None,
        requirement: str | None = None,
        fix: str | None = None,
        harm: str | None = None,
    ) -> None:
        self.package = package
        self.kind = FindingKind(kind)  # ValueError: unknown kind
        self.message = message
        self.target = target
        self.requirement = requirement
        self.fix = fix
        self.harm = harm

    def _key(self) -> tuple[object, ...]:
        return (
            self.package,
            self.kind,
            self.message,
            self.target,
            self.requirement,
            self.fix,
            self.harm,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Finding):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (
            "Finding({!r}, {!r}, {!r}, target={!r}, requirement={!r}, fix={!r}, harm={!r})"
        ).format(*self._key())

    def ranked(self, harm: str, message: str) -> Finding:
        """This finding with the harm it does, told in ``message``."""
        return Finding(
            self.package, self.kind, message, self.target, self.requirement, self.fix, harm
        )

    def detail(self) -> dict[str, str | None]:
        """What the finding says of its package, as JSON output and stored facts keep it."""
        return {
            "kind": self.kind,
            "message": self.message,
            "target": self.target,
            "requirement": self.requirement,
            "fix": self.fix,
            "harm": self.harm,
        }

    @classmethod
    def from_detail(cls, package: PackageId, detail: dict[str, str | None]) -> Finding:
        """The finding :meth:`detail` described (KeyError, ValueError: not one)."""
        return cls(
            package,
            str(detail["kind"]),
            str(detail["message"]),
            target=detail.get("target"),
            requirement=detail.get("requirement"),
            fix=detail.get("fix"),
            harm=detail.get("harm"),
        )


class Missing:
    """A name the lock needs but lacks: the engine fetches its page from ``indexes`` in order."""

    __slots__ = ("chain", "indexes", "name", "specifier")
    name: Final[str]
    specifier: Final[SpecifierSet]
    indexes: Final[tuple[str, ...]]
    chain: Final[tuple[str, ...]]

    def __init__(
        self, name: str, specifier: SpecifierSet, indexes: tuple[str, ...], chain: tuple[str, ...]
    ) -> None:
        self.name = name
        self.specifier = specifier
        self.indexes = indexes
        self.chain = chain

    def _key(self) -> tuple[object, ...]:
        return (self.name, self.specifier, self.indexes, self.chain)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Missing):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return "Missing({!r}, {!r}, {!r}, {!r})".format(*self._key())


class Plan:
    __slots__ = (
        "added",
        "added_edges",
        "edits",
        "excess",
        "findings",
        "pending",
        "removed",
        "statuses",
        "unrepairable",
        "unverified",
        "verified",
    )

    def __init__(
        self,
        *,
        findings: list[Finding] | None = None,
        edits: dict[PackageId, PackagePlan] | None = None,
        added: list[AddedPackage] | None = None,
        added_edges: dict[PackageId, dict[Table, list[Dependency]]] | None = None,
        removed: list[PackageId] | None = None,
        pending: list[Missing] | None = None,
        unverified: dict[PackageId, str] | None = None,
        statuses: dict[PackageId, UnverifiedStatus] | None = None,
        verified: int = 0,
        excess: dict[PackageId, list[str]] | None = None,
        unrepairable: list[str] | None = None,
    ) -> None:
        self.findings: list[Finding] = [] if findings is None else findings
        self.edits: dict[PackageId, PackagePlan] = {} if edits is None else edits
        self.added: list[AddedPackage] = [] if added is None else added
        self.added_edges: dict[PackageId, dict[Table, list[Dependency]]] = (
            {} if added_edges is None else added_edges
        )
        self.removed: list[PackageId] = [] if removed is None else removed
        # names to fetch before the plan is final (the rest of the plan is empty then)
        self.pending: list[Missing] = [] if pending is None else pending
        # packages left unverified (their locked edges are kept), with why, and what kind
        # of why
        self.unverified: dict[PackageId, str] = {} if unverified is None else unverified
        self.statuses: dict[PackageId, UnverifiedStatus] = {} if statuses is None else statuses
        self.verified = verified
        # packages whose wheels disagree and whose locked edges install only more than the
        # picked wheel needs, within what some wheel declares: kept as locked (where, per
        # edge)
        self.excess: dict[PackageId, list[str]] = {} if excess is None else excess
        # why no repair in place exists (two versions of a name needed in one environment)
        self.unrepairable: list[str] = [] if unrepairable is None else unrepairable

    def __repr__(self) -> str:
        return f"Plan(findings={self.findings!r}, pending={self.pending!r})"

    @property
    def changes(self) -> bool:
        return bool(self.edits or self.added or self.removed)

    @property
    def failed(self) -> set[PackageId]:
        """The unverified packages whose index or network failed (a retry may succeed)."""
        return {p for p, status in self.statuses.items() if status == UnverifiedStatus.FAILED}
