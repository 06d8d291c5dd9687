"""A clean verdict carried over to the next version of the same lock.

``uv lock --upgrade-package`` rewrites a few ``[[package]]`` blocks of a lock and leaves the
rest alone. When the lock before was found clean, the check of the new one can read only
what changed. A :class:`LockSummary` of the clean lock keeps what that takes: the key of
each block's text, in order, and for each package its version and the digest of the
requirements its metadata declares; for each name, the specifiers the graph's
requirements put on it; the extras the graph asks for.

The new lock is clean, with the same report, when each changed block stands for the package
it replaced in the graph the planner builds:

* the header is the same, and so are the project files and options (the summary is kept
  per lineage: :func:`lockfix.cli.verdicts.lineage_key`); no block moved (:func:`changes`);
* each changed block is a registry package of a name that had one version, from the same
  index, whose old package was verified without a warning, and that no edge names with a
  version or a source;
* its edges, resolution markers and metadata read as the old block's
  (:meth:`~lockfix.lock.lockfile.Package.same_edges`), and every requirement on the name
  is met by the new version exactly when it was by the old one (:func:`judge`);
* its own check (:func:`lockfix.engine.check_packages`) verifies it without a warning or a
  finding (:func:`judge_checks`);
* its requirements have the same digest, or (without overrides) lower to the same
  requirements but for specifiers, each met by the version it reaches exactly as the old
  one was, and for extras nothing in the graph asks for, which are never installed
  (:func:`judge_requirements`).

The graph is then the one found clean, with one version of a name in place of another
that every edge and requirement treats alike: the same expected edges, the same reach,
and so no finding. Anything else is checked in full.
"""

from __future__ import annotations

import marshal
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet

from lockfix._files import replace_file
from lockfix.analysis.lowering import (
    Lowered,
    LoweredRequirement,
    ManifestRules,
    contains,
    lower_requirements,
    member_requests,
)
from lockfix.dist.metadata import CoreMetadata
from lockfix.engine import Analysis, PackageChecks
from lockfix.facts import LoweredByDigest
from lockfix.lock.lockfile import Lock, Package, PackageId

# Part of every stored summary: a change to what a summary holds or to the rule that
# judges it must come with a new value here.
FORMAT = "lockfix-lock-summary-4"
DIRECTORY = "summaries-v1"
# the requirements digest of a block that cannot be carried over (see summarize)
NOT_CARRIED = ""


class LockSummary:
    """What a clean check of a lock leaves for the check of its next version."""

    __slots__ = ("blocks", "fresh_until", "header", "pinned", "report", "requested", "specifiers")

    def __init__(
        self,
        header: str,
        blocks: dict[str, tuple[str, str, str]],
        specifiers: dict[str, dict[str, int]],
        pinned: frozenset[str],
        report: Any,
        fresh_until: float,
        requested: frozenset[tuple[str, str]] = frozenset(),
    ) -> None:
        self.header = header  # the key of the header block's text
        # block key → (package name, version or "", requirements digest or NOT_CARRIED),
        # in the lock's order
        self.blocks = blocks
        # name → the specifier of each of the graph's requirements on it → how many
        self.specifiers = specifiers
        # names an edge gives with a version or a source
        self.pinned = pinned
        # (name, extra): an extra some requirement or edge of the graph asks for
        self.requested = requested
        self.report = report  # the clean report, as the verdict cache keeps it
        self.fresh_until = fresh_until

    def __repr__(self) -> str:
        return f"<LockSummary of {len(self.blocks)} blocks>"


def summarize(analysis: Analysis, report: Any) -> LockSummary | None:
    """The summary of a lock found clean (``report``: its report); None when the lock was
    not read block by block (see :func:`lockfix.lock.lockfile.parse_lock`)."""
    lock, graph = analysis.lock, analysis.graph
    keys = lock.block_keys
    if graph is None or keys is None or len(keys) != len(lock.packages) + 1:
        return None
    # what keeps a package's block from being carried over (see changes)
    held = {f.package for f in analysis.warnings}
    held.update(analysis.plan.unverified, graph.evidence.loose)
    declared = graph.rules.metadata
    metadata, lowered_for = graph.evidence.metadata, graph.lowered_for
    blocks: dict[str, tuple[str, str, str]] = {}  # in the lock's order, as changes reads them
    shown: dict[int, str] = {}  # id of a specifier → its text
    specifiers: dict[str, dict[str, int]] = {}
    pinned: set[str] = set()
    requested = {(root.name, extra) for root in graph.rules.roots for extra in root.extras}
    for member in lock.members:
        for by_name in member_requests(member, graph.rules).values():
            requested.update((n, extra) for n, extras in by_name.items() for extra in extras)
    for package in lock.packages:
        package_id, name = package.id, package.name
        registry = package.source.is_registry
        digest = NOT_CARRIED
        known = metadata.get(package_id)
        if (
            known is not None
            and registry
            and package_id not in held
            and name not in declared
            and len(lock.named(name)) == 1
        ):
            digest = known.requirements_digest
        blocks[keys[package.block]] = (name, package.version or "", digest)
        for _, _, dep in package.edges():
            if dep.version is not None or dep.source is not None:
                pinned.add(dep.name)
            requested.update((dep.name, extra) for extra in dep.extras)
        if registry:
            for requirements in (lowered_for(package_id) or {}).values():
                for r in requirements:
                    requested.update((r.name, extra) for extra in r.extras)
                    text = shown.get(id(r.specifier))
                    if text is None:
                        text = shown[id(r.specifier)] = str(r.specifier)
                    counts = specifiers.setdefault(r.name, {})
                    counts[text] = counts.get(text, 0) + 1
    return LockSummary(
        keys[0],
        blocks,
        specifiers,
        frozenset(pinned),
        report,
        analysis.fresh_until,
        frozenset(requested),
    )


class Changes:
    """The blocks of a new lock its summary does not hold, and the old blocks they replace."""

    __slots__ = ("added", "replaced")

    def __init__(self, added: list[int], replaced: dict[str, str]) -> None:
        self.added = added  # indexes of the new lock's blocks (0: the header)
        self.replaced = replaced  # name → the key of its old block

    def __repr__(self) -> str:
        return f"<Changes: {sorted(self.replaced)}>"


def changes(summary: LockSummary, keys: Sequence[str]) -> Changes | str:
    """Which blocks of a lock (``keys``: :func:`~lockfix.lock.lockfile.block_keys` of its
    blocks) differ from the summary's; a reason when they cannot be carried over."""
    if not keys or keys[0] != summary.header:
        return "the header changed"
    if time.time() >= summary.fresh_until:
        return "the index pages of the last clean check are stale"
    known = summary.blocks
    if len(keys) - 1 != len(known):
        return "blocks were added or removed"
    added: list[int] = []
    replaced: dict[str, str] = {}
    # block by block, in order: a report lists the warnings of unchanged packages in it
    for index, (key, old_key) in enumerate(zip(keys[1:], known, strict=True), start=1):
        if key == old_key:
            continue
        if key in known:
            return "blocks were moved"
        name, _, digest = known[old_key]
        if digest == NOT_CARRIED:
            return f"{name} was not verified cleanly, or has several versions"
        if name in summary.pinned:
            return f"an edge names {name} with a version or a source"
        added.append(index)
        replaced[name] = old_key
    return Changes(added, replaced)


def judge(
    summary: LockSummary, changed: Changes, new: Sequence[Package], old: dict[str, Package]
) -> str | None:
    """Why the new packages (those of ``changed.added``) cannot stand for the old ones
    (by name), before they are checked; None when they can."""
    if sorted(p.name for p in new) != sorted(changed.replaced):
        return "blocks were added or removed"
    if len(old) != len(changed.replaced):
        return "an old block is no longer stored"
    for package in new:
        before = old.get(package.name)
        if before is None:
            return f"{package.name} is new"
        if package.source != before.source or not package.source.is_registry:
            return f"{package.name} changed its source"
        if not package.same_edges(before):
            return f"the edges of {package.name} changed"
    return None


def judge_versions(
    summary: LockSummary,
    new: Sequence[Package],
    old: Mapping[str, Package],
    requirements: Mapping[str, Requirements],
) -> str | None:
    """Why a new version does not meet a requirement on its name exactly as the old one
    did; None when each does. A requirement of a package whose requirements changed is
    left out: :func:`judge_requirements` held it, new against new, to its old form."""
    compared: dict[tuple[str, str], int] = {}
    for found in requirements.values():
        for listed in (found.before or {}).values():
            for r in listed:
                key = (r.name, str(r.specifier))
                compared[key] = compared.get(key, 0) + 1
    for package in new:
        name, before = package.name, old[package.name]
        for text, count in summary.specifiers.get(name, {}).items():
            if compared.get((name, text), 0) >= count:
                continue
            try:
                specifier = SpecifierSet(text)
            except InvalidSpecifier:
                return f"a requirement on {name} cannot be read"
            if contains(specifier, before.version or "") != contains(
                specifier, package.version or ""
            ):
                return f"{name} {package.version} does not meet '{text}' as before"
    return None


def judge_checks(new: Sequence[Package], checks: PackageChecks) -> str | None:
    """Why the checks of the new packages keep them from standing for the old ones; None
    when each was verified, its metadata read, without a warning or a finding."""
    evidence = checks.evidence
    flagged = {
        f.package for f in [*checks.warnings, *checks.audit.warnings, *checks.audit.findings]
    }
    for package in new:
        package_id = package.id
        if package_id in evidence.unverified or package_id in checks.audit.replacements:
            return f"{package.name} {package.version} was not verified"
        if package_id in flagged or package_id in evidence.loose:
            return f"{package.name} {package.version} has a finding or a warning"
        if package_id not in evidence.metadata:
            return f"{package.name} {package.version} was not verified"
    return None


class Requirements:
    """A new package's requirements digest and, where it differs from the old one's, the
    tables lowered from the old and from the new metadata."""

    __slots__ = ("after", "before", "digest")

    def __init__(
        self, digest: str, before: Lowered | None = None, after: Lowered | None = None
    ) -> None:
        self.digest = digest
        self.before = before
        self.after = after

    def __repr__(self) -> str:
        return f"<Requirements {self.digest[:12]}{' changed' if self.after else ''}>"


def judge_requirements(
    summary: LockSummary,
    changed: Changes,
    new: Sequence[Package],
    metadata: Mapping[PackageId, CoreMetadata],
    rules: ManifestRules,
    stored: Callable[[str], Lowered | None],
) -> str | dict[str, Requirements]:
    """Why the new packages' requirements do not give the graph the edges the old ones
    gave; else each one's :class:`Requirements`, by name.

    The same digest is the same requirements. Otherwise (without overrides, whose rule
    the lock's own edges choose) the tables lowered from both (``stored``: the old ones,
    by digest) must hold the same requirements but for specifiers, and each specifier
    must be met by the version it reaches exactly as the old one was by the old
    version."""
    versions: dict[str, list[str]] | None = None
    found: dict[str, Requirements] = {}
    for package in new:
        name = package.name
        digest = metadata[package.id].requirements_digest
        before = summary.blocks[changed.replaced[name]][2]
        if digest == before:
            found[name] = Requirements(digest)
            continue
        if rules.overrides:
            return f"the requirements of {name} changed"
        old = stored(before)
        if old is None:
            return f"the old requirements of {name} are not stored"
        tables = lower_requirements(metadata[package.id], rules)
        if versions is None:
            versions = _versions(summary)
        renewed = {p.name: p.version or "" for p in new}
        asked = {extra for n, extra in summary.requested if n == name}
        reason = _same_edges(old, tables, versions, renewed, asked)
        if reason is not None:
            return f"{name}: {reason}"
        found[name] = Requirements(digest, old, tables)
    return found


def _versions(summary: LockSummary) -> dict[str, list[str]]:
    by_name: dict[str, list[str]] = {}
    for name, version, _ in summary.blocks.values():
        by_name.setdefault(name, []).append(version)
    return by_name


def _same_edges(
    old: Lowered,
    new: Lowered,
    versions: Mapping[str, list[str]],
    renewed: Mapping[str, str],
    asked: set[str],
) -> str | None:
    """Why two packages' lowered requirements give different edges: each pair must be met
    by the version it reaches as before (``versions``: the locked versions of each name
    before, ``renewed``: the new version of a name this change re-pinned;
    ``asked``: the package's extras that the graph asks for). An extra nothing asks for
    is never installed: it may come, go or change."""
    for table in old.keys() ^ new.keys():
        if table[0] != "extra" or table[1] in asked:
            return "its extras or groups changed"
    for table, requirements in old.items():
        theirs = new.get(table)
        if theirs is None or (table[0] == "extra" and table[1] not in asked):
            continue
        if len(theirs) != len(requirements):
            return "its requirements changed"
        for a, b in zip(_ordered(requirements), _ordered(theirs), strict=True):
            if (a.name, a.extras, a.marker) != (b.name, b.extras, b.marker):
                return "its requirements changed"
            if a.specifier == b.specifier and a.name not in renewed:
                continue  # the same versions: the same fit (judge_versions leaves it out)
            was = versions.get(a.name, [])
            if len(was) > 1:
                return f"a specifier on {a.name}, locked at several versions, changed"
            now = [renewed.get(a.name, v) for v in was]
            if [contains(a.specifier, v) for v in was] != [contains(b.specifier, v) for v in now]:
                return f"its requirement on {a.name} is met differently"
    return None


def _ordered(requirements: list[LoweredRequirement]) -> list[LoweredRequirement]:
    return sorted(requirements, key=lambda r: (r.name, r.extras, str(r.marker), str(r.specifier)))


def carried(
    summary: LockSummary,
    changed: Changes,
    keys: Sequence[str],
    new: Sequence[Package],
    requirements: Mapping[str, Requirements],
    fresh: float,
) -> LockSummary:
    """The summary of the new lock (``keys``), found clean by carrying ``summary`` over
    (``new``: the packages of ``changed.added``, in order; ``requirements``: theirs)."""
    by_key = dict(summary.blocks)
    specifiers, requested = summary.specifiers, set(summary.requested)
    for package, index in zip(new, changed.added, strict=True):
        name = package.name
        del by_key[changed.replaced[name]]
        found = requirements[name]
        by_key[keys[index]] = (name, package.version or "", found.digest)
        if found.before is not None and found.after is not None:
            if specifiers is summary.specifiers:  # copied once, before the first change
                specifiers = {n: dict(counts) for n, counts in specifiers.items()}
            _count(specifiers, found.before, -1)
            _count(specifiers, found.after, 1)
            for listed in found.after.values():
                requested.update((r.name, extra) for r in listed for extra in r.extras)
    blocks = {key: by_key[key] for key in keys[1:]}
    fresh_until = min(summary.fresh_until, fresh)
    return LockSummary(
        summary.header,
        blocks,
        specifiers,
        summary.pinned,
        summary.report,
        fresh_until,
        frozenset(requested),
    )


def _well_formed(summary: LockSummary) -> bool:
    """Whether every part of a summary read back has the type it was written with (each
    check one pass in C over the values)."""
    blocks, specifiers, requested = summary.blocks, summary.specifiers, summary.requested
    if not (
        isinstance(summary.header, str)
        and isinstance(summary.fresh_until, (int, float))
        and isinstance(blocks, dict)
        and isinstance(specifiers, dict)
        and isinstance(requested, frozenset)
    ):
        return False
    entries, counts = blocks.values(), specifiers.values()
    return (
        set(map(type, entries)) <= {tuple}
        and set(map(len, entries)) <= {3}
        and {type(field) for entry in entries for field in entry} <= {str}
        and set(map(type, counts)) <= {dict}
        and {type(text) for texts in counts for text in texts} <= {str}
        and {type(n) for texts in counts for n in texts.values()} <= {int}
        and set(map(type, summary.pinned)) <= {str}
        and set(map(type, requested)) <= {tuple}
        and {type(part) for pair in requested for part in pair} <= {str}
    )


def _count(specifiers: dict[str, dict[str, int]], tables: Lowered, step: int) -> None:
    for listed in tables.values():
        for r in listed:
            counts = specifiers.setdefault(r.name, {})
            text = str(r.specifier)
            counts[text] = counts.get(text, 0) + step
            if counts[text] <= 0:
                del counts[text]


class SummaryStore:
    """Lock summaries under the cache root, one file per lineage (the last clean one)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.directory = os.path.join(root, DIRECTORY)

    def _path(self, lineage: str) -> str:
        return os.path.join(self.directory, lineage[:2], f"{lineage}.bin")

    def get(self, lineage: str) -> LockSummary | None:
        """The summary kept for ``lineage``; None when there is none, or it is not one this
        code wrote (another format, or a damaged file)."""
        try:
            with open(self._path(lineage), "rb") as stream:
                data = marshal.load(stream)
            form, header, blocks, specifiers, pinned, report, fresh_until, requested = data
            summary = LockSummary(
                header, blocks, specifiers, frozenset(pinned), report, fresh_until, requested
            )
        except (OSError, EOFError, ValueError, TypeError):
            return None
        return summary if form == FORMAT and _well_formed(summary) else None

    def put(self, lineage: str, summary: LockSummary) -> None:
        data = (
            FORMAT,
            summary.header,
            summary.blocks,
            summary.specifiers,
            tuple(sorted(summary.pinned)),
            summary.report,
            min(summary.fresh_until, 2.0**40),
            summary.requested,
        )
        try:
            replace_file(self._path(lineage), marshal.dumps(data), parents=True, durable=False)
        except (OSError, ValueError):
            return  # a cache that cannot be written only costs time


class CarryOver:
    """The outcome of :func:`carry_over`: the report and summary of the new lock, or why
    it must be checked in full."""

    __slots__ = ("reason", "report", "requests", "summary")

    def __init__(
        self,
        reason: str | None = None,
        summary: LockSummary | None = None,
        requests: int = 0,
    ) -> None:
        self.reason = reason
        self.summary = summary
        self.report = None if summary is None else summary.report
        self.requests = requests

    def __repr__(self) -> str:
        return f"<CarryOver {'declined: ' + self.reason if self.reason else 'done'}>"


def carry_over(
    summary: LockSummary,
    blocks: list[str],
    keys: list[str],
    read: Callable[[str], Lock],
    recorded: Callable[[list[str]], dict[str, Package]],
    check: Callable[[Lock], PackageChecks],
    stored: Callable[[ManifestRules], LoweredByDigest],
) -> CarryOver:
    """Carry ``summary`` over to the lock of ``blocks`` (their ``keys``), or say why not.
    ``read``: a lock's part (header and changed blocks) read as a lock; ``recorded``: the
    stored packages of old blocks, by key; ``check``: the checks of a part's packages;
    ``stored``: the lowered requirements kept under the lock's rules (where those lowered
    here are kept too)."""
    changed = changes(summary, keys)
    if isinstance(changed, str):
        return CarryOver(changed)
    part = read(blocks[0] + "".join(blocks[i] for i in changed.added))
    if part.block_keys is None:
        return CarryOver("a changed block could not be read as one package")
    old = {p.name: p for p in recorded(list(changed.replaced.values())).values()}
    new = part.packages
    reason = judge(summary, changed, new, old)
    if reason is not None:
        return CarryOver(reason)
    checks = check(part)
    reason = judge_checks(new, checks)
    if reason is not None:
        return CarryOver(reason, requests=checks.requests)
    rules = ManifestRules.from_manifest(part.manifest)
    lowered = stored(rules)
    metadata = checks.evidence.metadata
    requirements = judge_requirements(summary, changed, new, metadata, rules, lowered.get)
    if isinstance(requirements, str):
        return CarryOver(requirements, requests=checks.requests)
    reason = judge_versions(summary, new, old, requirements)
    if reason is not None:
        return CarryOver(reason, requests=checks.requests)
    for found in requirements.values():
        if found.after is not None:
            lowered.put(found.digest, found.after)
    now = carried(summary, changed, keys, new, requirements, checks.fresh_until)
    return CarryOver(summary=now, requests=checks.requests)
