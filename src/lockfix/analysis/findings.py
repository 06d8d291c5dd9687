"""What a plan reports: findings (each of a :class:`FindingKind`), names still to fetch, and
the :class:`Plan` that carries them with the edits for the writer."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

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


@dataclass(frozen=True, slots=True)
class Finding:
    package: PackageId
    # a FindingKind; its text (as stored facts keep it) is taken too and made one
    kind: FindingKind | str
    message: str
    target: str | None = None
    requirement: str | None = None
    fix: str | None = None
    # "less": the lock installs less than the index's metadata needs somewhere; "more":
    # only more than needed; None: neither applies (orphans, unused tables)
    harm: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", FindingKind(self.kind))  # ValueError: unknown kind

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


@dataclass(frozen=True, slots=True)
class Missing:
    """A name the lock needs but lacks: the engine fetches its page from ``indexes`` in order."""

    name: str
    specifier: SpecifierSet
    indexes: tuple[str, ...]
    chain: tuple[str, ...]


@dataclass(slots=True, kw_only=True)
class Plan:
    findings: list[Finding] = field(default_factory=list)
    edits: dict[PackageId, PackagePlan] = field(default_factory=dict)
    added: list[AddedPackage] = field(default_factory=list)
    added_edges: dict[PackageId, dict[Table, list[Dependency]]] = field(default_factory=dict)
    removed: list[PackageId] = field(default_factory=list)
    # names to fetch before the plan is final (the rest of the plan is empty then)
    pending: list[Missing] = field(default_factory=list)
    # packages left unverified (their locked edges are kept), with why, and what kind of why
    unverified: dict[PackageId, str] = field(default_factory=dict)
    statuses: dict[PackageId, UnverifiedStatus] = field(default_factory=dict)
    verified: int = 0
    # packages whose wheels disagree and whose locked edges install only more than the
    # picked wheel needs, within what some wheel declares: kept as locked (where, per edge)
    excess: dict[PackageId, list[str]] = field(default_factory=dict)
    # why no repair in place exists (two versions of a name needed in one environment)
    unrepairable: list[str] = field(default_factory=list)

    @property
    def changes(self) -> bool:
        return bool(self.edits or self.added or self.removed)

    @property
    def failed(self) -> set[PackageId]:
        """The unverified packages whose index or network failed (a retry may succeed)."""
        return {p for p, status in self.statuses.items() if status == UnverifiedStatus.FAILED}
