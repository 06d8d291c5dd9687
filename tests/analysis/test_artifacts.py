"""Lock integrity: locked sdists and wheels must be the files the index lists.

A correct lock is written by real uv against a loopback index, then tampered with the way
a malicious or careless PR would: a wheel moved to another host with that host's hash, a
hash changed, a URL pointing at another index. The index itself changes too: a file
removed, a release yanked, an sdist re-uploaded. ``lockfix check`` must name each file
with its finding kind; ``repair`` must leave the lock alone unless told to take the
index's entries, after which ``check`` passes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from fixtures.builder import BuiltScenario, build_scenario
from fixtures.server import IndexServer
from fixtures.uvrun import run_uv, uv_bin
from lockfix.analysis.artifacts import (
    ArtifactAudit,
    index_artifacts,
    same_upload_time,
    verify_artifacts,
)
from lockfix.dist.simple import IndexFile, ProjectPage, parse_simple_html, parse_simple_json
from lockfix.errors import IndexRequestError
from lockfix.lock.lockfile import parse_lock
from lockfix.lock.writer import replace_lock_artifacts

UV = "0.13.9"
UPLOADED = "2025-03-01T10:00:00.123456Z"


def scenario(**changes: dict[str, Any]) -> dict[str, Any]:
    """The indexes; ``changes`` updates the spec of the named pypi packages."""
    packages = [
        {"name": "alpha", "version": "1.0", "sdist": True, "upload-time": UPLOADED},
        {
            "name": "beta",
            "version": "2.0",
            "tags": ["py3-none-any", "cp311-cp311-manylinux_2_28_x86_64"],
            "sdist": True,
            "requires-dist": ["gamma>=1"],
        },
        {"name": "gamma", "version": "1.0"},
        {"name": "Delta_Pkg", "version": "1.0", "sdist": True},
        {"name": "epsilon", "version": "1.0"},
    ]
    for package in packages:
        package.update(changes.get(package["name"], {}))
    # Same file names as on pypi, other bytes: what "elsewhere" serves.
    mirror = [{"name": "gamma", "version": "1.0", "summary": "not the real gamma"}]
    return {
        "indexes": [{"name": "pypi", "packages": packages}, {"name": "mirror", "packages": mirror}]
    }


PYPROJECT = """\
[project]
name = "app"
version = "0.1.0"
requires-python = ">=3.11"
dependencies = ["alpha", "beta", "delta-pkg", "epsilon"]

[tool.uv]
package = false

[[tool.uv.index]]
name = "pypi"
url = "{url}"
default = true
"""


class Index:
    """One loopback index server, a project locked against it by real uv, and lockfix."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.built = build_scenario(scenario(), root / "build")
        self.server = IndexServer(self.built).start()
        project = self.write_project(root / "reference", None)
        run_uv(UV, ["lock"], project, root / "uv-tmp")
        self.reference = (project / "uv.lock").read_text()
        self.runs = 0

    def write_project(self, directory: Path, lock_text: str | None) -> Path:
        if directory.exists():
            shutil.rmtree(directory)
        directory.mkdir(parents=True)
        pyproject = PYPROJECT.format(url=self.server.index_url("pypi"))
        (directory / "pyproject.toml").write_text(pyproject)
        if lock_text is not None:
            (directory / "uv.lock").write_text(lock_text)
        return directory

    def lockfix(self, project: Path, *args: str) -> subprocess.CompletedProcess[str]:
        self.runs += 1  # a fresh cache each run: the index may have changed in between
        cache = self.root / f"cache-{self.runs}"
        return subprocess.run(
            [sys.executable, "-m", "lockfix", *args, "uv.lock", "--cache-dir", str(cache)],
            cwd=project,
            capture_output=True,
            text=True,
            timeout=300,
        )

    def check_json(self, project: Path) -> tuple[int, dict[str, Any]]:
        result = self.lockfix(project, "check", "--format", "json")
        assert result.returncode in (0, 1), result.stderr
        return result.returncode, json.loads(result.stdout)

    @contextlib.contextmanager
    def serving(
        self,
        changes: dict[str, dict[str, Any]] | None = None,
        edit: Callable[[BuiltScenario], None] | None = None,
    ) -> Iterator[BuiltScenario]:
        """Serve a changed index for the duration of the block."""
        self.runs += 1
        built = build_scenario(scenario(**(changes or {})), self.root / f"build-{self.runs}")
        if edit is not None:
            edit(built)
        self.server.update(built)
        try:
            yield built
        finally:
            self.server.update(self.built)


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Index]:
    if not uv_bin(UV).exists():
        pytest.skip("real uv binary missing: run `make tools`")
    index = Index(tmp_path_factory.mktemp("artifacts"))
    yield index
    index.server.stop()


def artifact_kinds(report: dict[str, Any], key: str = "findings") -> set[tuple[str, str, str]]:
    return {
        (f["package"], f["kind"], f["target"])
        for f in report[key]
        if f["kind"].startswith("artifact-")
    }


def edit_entry(text: str, filename: str, **fields: str | int) -> str:
    """The lock text with some fields of the artifact entry for ``filename`` changed."""
    lines = text.splitlines(keepends=True)
    hits = [i for i, line in enumerate(lines) if f'/{filename}"' in line]
    assert len(hits) == 1, filename
    line = lines[hits[0]]
    for key, value in fields.items():
        rendered = str(value) if isinstance(value, int) else f'"{value}"'
        line, count = re.subn(rf"\b{key} = (\"[^\"]*\"|\d+)", f"{key} = {rendered}", line)
        assert count == 1, (key, line)
    lines[hits[0]] = line
    return "".join(lines)


def assert_refused_then_repaired(
    index: Index, project: Path, tampered: str, expected: str | None = None
) -> str:
    """repair refuses without the flag, rewrites with it, and check then passes."""
    refused = index.lockfix(project, "repair")
    assert refused.returncode == 1, refused.stderr
    assert (project / "uv.lock").read_text() == tampered
    reason = [line for line in refused.stderr.splitlines() if "refusing" in line]
    assert len(reason) == 1 and "--accept-index-artifacts" in reason[0], refused.stderr

    dry = index.lockfix(project, "repair", "--dry-run", "--accept-index-artifacts")
    assert dry.returncode == 0, dry.stderr
    assert (project / "uv.lock").read_text() == tampered

    repaired = index.lockfix(project, "repair", "--accept-index-artifacts")
    assert repaired.returncode == 0, repaired.stderr
    text = (project / "uv.lock").read_text()
    assert text != tampered
    if expected is not None:
        assert text == expected
    again = index.lockfix(project, "check")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "artifact-" not in again.stdout.replace("artifact-yanked", "")
    return repaired.stderr


# --- the untampered lock ------------------------------------------------------------------


def test_untampered_lock_has_no_artifact_findings(index: Index, tmp_path: Path) -> None:
    project = index.write_project(tmp_path / "p", index.reference)
    status, report = index.check_json(project)
    assert status == 0, report
    assert artifact_kinds(report) == set() and artifact_kinds(report, "warnings") == set()
    result = index.lockfix(project, "repair", "--accept-index-artifacts")
    assert result.returncode == 0, result.stderr
    assert (project / "uv.lock").read_text() == index.reference


# --- tampered locks -----------------------------------------------------------------------


def test_wheel_moved_to_another_host_with_its_hash(index: Index, tmp_path: Path) -> None:
    evil_build = build_scenario(
        {
            "indexes": [
                {"name": "pypi", "packages": [{"name": "gamma", "version": "1.0", "pad": 9}]}
            ]
        },
        tmp_path / "evil",
    )
    filename = "gamma-1.0-py3-none-any.whl"
    evil_file = evil_build.find("pypi", filename)
    with IndexServer(evil_build) as evil:
        tampered = edit_entry(
            index.reference,
            filename,
            url=evil.file_url("pypi", filename),
            hash=f"sha256:{evil_file.sha256}",
            size=evil_file.size,
        )
        project = index.write_project(tmp_path / "p", tampered)
        status, report = index.check_json(project)
        assert status == 1
        assert artifact_kinds(report) == {
            ("gamma", "artifact-host-mismatch", filename),
            ("gamma", "artifact-hash-mismatch", filename),
            ("gamma", "artifact-size-mismatch", filename),
        }
        text = index.lockfix(project, "check")
        assert text.returncode == 1
        lines = text.stdout.splitlines()
        header = next(i for i, line in enumerate(lines) if line.startswith("gamma 1.0 (127."))
        assert lines[header + 1].startswith(f"  artifact-host-mismatch: {filename}: locked at ")
        stderr = assert_refused_then_repaired(index, project, tampered, index.reference)
        assert f"gamma 1.0: replaced {filename}" in stderr
        assert evil.requests == []  # nothing, not even metadata, came from the other host


def test_wheel_moved_to_a_file_the_index_does_not_list(index: Index, tmp_path: Path) -> None:
    filename = "gamma-1.0-py3-none-any.whl"
    other = "gamma-1.0-py2.py3-none-any.whl"
    with IndexServer(index.built) as evil:
        tampered = edit_entry(index.reference, filename, url=evil.file_url("pypi", filename))
        tampered = tampered.replace(evil.file_url("pypi", filename), evil.file_url("pypi", other))
        project = index.write_project(tmp_path / "p", tampered)
        status, report = index.check_json(project)
        assert status == 1
        assert artifact_kinds(report) == {
            ("gamma", "artifact-unknown", other),
            ("gamma", "artifact-host-mismatch", other),
        }
        # Its only wheel is unknown, so gamma takes what the index lists for 1.0.
        stderr = assert_refused_then_repaired(index, project, tampered, index.reference)
        assert f"gamma 1.0: dropped {other}" in stderr
        assert f"gamma 1.0: added {filename} from the index" in stderr
        assert evil.requests == []


def test_changed_hash(index: Index, tmp_path: Path) -> None:
    filename = "alpha-1.0-py3-none-any.whl"
    tampered = edit_entry(index.reference, filename, hash="sha256:" + "ab" * 32)
    project = index.write_project(tmp_path / "p", tampered)
    status, report = index.check_json(project)
    assert status == 1
    assert artifact_kinds(report) == {("alpha", "artifact-hash-mismatch", filename)}
    finding = next(f for f in report["findings"] if f["kind"] == "artifact-hash-mismatch")
    assert "ab" * 32 in finding["message"] and "--accept-index-artifacts" in finding["fix"]
    assert_refused_then_repaired(index, project, tampered, index.reference)


def test_url_on_another_index_of_the_same_host(index: Index, tmp_path: Path) -> None:
    """The lock says the registry is index A (pypi), but one wheel comes from index B."""
    filename = "gamma-1.0-py3-none-any.whl"
    mirrored = index.built.find("mirror", filename)
    tampered = edit_entry(
        index.reference,
        filename,
        url=index.server.file_url("mirror", filename),
        hash=f"sha256:{mirrored.sha256}",
    )
    assert 'registry = "' + index.server.index_url("pypi") in tampered
    project = index.write_project(tmp_path / "p", tampered)
    status, report = index.check_json(project)
    assert status == 1
    assert artifact_kinds(report) == {
        ("gamma", "artifact-url-mismatch", filename),
        ("gamma", "artifact-hash-mismatch", filename),
    }
    assert_refused_then_repaired(index, project, tampered, index.reference)


def test_wheel_of_another_project(index: Index, tmp_path: Path) -> None:
    filename = "beta-2.0-py3-none-any.whl"
    foreign = "betamax-2.0-py3-none-any.whl"
    tampered = index.reference.replace(f"/{filename}", f"/{foreign}")
    project = index.write_project(tmp_path / "p", tampered)
    status, report = index.check_json(project)
    assert status == 1
    assert artifact_kinds(report) == {
        ("beta", "artifact-name-mismatch", foreign),
        ("beta", "artifact-unknown", foreign),
    }
    stderr = assert_refused_then_repaired(index, project, tampered)
    assert f"beta 2.0: dropped {foreign}" in stderr
    assert foreign not in (project / "uv.lock").read_text()


# --- the index changed under the lock -----------------------------------------------------


def test_file_removed_from_the_index(index: Index, tmp_path: Path) -> None:
    filename = "delta_pkg-1.0.tar.gz"
    project = index.write_project(tmp_path / "p", index.reference)
    with index.serving({"Delta_Pkg": {"sdist": False}}):
        status, report = index.check_json(project)
        assert status == 1
        assert artifact_kinds(report) == {("delta-pkg", "artifact-unknown", filename)}
        assert_refused_then_repaired(index, project, index.reference)
        text = (project / "uv.lock").read_text()
        assert filename not in text and "delta_pkg-1.0-py3-none-any.whl" in text


def test_yanked_release_only_warns(index: Index, tmp_path: Path) -> None:
    filename = "epsilon-1.0-py3-none-any.whl"
    project = index.write_project(tmp_path / "p", index.reference)
    with index.serving({"epsilon": {"yanked": "broken build"}}):
        status, report = index.check_json(project)
        assert status == 0, report
        assert artifact_kinds(report) == set()
        assert artifact_kinds(report, "warnings") == {("epsilon", "artifact-yanked", filename)}
        assert "broken build" in report["warnings"][0]["message"]
        human = index.lockfix(project, "check")
        assert human.returncode == 0
        assert f"  artifact-yanked: {filename}: yanked: broken build" in human.stdout
        repaired = index.lockfix(project, "repair")
        assert repaired.returncode == 0, repaired.stderr
        assert (project / "uv.lock").read_text() == index.reference


def test_sdist_reuploaded_with_a_new_hash(index: Index, tmp_path: Path) -> None:
    filename = "alpha-1.0.tar.gz"
    later = "2025-04-01T08:30:00.5Z"

    def reupload(built: BuiltScenario) -> None:
        other = build_scenario(scenario(alpha={"summary": "re-uploaded"}), tmp_path / "other")
        files = built["pypi"].projects["alpha"].files
        position = next(i for i, f in enumerate(files) if f.filename == filename)
        files[position] = dataclasses.replace(
            other.find("pypi", filename), upload_time="2025-04-01T08:30:00.500000Z"
        )

    project = index.write_project(tmp_path / "p", index.reference)
    with index.serving(edit=reupload) as built:
        new = built.find("pypi", filename)
        status, report = index.check_json(project)
        assert status == 1
        kinds = artifact_kinds(report)
        assert ("alpha", "artifact-hash-mismatch", filename) in kinds
        assert ("alpha", "artifact-upload-time-mismatch", filename) in kinds
        assert {k for _, k, f in kinds if f != filename} == set()
        assert_refused_then_repaired(index, project, index.reference)
        text = (project / "uv.lock").read_text()
        assert f"sha256:{new.sha256}" in text and f'upload-time = "{later}"' in text
        # Only alpha's sdist line changed.
        changed = set(text.splitlines()) ^ set(index.reference.splitlines())
        assert all(filename in line for line in changed), changed


# --- the pure parts -----------------------------------------------------------------------

LOCK = """\
version = 1
revision = 3
requires-python = ">=3.11"

[[package]]
name = "torch"
version = "2.7.1+cpu"
source = {{ registry = "https://download.pytorch.org/whl/cpu" }}
wheels = [
    {{ url = "{url}", hash = "sha256:{digest}", size = 10, upload-time = "{time}" }},
]
"""
WHEEL = "torch-2.7.1+cpu-cp311-cp311-manylinux_2_28_x86_64.whl"
DIGEST = "0f" * 32


def _package(url: str, time: str = "2025-06-04T12:00:00.123Z"):  # type: ignore[no-untyped-def]
    lock = parse_lock(LOCK.format(url=url, digest=DIGEST, time=time))
    return lock.packages[0]


def _page(**fields: Any) -> ProjectPage:
    values: dict[str, Any] = {
        "filename": WHEEL,
        "url": "https://download.pytorch.org/whl/cpu/torch-2.7.1%2Bcpu-cp311-cp311-manylinux_2_28_x86_64.whl",
        "hashes": MappingProxyType({"sha256": DIGEST}),
        "size": 10,
        "upload_time": "2025-06-04T12:00:00.123456Z",
    }
    values.update(fields)
    return ProjectPage(
        "torch", "https://download.pytorch.org/whl/cpu/torch/", (IndexFile(**values),)
    )


def test_percent_encoding_and_upload_time_precision_are_not_findings() -> None:
    url = (
        "https://download.pytorch.org/whl/cpu/torch-2.7.1+cpu-cp311-cp311-manylinux_2_28_x86_64.whl"
    )
    assert verify_artifacts(_package(url), _page()) == ([], [])
    assert verify_artifacts(_package(url, "2025-06-04T12:00:00.123+00:00"), _page()) == ([], [])
    errors, _ = verify_artifacts(_package(url, "2025-06-04T12:00:01.123Z"), _page())
    assert [f.kind for f in errors] == ["artifact-upload-time-mismatch"]


@pytest.mark.parametrize("kind", ["html", "json"])
def test_a_percent_encoded_locked_url_names_the_listed_file(kind: str) -> None:
    """uv writes the PyTorch index's href (``%2B``) into the lock; the file is the decoded
    name, which the page lists (HTML: decoded from the href; PEP 691: its filename)."""
    page_url = "https://download.pytorch.org/whl/cpu/torch/"
    quoted = WHEEL.replace("+", "%2B")
    href = f"/whl/cpu/{quoted}"
    if kind == "html":
        page = parse_simple_html(f'<a href="{href}#sha256={DIGEST}">{WHEEL}</a>', page_url, "t")
    else:
        entry = {"filename": WHEEL, "url": href, "hashes": {"sha256": DIGEST}}
        page = parse_simple_json(json.dumps({"files": [entry]}), page_url, "torch")
    package = _package(f"https://download.pytorch.org/whl/cpu/{quoted}")
    assert [a.name for a in package.wheels] == [WHEEL]
    assert verify_artifacts(package, page) == ([], [])
    assert [f.url for f in index_artifacts(package, page)] == [package.wheels[0].url]


def test_upload_times_compare_in_uv_form() -> None:
    assert same_upload_time("2025-01-01T00:00:00Z", "2025-01-01T00:00:00.000000Z")
    assert same_upload_time("2025-06-04T12:00:00.86Z", "2025-06-04T12:00:00.860767Z")
    assert same_upload_time("2025-06-04T14:00:00.1+02:00", "2025-06-04T12:00:00.100Z")
    assert not same_upload_time("2025-06-04T12:00:00.86Z", "2025-06-04T12:00:00.87Z")


def test_relative_links_resolve_against_the_page() -> None:
    page_url = "https://example.org/simple/torch/"
    html = f'<a href="../../files/{WHEEL}#sha256={DIGEST}">{WHEEL}</a>'
    page = parse_simple_html(html, page_url, "torch")
    package = _package(f"https://example.org/files/{WHEEL}")
    assert verify_artifacts(package, page) == ([], [])
    moved = _package(f"https://example.org/other/{WHEEL}")
    assert [f.kind for f in verify_artifacts(moved, page)[0]] == ["artifact-url-mismatch"]


def test_hashes_compare_only_where_both_sides_have_the_algorithm() -> None:
    url = f"https://download.pytorch.org/whl/cpu/{WHEEL}"
    assert verify_artifacts(_package(url), _page(hashes={"md5": "00"})) == ([], [])
    assert verify_artifacts(_package(url), _page(hashes={"sha256": DIGEST.upper()})) == ([], [])
    errors, _ = verify_artifacts(_package(url), _page(hashes={"sha256": "1" * 64, "md5": "0"}))
    assert [f.kind for f in errors] == ["artifact-hash-mismatch"]


def test_no_page_means_every_file_is_unknown() -> None:
    url = f"https://download.pytorch.org/whl/cpu/{WHEEL}"
    errors, warnings = verify_artifacts(_package(url), None)
    assert [(f.kind, f.target) for f in errors] == [("artifact-unknown", WHEEL)]
    assert warnings == [] and index_artifacts(_package(url), None) == []


def test_version_in_the_file_name_must_be_the_package_version() -> None:
    other = WHEEL.replace("2.7.1+cpu", "2.7.1")
    page = _page(filename=other, url=f"https://download.pytorch.org/whl/cpu/{other}")
    errors, _ = verify_artifacts(_package(f"https://download.pytorch.org/whl/cpu/{other}"), page)
    assert [f.kind for f in errors] == ["artifact-name-mismatch"]
    assert "version 2.7.1, not 2.7.1+cpu" in errors[0].message
    assert index_artifacts(_package(f"https://download.pytorch.org/whl/cpu/{other}"), page) == []


def test_a_json_page_found_corrupt_late_records_nothing() -> None:
    """A PEP 691 page is decoded in full only when needed (here: to pick replacements); if
    that fails the audit is left as it was and the engine reports the page unavailable."""
    other = WHEEL.replace("2.7.1+cpu", "2.7.1")
    url = f"https://download.pytorch.org/whl/cpu/{other}"
    entry = {"filename": other, "url": url, "hashes": {"sha256": DIGEST}}
    body = json.dumps({"files": [entry]}).encode()[:-2] + b', {"filename": ]}'
    page = parse_simple_json(body, "https://download.pytorch.org/whl/cpu/torch/", "torch")
    audit = ArtifactAudit()
    with pytest.raises(IndexRequestError, match="invalid PEP 691 JSON"):
        audit.record(_package(url), page)
    assert audit.findings == [] and audit.warnings == [] and audit.replacements == {}


EVIL_SDIST = (
    'sdist = { url = "https://evil.example/torch-2.7.1+cpu.tar.gz", hash = "sha256:'
    + "0" * 64
    + '" }\n'
)


def test_replacing_artifacts_keeps_crlf_and_the_rest_of_the_block() -> None:
    url = f"https://evil.example/{WHEEL}"
    text = LOCK.format(url=url, digest="1" * 64, time="2025-01-01T00:00:00Z")
    text = text.replace(
        'source = { registry = "https://download.pytorch.org/whl/cpu" }\n',
        'source = { registry = "https://download.pytorch.org/whl/cpu" }\n'
        'dependencies = [\n    { name = "alpha" },\n]\n' + EVIL_SDIST,
    )
    text += (
        '\n[package.optional-dependencies]\nx = [\n    { name = "alpha" },\n]\n\n'
        '[[package]]\nname = "alpha"\nversion = "1.0"\n'
        'source = { registry = "https://download.pytorch.org/whl/cpu" }\n'
    )
    text = text.replace("\n", "\r\n")
    lock = parse_lock(text)
    torch = lock.packages[0]
    page = _page()
    assert {f.kind for f in verify_artifacts(torch, page)[0]} == {
        "artifact-unknown",
        "artifact-host-mismatch",
        "artifact-hash-mismatch",
        "artifact-upload-time-mismatch",
    }
    files = index_artifacts(torch, page)
    assert [f.filename for f in files] == [WHEEL]
    new = replace_lock_artifacts(text, {torch.id: files})
    assert "evil.example" not in new and "\r\n" in new and "\n" not in new.replace("\r\n", "")
    assert new.replace("\r\n", "\n") == text.replace("\r\n", "\n").replace(
        EVIL_SDIST + f'wheels = [\n    {{ url = "{url}", hash = "sha256:{"1" * 64}", size = 10, '
        'upload-time = "2025-01-01T00:00:00Z" },\n]\n',
        f'wheels = [\n    {{ url = "{page.files[0].url}", hash = "sha256:{DIGEST}", size = 10, '
        'upload-time = "2025-06-04T12:00:00.123Z" },\n]\n',
    )
    assert parse_lock(new).packages[0].optional_dependencies == torch.optional_dependencies


# --- real locks against real PyPI (opt-in: pytest -m network) -----------------------------

REAL_LOCKS = sorted(
    (Path(__file__).resolve().parents[3] / "shared" / "real-locks").glob("*/uv.lock")
)
PYPI = "https://pypi.org/simple"


@pytest.mark.network
@pytest.mark.parametrize("path", REAL_LOCKS, ids=lambda p: p.parent.name)
def test_real_locks_have_no_artifact_findings(path: Path, tmp_path: Path) -> None:
    import asyncio

    from lockfix.index.cache import MetadataCache
    from lockfix.index.http import IndexClient

    lock = parse_lock(path.read_text())
    packages = [p for p in lock.packages if p.source.is_registry and p.source.location == PYPI]

    async def pages() -> list[ProjectPage]:
        async with IndexClient(cache=MetadataCache(tmp_path / "cache"), concurrency=16) as client:
            return await asyncio.gather(*(client.project_page(PYPI, p.name) for p in packages))

    errors = []
    for package, page in zip(packages, asyncio.run(pages()), strict=True):
        errors += verify_artifacts(package, page)[0]
    # the findings checked by hand to be true (files PyPI re-dated or delisted, an edited lock)
    from tests.scenarios.test_real_locks import TRUE_FINDINGS

    folder = path.parent.name
    unexplained = [
        f"{f.package.name} {f.kind}: {f.message}"
        for f in errors
        if (folder, f.package.name, f.package.version, str(f.kind)) not in TRUE_FINDINGS
    ]
    assert unexplained == []
