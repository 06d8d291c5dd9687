"""The pipeline: read the lock, fetch the truth from each index, plan, and hand back the result.

This is the only place where the lock model, the index client and the planner meet.

A package's check is its I/O (its index page, the metadata of its locked files) and the
judgement of what they say, in plain functions that both ways of reading them share: from
the caches alone, without an event loop, and over the network. An analysis the stored facts
and the caches answer whole never starts an event loop (nor imports asyncio).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Coroutine, Iterable, Sequence
from contextvars import ContextVar
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from lockfix._gc import collector_paused
from lockfix._shard import ShardJob, ShardResult, Worker
from lockfix._shard import setting as processes_setting
from lockfix.analysis.artifacts import ArtifactAudit, trusted_for_metadata
from lockfix.analysis.evidence import Evidence, UnverifiedStatus
from lockfix.analysis.findings import Finding, Missing, Plan
from lockfix.analysis.graph import Graph
from lockfix.analysis.planner import Planner
from lockfix.analysis.versions import NoMatchingVersion
from lockfix.analysis.wheels import (
    disagreement,
    loose_metadata,
    merge_wheel_metadata,
    promote_disagreements,
)
from lockfix.dist.metadata import CoreMetadata, MetadataError, MetadataUnavailable
from lockfix.dist.requirements import unreadable_lines
from lockfix.dist.simple import IndexFile, ProjectPage
from lockfix.errors import IndexClientError, ProjectNotFound
from lockfix.facts import (
    FactsStore,
    LoweredByDigest,
    decode_lowered_docs,
    decode_metadata,
    encode_metadata,
    facts_key,
    lowered_key,
)
from lockfix.facts import enabled as facts_enabled
from lockfix.index.auth import CredentialProvider
from lockfix.index.cache import MetadataCache, default_cache_dir, origin_key
from lockfix.index.http import IndexClient
from lockfix.lock.lockfile import KNOWN_REVISIONS, Artifact, Lock, Package, PackageId
from lockfix.lock.project import ProjectConfig, load_config
from lockfix.settings import Settings
from lockfix.urls import split_credentials

# Settings.per_wheel for the tasks of one analysis (wheels that disagree)
_PER_WHEEL: ContextVar[bool] = ContextVar("lockfix_per_wheel", default=True)

log = logging.getLogger("lockfix")
P = ParamSpec("P")
T = TypeVar("T")


def _collector_paused(
    run: Callable[P, Coroutine[Any, Any, T]],
) -> Callable[P, Coroutine[Any, Any, T]]:
    """``run`` with the cyclic garbage collector paused (:mod:`lockfix._gc`)."""

    @functools.wraps(run)
    async def paused(*args: P.args, **kwargs: P.kwargs) -> T:
        with collector_paused():
            return await run(*args, **kwargs)

    return paused


# A short repr: a full one of a big analysis is huge (it cost 0.1 s where asyncio.run
# repr'd its main task's result; _on_loop now keeps results out of the task).
class Analysis:
    __slots__ = (
        "artifact_findings",
        "artifact_replacements",
        "config",
        "fresh_until",
        "graph",
        "lock",
        "plan",
        "processes",
        "requests",
        "warnings",
        "wheel_metadata",
    )

    def __init__(
        self,
        lock: Lock,
        config: ProjectConfig,
        plan: Plan,
        warnings: list[Finding] | None = None,
        requests: int = 0,
        artifact_findings: list[Finding] | None = None,
        artifact_replacements: dict[PackageId, list[IndexFile]] | None = None,
        wheel_metadata: dict[PackageId, dict[str, CoreMetadata]] | None = None,
        fresh_until: float = 0.0,
        processes: int = 1,
        graph: Graph | None = None,
    ) -> None:
        self.lock = lock
        self.config = config
        self.plan = plan
        self.warnings: list[Finding] = [] if warnings is None else warnings
        self.requests = requests
        # locked sdists/wheels that disagree with the index (warnings go to `warnings`)
        self.artifact_findings: list[Finding] = (
            [] if artifact_findings is None else artifact_findings
        )
        self.artifact_replacements: dict[PackageId, list[IndexFile]] = (
            {} if artifact_replacements is None else artifact_replacements
        )
        # every locked file's metadata, for `lockfix explain`
        self.wheel_metadata: dict[PackageId, dict[str, CoreMetadata]] = (
            {} if wheel_metadata is None else wheel_metadata
        )
        # until when the index pages this verdict rests on stay fresh (time.time())
        self.fresh_until = fresh_until
        self.processes = processes  # 2 when a lockfix._shard worker verified part of the lock
        self.graph = graph  # the graph the plan was made from

    def __repr__(self) -> str:
        return f"<Analysis of {len(self.lock.packages)} packages>"


SKIPPED = "skipped by configuration"
# below this much to fetch, a second process costs more than it saves
SHARD_MIN_FILES = 400  # files whose metadata is not cached
SHARD_SHARE = 0.5  # of the requests, for the second process


class ResolutionError(Exception):
    """A package the lock needs cannot be found on any index it may come from."""


class Unverified(IndexClientError):
    """Repair without --keep-going: some package could not be verified; nothing is written."""

    def __str__(self) -> str:
        return str(self.args[0])


def _unverified_policy(
    lock: Lock, plan: Plan, settings: Settings, artifact_findings: set[PackageId]
) -> None:
    """Refuse to write from a partial view unless ``settings.keep_going``.

    A package whose locked file disagrees with its index (an artifact finding) is
    reported as that finding, not as an index failure."""
    for package_id in artifact_findings & plan.statuses.keys():
        plan.statuses[package_id] = UnverifiedStatus.ARTIFACT
    if lock.revision not in KNOWN_REVISIONS:
        # A newer layout: reading it is safe, rewriting it is not (the writer refuses).
        log.warning(
            "lockfix: warning: the lock has revision %s, newer than lockfix knows (up to %s); %s",
            lock.revision,
            max(KNOWN_REVISIONS),
            "it will not be rewritten" if settings.write else "checking it anyway",
        )
    if not settings.write or settings.keep_going or not plan.failed:
        return
    raise Unverified(
        f"{failed_summary(plan)}; nothing written (--keep-going repairs what could be verified)"
    )


def failed_summary(plan: Plan) -> str:
    """``N package(s) could not be verified (…)``, naming the first three and why."""
    failed = sorted(plan.failed, key=lambda p: p.sort_key())
    shown = "; ".join(
        f"{p.name} {p.version}: {plan.unverified.get(p, 'failed')}" for p in failed[:3]
    )
    more = f" and {len(failed) - 3} more" if len(failed) > 3 else ""
    return f"{len(failed)} package(s) could not be verified ({shown}{more})"


def _artifact_file(artifact: Artifact) -> IndexFile:
    """An index-file record for a locked artifact, for when the index page does not list it."""
    return IndexFile(
        filename=artifact.name,
        url=artifact.url or artifact.path or "",
        hashes=artifact.hashes,
        requires_python=None,
        yanked=False,
        size=artifact.size,
        upload_time=artifact.upload_time,
        core_metadata=False,
    )


def _requirements_key(metadata: CoreMetadata) -> tuple[tuple[str, ...], tuple[str, ...]]:
    return tuple(sorted(metadata.requires_dist)), tuple(sorted(metadata.provides_extra))


async def _locked_files(
    client: IndexClient, planner: Planner, package: Package, audit: ArtifactAudit | None
) -> list[tuple[IndexFile, Artifact]] | None:
    """The locked files of ``package`` to read metadata from, each with its index entry;
    None when the package is left unverified (marked so in ``planner``)."""
    index_url = package.source.location
    try:
        page = await client.project_page(
            index_url, package.name, flat=planner.config.is_flat(index_url)
        )
    except ProjectNotFound:
        page = None
    except IndexClientError as error:
        _page_unavailable(planner, package, error)
        return None
    return _files_on_page(planner, package, page, audit)


def _metadata_files(package: Package) -> list[Artifact]:
    """The locked files a package's metadata is read from: its wheels, else its sdist."""
    return list(package.wheels) or ([package.sdist] if package.sdist else [])


def _page_unavailable(planner: Planner, package: Package, error: IndexClientError) -> None:
    planner.evidence.mark_unverified(
        package.id, UnverifiedStatus.FAILED, f"index page unavailable: {error}"
    )


def _files_to_read(
    package: Package, page: ProjectPage | None
) -> list[tuple[IndexFile, Artifact]] | tuple[UnverifiedStatus, str]:
    """The locked files of ``package`` to read metadata from, each with its entry on
    ``page`` (None: its index has no page for it); else why there are none. Reads only;
    raises IndexClientError for a PEP 691 page found corrupt when decoded in full."""
    index_url = package.source.location
    artifacts = _metadata_files(package)
    if not artifacts:
        # uv writes no file where no environment installs one (a package overridden to
        # `sys_platform == 'never'` with only platform wheels): nothing failed.
        return UnverifiedStatus.DYNAMIC, "the lock records no artifact for it"
    artifacts = [a for a in artifacts if trusted_for_metadata(a, page, index_url)]
    if not artifacts:
        return UnverifiedStatus.FAILED, "no locked artifact is served by its index"
    files = []
    for artifact in artifacts:
        listed = page.file_named(artifact.name) if page is not None else None
        files.append((listed or _artifact_file(artifact), artifact))
    return files


def _files_on_page(
    planner: Planner, package: Package, page: ProjectPage | None, audit: ArtifactAudit | None
) -> list[tuple[IndexFile, Artifact]] | None:
    """What the check of ``package`` does with its index page (None: there is none): its
    locked files recorded in ``audit``; the files to read metadata from, or None with the
    package marked unverified in ``planner``."""
    try:
        if audit is not None:
            audit.record(package, page)
        found = _files_to_read(package, page)
    except IndexClientError as error:  # a PEP 691 page found corrupt when decoded in full
        _page_unavailable(planner, package, error)
        return None
    if isinstance(found, tuple):
        planner.evidence.mark_unverified(package.id, *found)
        return None
    return found


async def _locked_metadata(
    client: IndexClient,
    planner: Planner,
    package: Package,
    warnings: list[Finding],
    audit: ArtifactAudit | None = None,
    per_file: dict[str, CoreMetadata] | None = None,
) -> bool:
    """Verify one registry package; True when every locked file's metadata was read."""
    located = await _locked_files(client, planner, package, audit)
    if located is None:
        return False
    import asyncio

    index_url = package.source.location
    results = await asyncio.gather(
        *(client.file_metadata(index_url, f, a.hashes or None) for f, a in located),
        return_exceptions=True,
    )
    return _metadata_read(planner, package, located, results, warnings, per_file)


def _cached_metadata(
    client: IndexClient,
    planner: Planner,
    package: Package,
    warnings: list[Finding],
    audit: ArtifactAudit,
    per_file: dict[str, CoreMetadata],
) -> bool | None:
    """:func:`_locked_metadata` from the caches alone; None, with nothing done (nothing
    counted or recorded), when they cannot answer all of it: the page and every file."""
    index_url = package.source.location
    cached = client.cached_page(index_url, package.name, flat=planner.config.is_flat(index_url))
    if cached is None:
        return None
    page, take_page = cached
    try:
        found = _files_to_read(package, page)
    except IndexClientError:
        return None  # a corrupt page: reported by the network path
    to_read = found if isinstance(found, list) else []  # none: the page alone decides
    answers = []
    for file, artifact in to_read:
        answer = client.cached_metadata(index_url, file, artifact.hashes or None)
        if answer is None:
            return None
        answers.append(answer)
    take_page()
    located = _files_on_page(planner, package, page, audit)
    if located is None:
        return False
    results = [_outcome(answer) for answer in answers]
    return _metadata_read(planner, package, located, results, warnings, per_file)


def _outcome(answer: Callable[[], CoreMetadata]) -> CoreMetadata | Exception:
    """``answer()``, or what it raised (as asyncio.gather(return_exceptions=True))."""
    try:
        return answer()
    except Exception as error:
        return error


def _metadata_read(
    planner: Planner,
    package: Package,
    located: list[tuple[IndexFile, Artifact]],
    results: Sequence[CoreMetadata | BaseException],
    warnings: list[Finding],
    per_file: dict[str, CoreMetadata] | None,
) -> bool:
    """What the check of ``package`` does with what reading the metadata of its
    ``located`` files gave (in their order); True when every file was read."""
    good = [r for r in results if isinstance(r, CoreMetadata)]
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors:
        # One unread file is enough to leave the package unverified: the edges only that
        # file declares would look wrong, and what they reach would look like orphans.
        for error in errors:
            if not isinstance(error, (IndexClientError, MetadataError, OSError)):
                raise error
        error = errors[0]
        reason = str(error)
        if good:
            reason = f"{len(errors)} of {len(results)} locked files unread: {reason}"
        unavailable = isinstance(error, MetadataUnavailable)
        status = UnverifiedStatus.DYNAMIC if unavailable else UnverifiedStatus.FAILED
        planner.evidence.mark_unverified(package.id, status, reason)
        return False
    files = [file for file, _ in located]
    _add_metadata(planner, package, list(zip(files, good, strict=True)), warnings, per_file)
    return True


def _add_metadata(
    planner: Planner,
    package: Package,
    read: list[tuple[IndexFile, CoreMetadata]],
    warnings: list[Finding],
    per_file: dict[str, CoreMetadata] | None,
) -> None:
    """Give the planner the metadata read from every locked file of ``package``."""
    groups: dict[tuple[tuple[str, ...], tuple[str, ...]], list[str]] = {}
    for file, result in read:
        if per_file is not None:
            per_file[file.filename] = result
        groups.setdefault(_requirements_key(result), []).append(file.filename)
    if _PER_WHEEL.get() and package.wheels:
        merged = merge_wheel_metadata([(f.filename, r) for f, r in read])
        if merged.disagree:
            warnings.append(disagreement(package.id, merged))
        planner.evidence.add_metadata(package.id, merged.metadata)
        return
    if len(groups) > 1:
        detail = "; ".join(f"{len(names)} wheel(s) such as {names[0]}" for names in groups.values())
        warnings.append(
            Finding(
                package.id,
                "wheels-disagree",
                f"{package.name} {package.version}: its wheels declare different "
                f"dependencies ({detail}); checked against the first",
            )
        )
    planner.evidence.add_metadata(package.id, read[0][1])


def _facts_store(settings: Settings) -> FactsStore | None:
    if settings.no_cache or not settings.package_facts or not facts_enabled():
        return None
    return FactsStore(settings.cache_dir if settings.cache_dir is not None else default_cache_dir())


def _facts_key(
    client: IndexClient,
    planner: Planner,
    package: Package,
    settings: Settings,
    *,
    served: bool = False,
) -> tuple[str, float] | None:
    """(key, page fresh until) of the package's facts: with the cached page a check would
    read, or (``served``) the copy this run's check did read. None: the page has no copy."""
    index_url = package.source.location
    flat = planner.config.is_flat(index_url)
    if served:
        stamp = None if flat else client.served_stamp(index_url, package.name)
        found = None if stamp is None else (stamp, 0.0)
    else:
        found = client.page_stamp(index_url, package.name, flat=flat)
    if found is None:
        return None
    # what the check of a package reads from the lock: its id and its files, every field of
    # each (not its edges or resolution-markers, which only the planner reads)
    locked = package.locked_digest
    return facts_key(locked, found[0], per_wheel=settings.per_wheel, flat=flat), found[1]


def _remember(
    store: FactsStore,
    key: str,
    package: Package,
    planner: Planner,
    found: list[Finding],
    audit: ArtifactAudit,
    per_file: dict[str, CoreMetadata],
    settings: Settings,
) -> None:
    """Store what the check of ``package`` learned, when it is complete and clean: its
    metadata was read from every locked file (each pinned by its sha256), nothing was
    left unverified, and no locked file disagrees with the index."""
    artifacts = _metadata_files(package)
    pid = package.id
    if (
        not artifacts
        or not all(a.hashes.get("sha256") for a in artifacts)
        or pid not in planner.evidence.metadata
        or pid in planner.evidence.unverified
        or pid in audit.replacements
        or any(f.package == pid for f in audit.findings)
    ):
        return
    loose = None
    if settings.per_wheel and len(per_file) > 1:
        loose = loose_metadata(list(per_file.values()))
    store.put(
        key,
        {
            "metadata": encode_metadata(planner.evidence.metadata[pid]),
            "loose": encode_metadata(loose),
            "warnings": [f.detail() for f in found],
            "audit_warnings": [f.detail() for f in audit.warnings if f.package == pid],
        },
    )


def _recall(
    doc: dict[str, object],
    package: Package,
    planner: Planner,
    warnings: list[Finding],
    audit: ArtifactAudit,
) -> bool:
    """Apply stored facts as :func:`_locked_metadata` would; False if they do not decode."""
    try:
        metadata = decode_metadata(doc["metadata"])
        loose = decode_metadata(doc.get("loose"))
        found = [Finding.from_detail(package.id, f) for f in doc["warnings"]]  # type: ignore[attr-defined]
        kept = [Finding.from_detail(package.id, f) for f in doc["audit_warnings"]]  # type: ignore[attr-defined]
    except (KeyError, TypeError, ValueError, AttributeError):
        return False
    if metadata is None:
        return False
    # stored only after its Requires-Dist lines were all read (see _remember)
    planner.evidence.add_metadata(package.id, metadata, checked=True)
    if loose is not None:
        planner.evidence.add_loose(package.id, loose)
    warnings.extend(found)
    audit.warnings.extend(kept)
    return True


def _lowered_keys(
    planner: Planner, package_ids: list[PackageId]
) -> dict[str, tuple[PackageId, CoreMetadata, bool]]:
    """lowered_key → (package, metadata, override rule) of each package's metadata in the
    evidence, under each override rule the plan may choose."""
    rules = planner.rules
    keys: dict[str, tuple[PackageId, CoreMetadata, bool]] = {}
    for package_id in package_ids:
        metadata = planner.evidence.metadata.get(package_id)
        if metadata is None:
            continue
        for legacy in (False, True) if rules.overrides else (False,):
            keys[lowered_key(metadata, rules, legacy)] = (package_id, metadata, legacy)
    return keys


def _recall_lowered(store: FactsStore, planner: Planner, package_ids: list[PackageId]) -> None:
    """Hand the planner the stored lowered requirements of these packages' metadata."""
    keys = _lowered_keys(planner, package_ids)
    docs = store.lowered(keys)
    for key, tables in decode_lowered_docs(docs):
        package_id, metadata, legacy = keys[key]
        planner.evidence.add_lowered(package_id, metadata, legacy, tables)


def _remember_lowered(store: FactsStore, planner: Planner) -> None:
    """Store the requirements the plan lowered from registry packages' metadata."""
    legacy, lowered = planner.lowered_here()
    kept = LoweredByDigest(store, planner.rules, legacy)
    for package_id, metadata, tables in lowered:
        if planner.evidence.metadata.get(package_id) is not metadata:
            continue  # declared by the project, or a package to add
        kept.put(metadata.requirements_digest, tables)


def _in_lock_order(lock: Lock, planner: Planner, *lists: list[Finding]) -> None:
    """Put what the concurrent checks collected in lock order, so that the result does not
    depend on which packages were answered from stored facts or finished first."""
    order = {p.id: i for i, p in enumerate(lock.packages)}
    for findings in lists:
        findings.sort(key=lambda f: order.get(f.package, len(order)))
    planner.evidence.in_order(order)


def _client(settings: Settings, config: ProjectConfig, lock_dir: Path) -> IndexClient:
    return IndexClient(
        cache=None if settings.no_cache else MetadataCache(settings.cache_dir),
        concurrency=settings.concurrency,
        timeout=settings.timeout,
        offline=settings.offline,
        credentials=CredentialProvider(config.index_names()),
        base_dir=lock_dir,
    )


@_collector_paused
async def verify_packages(
    lock: Lock, lock_dir: Path, settings: Settings, package_ids: list[PackageId]
) -> ShardResult:
    """What :func:`analyze_lock` learns about ``package_ids``, for a :mod:`lockfix._shard`."""
    _PER_WHEEL.set(settings.per_wheel)
    config = load_config(lock_dir, lock)
    result = ShardResult(evidence=Evidence())
    assert result.evidence is not None
    planner = Planner(lock, config, result.evidence)
    store = _facts_store(settings)  # its packages' facts, for the checks after this one
    import asyncio

    async with _client(settings, config, lock_dir) as client:
        checks = _Checks(client, planner, settings, store, None, len(package_ids))
        packages = [lock.package(i) for i in package_ids]
        await asyncio.gather(*(checks.check(p) for p in packages if p is not None))
        result.warnings, result.audit = checks.warnings, checks.audit
        result.wheel_metadata = checks.wheel_metadata
        result.stats = client.stats.as_dict()
        result.fresh_until = client.fresh_until
    if store is not None:
        store.close()
    return result


def _to_fetch(package: Package) -> list[str]:
    """The metadata cache keys of the locked files a check of ``package`` reads (as
    :meth:`IndexClient.file_metadata` keeps what their index served); "" when unknown."""
    artifacts = _metadata_files(package)
    try:
        index_url = split_credentials(package.source.location)[0]
    except ValueError:  # not a URL: reported where it is fetched
        return ["" for _ in artifacts]
    return [
        origin_key(index_url, a.url or a.path or "", a.hashes["sha256"])
        if a.hashes.get("sha256")
        else ""
        for a in artifacts
    ]


def _shard_split(registry: list[Package], cache: MetadataCache | None) -> list[Package]:
    """The packages to verify in a second process: none unless there is enough to fetch."""
    forced = processes_setting() == "2"
    wanted = {p.id: _to_fetch(p) for p in registry}
    stored = cache.stored([d for ds in wanted.values() for d in ds if d]) if cache else set()
    work = {pid: 1 + sum(1 for d in ds if d not in stored) for pid, ds in wanted.items()}
    if not forced and sum(work.values()) - len(work) < SHARD_MIN_FILES:
        return []  # mostly cached: a second interpreter would cost more than it saves
    # The versions of a name on one index share its page: one process reads them all, so
    # that the page is fetched (and its cache stamp, in their facts' keys, written) once.
    pages: dict[tuple[str, str], list[Package]] = {}
    for package in registry:
        pages.setdefault((package.source.location, package.name), []).append(package)
    # Balance by requests to make (a page, and one or more per file not cached); the worker
    # was started before the lock was parsed, so its start-up overlaps the parent's.
    loads = [0.0, 0.0]
    theirs: list[Package] = []
    for group in sorted(pages.values(), key=lambda g: -sum(work[p.id] for p in g)):
        side = 0 if loads[0] / (1 - SHARD_SHARE) <= loads[1] / SHARD_SHARE else 1
        loads[side] += sum(work[p.id] for p in group)
        if side == 1:
            theirs.extend(group)
    return theirs


def _skipped(package: Package, settings: Settings) -> bool:
    return package.name in settings.skip_packages or (
        package.source.location.rstrip("/") in settings.skip_indexes
    )


def _to_check(packages: Iterable[Package], planner: Planner, settings: Settings) -> list[Package]:
    """The registry ``packages`` to check; those the configuration skips are marked so."""
    registry = []
    for package in packages:
        if _skipped(package, settings):
            planner.evidence.mark_unverified(package.id, UnverifiedStatus.SKIPPED, SKIPPED)
        else:
            registry.append(package)
    return registry


def start_shard(lock: Lock, lock_dir: Path, settings: Settings, spawned: Worker) -> Worker | None:
    """Give part of the registry packages to ``spawned``, a second process started earlier
    (:meth:`lockfix._shard.Worker.spawn`), and let it start on them; None, with ``spawned``
    ended unused, when there is too little to fetch."""
    registry = [p for p in lock.packages if p.source.is_registry and not _skipped(p, settings)]
    cache = None if settings.no_cache else MetadataCache(settings.cache_dir)
    try:
        theirs = [p.id for p in _shard_split(registry, cache)]
    finally:
        if cache is not None:
            cache.close()
    if not theirs:
        spawned.close()  # too little to fetch: ended unused
        return None
    return spawned.start(ShardJob(lock.text, str(lock_dir), settings, theirs))


class _Checks:
    """One analysis's package checks: what they share while they run concurrently."""

    __slots__ = (
        "audit",
        "client",
        "done",
        "planner",
        "progress",
        "settings",
        "store",
        "total",
        "warnings",
        "wheel_metadata",
    )

    def __init__(
        self,
        client: IndexClient,
        planner: Planner,
        settings: Settings,
        store: FactsStore | None,
        progress: Callable[[int, int], None] | None,
        total: int,
    ) -> None:
        self.client = client
        self.planner = planner
        self.settings = settings
        self.store = store
        self.progress = progress
        self.total = total
        self.done = 0
        self.warnings: list[Finding] = []
        self.audit = ArtifactAudit()
        self.wheel_metadata: dict[PackageId, dict[str, CoreMetadata]] = {}

    def _advance(self, count: int) -> None:
        self.done += count
        if self.progress:
            self.progress(self.done, self.total)

    def recall(self, registry: list[Package], theirs: set[PackageId]) -> list[Package]:
        """Apply the stored facts of unchanged packages (not of ``theirs``, the second
        process's); the packages still to check."""
        if self.store is None:
            return registry
        mine = [p for p in registry if p.id not in theirs]
        is_flat = self.planner.config.is_flat
        self.client.preload_page_stamps(
            [(p.source.location, p.name, is_flat(p.source.location)) for p in mine]
        )
        stamps = {}
        for package in mine:
            found = _facts_key(self.client, self.planner, package, self.settings)
            if found is not None:
                stamps[package.id] = found
        stored = self.store.get_many(key for key, _ in stamps.values())
        recalled = set()
        for package in registry:
            key, fresh_until = stamps.get(package.id, ("", 0.0))
            doc = stored.get(key)
            if doc is not None and _recall(doc, package, self.planner, self.warnings, self.audit):
                self.client.reuse_page(fresh_until)
                recalled.add(package.id)
        self.done = len(recalled)
        _recall_lowered(self.store, self.planner, [p.id for p in registry if p.id in recalled])
        return [p for p in registry if p.id not in recalled]

    async def check(self, package: Package) -> None:
        """Verify ``package`` against its index, and store what was learned."""
        per_file = self.wheel_metadata.setdefault(package.id, {})
        found: list[Finding] = []
        complete = await _locked_metadata(
            self.client, self.planner, package, found, self.audit, per_file
        )
        self._checked(package, found, complete, per_file)

    def check_cached(self, package: Package) -> bool:
        """:meth:`check` from the caches alone; False, with nothing done, when they cannot
        answer all of it."""
        per_file = self.wheel_metadata.setdefault(package.id, {})
        found: list[Finding] = []
        complete = _cached_metadata(self.client, self.planner, package, found, self.audit, per_file)
        if complete is None:
            return False
        self._checked(package, found, complete, per_file)
        return True

    def _checked(
        self,
        package: Package,
        found: list[Finding],
        complete: bool,
        per_file: dict[str, CoreMetadata],
    ) -> None:
        """Keep what the check of ``package`` found, and store what it learned
        (``complete``: every locked file's metadata was read)."""
        self.warnings.extend(found)
        if self.store is not None and complete:
            served = _facts_key(self.client, self.planner, package, self.settings, served=True)
            if served is not None:
                _remember(
                    self.store,
                    served[0],
                    package,
                    self.planner,
                    found,
                    self.audit,
                    per_file,
                    self.settings,
                )
        self._advance(1)

    def merge(self, result: ShardResult, count: int) -> None:
        """Take in what the second process found about its ``count`` packages."""
        if result.evidence is not None:
            self.planner.evidence.update(result.evidence)
        self.warnings.extend(result.warnings)
        if result.audit is not None:
            self.audit.findings.extend(result.audit.findings)
            self.audit.warnings.extend(result.audit.warnings)
            self.audit.replacements.update(result.audit.replacements)
        self.wheel_metadata.update(result.wheel_metadata)
        self.client.stats.add(result.stats)
        self.client.fresh_until = min(self.client.fresh_until, result.fresh_until)
        self._advance(count)

    def add_loose(self) -> None:
        """Per package whose locked files disagree, what any of them allows."""
        for package_id, per_file in self.wheel_metadata.items():
            loose = loose_metadata(list(per_file.values())) if len(per_file) > 1 else None
            if loose is not None and package_id in self.planner.evidence.metadata:
                self.planner.evidence.add_loose(package_id, loose)


async def _check_all(checks: _Checks, registry: list[Package], worker: Worker | None) -> bool:
    """Check ``registry``, sharing it with ``worker`` (closed here); True if the worker
    answered (else its packages are checked here)."""
    import asyncio

    shard_ids = set(worker.packages) if worker is not None else set()
    answer: asyncio.Future[ShardResult | None] | None = None
    try:
        if worker is not None:
            answer = asyncio.ensure_future(worker.result())
        await asyncio.gather(*(checks.check(p) for p in registry if p.id not in shard_ids))
        result = await answer if answer is not None else None
    finally:
        if worker is not None:
            worker.close()
    if result is not None:
        checks.merge(result, len(shard_ids))
    elif shard_ids:
        log.info("lockfix: the second process failed; verifying its packages here")
        await asyncio.gather(*(checks.check(p) for p in registry if p.id in shard_ids))
    return result is not None


def _from_caches(checks: _Checks, packages: list[Package]) -> list[Package]:
    """Check ``packages`` in turn from the caches alone, until one needs the network; the
    packages left (that one and those after it)."""
    for i, package in enumerate(packages):
        if not checks.check_cached(package):
            return packages[i:]
    return []


def _all_checked(checks: _Checks, lock: Lock) -> None:
    """Once every package is checked: what their locked files allow, findings in lock order."""
    if checks.settings.per_wheel:
        checks.add_loose()
    audit = checks.audit
    _in_lock_order(lock, checks.planner, checks.warnings, audit.warnings, audit.findings)


async def _plan(client: IndexClient, planner: Planner, plan: Plan | None = None) -> Plan:
    """The plan, once every missing name it needs has been looked up on its indexes
    (``plan``: the planner's first, when made already)."""
    import asyncio

    plan = plan if plan is not None else planner.plan()
    while plan.pending:
        await asyncio.gather(*(_add_missing(client, planner, m) for m in plan.pending))
        plan = planner.plan()
    return plan


async def _online(
    checks: _Checks, lock: Lock, remaining: list[Package], worker: Worker | None
) -> tuple[Plan, bool]:
    """Check ``remaining`` (with ``worker``), then plan: (the plan, whether the worker
    answered)."""
    shared = await _check_all(checks, remaining, worker)
    _all_checked(checks, lock)
    return await _plan(checks.client, checks.planner), shared


def _on_loop(client: IndexClient, work: Coroutine[Any, Any, T]) -> T:
    """Run ``work``, which needs the network, on an event loop that ends with the
    network side of ``client``."""
    import asyncio  # only for an analysis the caches do not answer

    done: list[T] = []

    async def run() -> None:
        async with client:
            done.append(await work)

    # The result is not the task's: asyncio.run reprs its main task, result included, when
    # it puts the SIGINT handler back.
    asyncio.run(run())
    return done[0]


def _check_and_plan(
    checks: _Checks, lock: Lock, registry: list[Package], worker: Worker | None
) -> tuple[Plan, bool]:
    """Check ``registry`` and plan: (the plan, whether ``worker`` answered). Without an
    event loop as long as stored facts and the caches answer; the rest on one."""
    theirs = set(worker.packages) if worker is not None else set()
    remaining = checks.recall(registry, theirs)
    if worker is None:
        remaining = _from_caches(checks, remaining)
    if remaining or worker is not None:
        return _on_loop(checks.client, _online(checks, lock, remaining, worker))
    _all_checked(checks, lock)
    plan = checks.planner.plan()
    if plan.pending:
        plan = _on_loop(checks.client, _plan(checks.client, checks.planner, plan))
    return plan, False


@collector_paused()
def analyze_lock(
    lock: Lock,
    lock_dir: Path,
    settings: Settings,
    *,
    progress: Callable[[int, int], None] | None = None,
    worker: Worker | None = None,
) -> Analysis:
    """Check ``lock`` (read from ``lock_dir``) against its indexes. ``progress(done, total)``
    is called as packages are checked; ``worker``, a second process at work on part of the
    lock (:func:`start_shard`), is closed here."""
    config = load_config(lock_dir, lock)
    planner = Planner(lock, config)
    client = _client(settings, config, lock_dir)
    token = _PER_WHEEL.set(settings.per_wheel)
    try:
        registry = _to_check((p for p in lock.packages if p.source.is_registry), planner, settings)
        store = _facts_store(settings)
        checks = _Checks(client, planner, settings, store, progress, len(registry))
        plan, shared = _check_and_plan(checks, lock, registry, worker)
    finally:
        _PER_WHEEL.reset(token)
        client.close()  # after the network side, when the caches did not answer
    if store is not None:
        _remember_lowered(store, planner)
        store.close()
    audit, warnings = checks.audit, checks.warnings
    promote_disagreements(plan, warnings)
    _unverified_policy(lock, plan, settings, {f.package for f in audit.findings})
    return Analysis(
        lock,
        config,
        plan,
        warnings + audit.warnings,
        client.stats.requests,
        artifact_findings=audit.findings,
        artifact_replacements=audit.replacements,
        wheel_metadata=checks.wheel_metadata,
        fresh_until=client.fresh_until,
        processes=2 if shared else 1,
        graph=planner.graph,
    )


class PackageChecks:
    """What the checks of some locked packages found (see :func:`check_packages`)."""

    __slots__ = ("audit", "evidence", "fresh_until", "requests", "warnings")

    def __init__(
        self,
        evidence: Evidence,
        warnings: list[Finding],
        audit: ArtifactAudit,
        fresh_until: float,
        requests: int,
    ) -> None:
        self.evidence = evidence
        self.warnings = warnings
        self.audit = audit
        # until when the index pages the checks read stay fresh (time.time())
        self.fresh_until = fresh_until
        self.requests = requests

    def __repr__(self) -> str:
        return f"<PackageChecks of {len(self.evidence.metadata)} packages>"


@collector_paused()
def check_packages(
    lock: Lock,
    lock_dir: Path,
    settings: Settings,
    packages: Sequence[Package],
    store: FactsStore | None,
) -> PackageChecks:
    """Check ``packages``, registry packages of ``lock``, as :func:`analyze_lock` checks
    each one (stored facts, the caches, then the index), without planning: ``lock`` need
    hold only its header and these packages. ``store``: the facts store to use, which the
    caller closes (so that what it stored too is written in the same transaction)."""
    config = load_config(lock_dir, lock)
    planner = Planner(lock, config)
    client = _client(settings, config, lock_dir)
    token = _PER_WHEEL.set(settings.per_wheel)
    try:
        registry = _to_check(packages, planner, settings)
        checks = _Checks(client, planner, settings, store, None, len(registry))
        remaining = _from_caches(checks, checks.recall(registry, set()))
        if remaining:
            _on_loop(client, _check_all(checks, remaining, None))
        _all_checked(checks, lock)
    finally:
        _PER_WHEEL.reset(token)
        client.close()
    return PackageChecks(
        planner.evidence,
        checks.warnings,
        checks.audit,
        client.fresh_until,
        client.stats.requests,
    )


async def _add_missing(client: IndexClient, planner: Planner, missing: Missing) -> None:
    last_error: Exception | None = None
    for index_url in missing.indexes:
        try:
            page = await client.project_page(
                index_url, missing.name, flat=planner.config.is_flat(index_url)
            )
        except ProjectNotFound as error:
            last_error = error
            continue
        try:
            added = planner.choose(missing, index_url, page)
        except NoMatchingVersion as error:
            raise ResolutionError(str(error)) from None
        files = list(added.wheels) or ([added.sdist] if added.sdist else [])
        for file in files:
            try:
                metadata = await client.file_metadata(index_url, file, file.hashes or None)
            except (IndexClientError, MetadataError) as error:
                last_error = error
                continue
            unreadable = unreadable_lines(metadata.requires_dist)
            if unreadable:
                raise ResolutionError(
                    f"cannot add {missing.name} {added.id.version}: its Requires-Dist line "
                    f"{unreadable[0]!r} cannot be read"
                )
            added.metadata = metadata
            return
        if isinstance(last_error, IndexClientError):
            raise last_error  # a network/index failure, not a resolution problem (exit 3)
        raise ResolutionError(
            f"could not read the metadata of {missing.name} {added.id.version}: {last_error}"
        )
    chain = " ← ".join((missing.name, *missing.chain[:3]))
    raise ResolutionError(
        f"{missing.name} is required ({chain}) but no index lists it"
        + (f": {last_error}" if last_error else "")
    )
