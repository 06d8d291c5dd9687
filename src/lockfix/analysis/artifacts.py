"""Lock integrity: do the locked sdists and wheels match what the index lists?

``uv lock --check`` never looks at registry artifacts, so a lock edited to point a wheel at
another host, with that host's hash, installs whatever that host serves on
``uv sync --frozen``. Every locked artifact of a registry package is compared with the
index's listing for that name and version. Pure: the engine hands in the page it fetched.

Finding kinds (errors unless noted):

* ``artifact-unknown``: the index does not list a file of that name for the project;
* ``artifact-host-mismatch``: the locked URL is on another scheme/host/port than the index's;
* ``artifact-url-mismatch``: same host, but not the path the index gives for the file;
* ``artifact-hash-mismatch``: a hash algorithm both sides have disagrees;
* ``artifact-size-mismatch`` / ``artifact-upload-time-mismatch``: where both sides give one;
* ``artifact-name-mismatch``: the file name's project or version is not the package's;
* ``artifact-yanked``: a warning, with the index's reason.

Files the index lists but the lock lacks are not findings: uv leaves out wheels no
supported environment can install.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from urllib.parse import unquote, urlsplit

from packaging.version import InvalidVersion, Version

from lockfix.analysis.findings import Finding
from lockfix.dist.names import canonicalize_name
from lockfix.dist.simple import SDIST_EXTENSIONS, IndexFile, ProjectPage, parse_filename
from lockfix.lock.lockfile import Artifact, Package, PackageId
from lockfix.lock.writer import format_upload_time
from lockfix.urls import origin

ACCEPT_FLAG = "--accept-index-artifacts"
FIX = f"replace it with the index's entry ({ACCEPT_FLAG})"


def locked_artifacts(package: Package) -> list[Artifact]:
    return ([package.sdist] if package.sdist else []) + list(package.wheels)


def _url_key(url: str) -> tuple[tuple[str, str, int | None], str]:
    # Compare what a download would hit: origin and decoded path, never credentials,
    # query or fragment (uv writes neither credentials nor fragments into the lock).
    return origin(url), unquote(urlsplit(url).path)


def _show_origin(url: str) -> str:
    scheme, host, port = origin(url)
    default = {"http": 80, "https": 443}.get(scheme)
    return f"{scheme}://{host}" + (f":{port}" if port not in (None, default) else "")


def _same_version(a: str, b: str) -> bool:
    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return a.strip().lower() == b.strip().lower()


def _instant(text: str) -> datetime | None:
    normal = format_upload_time(text) or text
    try:
        moment = datetime.fromisoformat(normal.replace("Z", "+00:00"))
    except ValueError:
        return None
    # uv keeps milliseconds: anything finer was truncated when the lock was written.
    return moment - timedelta(microseconds=moment.microsecond % 1000)


def same_upload_time(locked: str, listed: str) -> bool:
    if format_upload_time(locked) == format_upload_time(listed):
        return True
    a, b = _instant(locked), _instant(listed)
    if a is None or b is None or (a.tzinfo is None) != (b.tzinfo is None):
        return False
    return a == b


def _sdist_version(filename: str, name: str) -> str | None:
    """The version part of an sdist file name of project ``name``, or None if it is not one.

    Legacy sdist names may contain "-<digits>", so try every split, not just the last."""
    lower = filename.lower()
    extension = next((e for e in SDIST_EXTENSIONS if lower.endswith(e)), None)
    if extension is None:
        return None
    stem = filename[: -len(extension)]
    for position in (i for i, c in enumerate(stem) if c == "-"):
        if canonicalize_name(stem[:position]) == name:
            return stem[position + 1 :]
    return None


def _name_problem(filename: str, package: Package) -> str | None:
    """Why the file cannot belong to this package, or None."""
    info = parse_filename(filename)
    if info is None:
        return "not a wheel or sdist file name"
    version = info.version if info.is_wheel else _sdist_version(filename, package.name)
    if version is None or (info.is_wheel and info.name != package.name):
        return f"a file of project {info.name}, not {package.name}"
    if not _same_version(version, package.version or ""):
        return f"a file of version {version}, not {package.version}"
    return None


class _Checker:
    __slots__ = ("errors", "package", "page", "warnings")

    def __init__(self, package: Package, page: ProjectPage | None) -> None:
        self.package = package
        self.page = page
        self.errors: list[Finding] = []
        self.warnings: list[Finding] = []

    @property
    def label(self) -> str:
        return f"{self.package.name} {self.package.version}"

    def add(self, kind: str, filename: str, detail: str, *, warning: bool = False) -> None:
        finding = Finding(
            self.package.id,
            kind,
            f"{filename}: {detail}",
            target=filename,
            fix=None if warning else FIX,
        )
        (self.warnings if warning else self.errors).append(finding)

    def index_origins(self) -> set[tuple[str, str, int | None]]:
        if self.page is None:
            return {origin(self.package.source.location)}
        return {origin(f.url) for f in self.page.files} or {origin(self.page.url)}

    def check(self, artifact: Artifact) -> None:
        filename = artifact.name
        listed = self.page.file_named(filename) if self.page is not None else None
        problem = _name_problem(filename, self.package)
        if problem is not None:
            self.add("artifact-name-mismatch", filename, f"{problem} (locked as {self.label})")
        if listed is None:
            where = (
                f"{self.package.source.location} has no page for {self.package.name}"
                if self.page is None
                else f"{self.page.url} does not list it"
            )
            self.add("artifact-unknown", filename, where)
            if artifact.url and origin(artifact.url) not in self.index_origins():
                self.add(
                    "artifact-host-mismatch",
                    filename,
                    f"locked at {_show_origin(artifact.url)}, "
                    f"a host the index does not serve files from",
                )
            return
        self.compare(artifact, listed)

    def compare(self, artifact: Artifact, listed: IndexFile) -> None:
        filename = artifact.name
        # A lock entry with a `path` (local index) is checked by content only.
        if (
            artifact.url
            and artifact.url != listed.url
            and _url_key(artifact.url) != _url_key(listed.url)
        ):
            if origin(artifact.url) != origin(listed.url):
                self.add(
                    "artifact-host-mismatch",
                    filename,
                    f"locked at {_show_origin(artifact.url)}, "
                    f"the index serves it from {_show_origin(listed.url)}",
                )
            else:
                self.add(
                    "artifact-url-mismatch",
                    filename,
                    f"locked at {artifact.url}, the index serves it from {listed.url}",
                )
        locked_hashes = {k.lower(): v.lower() for k, v in artifact.hashes.items()}
        for algorithm in sorted(set(locked_hashes) & set(listed.hashes)):
            if locked_hashes[algorithm] != listed.hashes[algorithm].lower():
                self.add(
                    "artifact-hash-mismatch",
                    filename,
                    f"the lock has {algorithm}:{locked_hashes[algorithm]}, "
                    f"the index {algorithm}:{listed.hashes[algorithm].lower()}",
                )
                break
        if artifact.size is not None and listed.size is not None and artifact.size != listed.size:
            self.add(
                "artifact-size-mismatch",
                filename,
                f"the lock has {artifact.size} bytes, the index {listed.size}",
            )
        if (
            artifact.upload_time
            and listed.upload_time
            and not same_upload_time(artifact.upload_time, listed.upload_time)
        ):
            self.add(
                "artifact-upload-time-mismatch",
                filename,
                f"the lock has {artifact.upload_time}, the index "
                f"{format_upload_time(listed.upload_time)}",
            )
        if listed.yanked:
            reason = listed.yanked if isinstance(listed.yanked, str) else "no reason given"
            self.add("artifact-yanked", filename, f"yanked: {reason}", warning=True)


def verify_artifacts(
    package: Package, page: ProjectPage | None
) -> tuple[list[Finding], list[Finding]]:
    """(errors, warnings) for the locked artifacts of a registry package against its index page
    (``None``: the index has no page for the project)."""
    if not package.source.is_registry:
        return [], []
    checker = _Checker(package, page)
    for artifact in locked_artifacts(package):
        checker.check(artifact)
    return checker.errors, checker.warnings


def index_artifacts(package: Package, page: ProjectPage | None) -> list[IndexFile]:
    """The index's entries to lock instead of the package's locked artifacts.

    Each locked file the index lists (under this package's name and version) is replaced by
    the index's entry; files it does not list are dropped. If that leaves nothing, every file
    the index lists for the version is taken, as a fresh ``uv lock`` would (modulo wheels no
    supported environment can use). An empty list means the index has nothing to offer."""
    if page is None or package.version is None:
        return []
    kept: list[IndexFile] = []
    for artifact in locked_artifacts(package):
        listed = page.file_named(artifact.name)
        if listed is not None and _name_problem(listed.filename, package) is None:
            kept.append(listed)
    if kept:
        return kept
    files = [f for f in page.files_for_version(package.version) if f.project_version]
    files = [f for f in files if _name_problem(f.filename, package) is None]
    sdists = [f for f in files if not f.is_wheel][:1]
    return sdists + sorted((f for f in files if f.is_wheel), key=lambda f: f.filename)


def trusted_for_metadata(artifact: Artifact, page: ProjectPage | None, index_url: str) -> bool:
    """May the engine read a locked artifact's metadata? If the page lists the file it is
    fetched from the index's URL; otherwise only from the index's own host or one it serves
    files from, never from the host an edited lock points at."""
    if not artifact.url or (page is not None and page.file_named(artifact.name)):
        return True
    hosts = {origin(index_url)} | ({origin(f.url) for f in page.files} if page else set())
    return origin(artifact.url) in hosts


class ArtifactAudit:
    """What the engine collects over all registry packages."""

    __slots__ = ("findings", "replacements", "warnings")

    def __init__(self) -> None:
        self.findings: list[Finding] = []
        self.warnings: list[Finding] = []
        self.replacements: dict[PackageId, list[IndexFile]] = {}

    def record(self, package: Package, page: ProjectPage | None) -> None:
        errors, warnings = verify_artifacts(package, page)
        # all or nothing: reading the page may raise IndexRequestError (a corrupt PEP 691 page)
        if errors:
            self.replacements[package.id] = index_artifacts(package, page)
        self.findings.extend(errors)
        self.warnings.extend(warnings)


def describe_replacements(
    packages: Iterable[Package], replacements: dict[PackageId, list[IndexFile]]
) -> list[str]:
    """One line per replaced, dropped or added file, for ``repair --accept-index-artifacts``."""
    lines: list[str] = []
    for package in packages:
        files = replacements.get(package.id)
        if files is None:
            continue
        label = f"{package.name} {package.version}"
        new = {f.filename: f for f in files}
        for artifact in locked_artifacts(package):
            listed = new.pop(artifact.name, None)
            if listed is None:
                lines.append(f"{label}: dropped {artifact.name} (the index does not list it)")
            else:
                lines.append(f"{label}: replaced {artifact.name} with the index's entry")
        lines.extend(f"{label}: added {name} from the index" for name in new)
    return lines
