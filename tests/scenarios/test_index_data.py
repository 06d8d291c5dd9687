"""Index data uv reads leniently, on real uv locks from the loopback index.

* torch nightly's ``python_version != "3.13t"`` (a marker value that is no version: uv
  leaves the comparison out) must not crash lockfix nor change what an edge means;
* ``bar>=1.0.*`` and other Requires-Dist lines ``packaging`` rejects and uv repairs must
  be read as uv reads them, so the edges uv locked for them are right and repair keeps
  their targets.

For each project current uv writes the reference lock (uv 0.10.9 writes the same edges:
neither shape is about its bug); the reference must check clean, and a copy with the
edge and its target removed by script must be repaired into a lock equal to it in
meaning, that uv accepts and installs as it installs the reference.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from fixtures.builder import build_scenario
from fixtures.index_data import PROJECTS, TRITON, make_project, scenario
from fixtures.lock_scenarios import drop_edge, remove_package
from fixtures.server import IndexServer
from fixtures.uvrun import run_uv, uv_bin
from tests.helpers import installed, run_lockfix
from tests.semantic import semantic_differences

OLD, NEW = "0.10.9", "0.13.9"

pytestmark = pytest.mark.skipif(
    not (uv_bin(OLD).exists() and uv_bin(NEW).exists()),
    reason="real uv binaries missing: run `make tools`",
)


class World:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.server = IndexServer(build_scenario(scenario(), root / "build")).start()
        self.tmp = root / "uv-tmp"
        self.locks: dict[tuple[str, str], str] = {}

    def project(self, name: str, directory: str, lock: str | None = None) -> Path:
        path = self.root / name / directory
        if path.exists():
            shutil.rmtree(path)
        make_project(name, self.server, path)
        if lock is not None:
            (path / "uv.lock").write_text(lock)
        return path

    def lock(self, name: str, version: str = NEW) -> str:
        if (name, version) not in self.locks:
            project = self.project(name, f"lock-{version}")
            run_uv(version, ["lock"], project, self.tmp)
            self.locks[name, version] = (project / "uv.lock").read_text()
        return self.locks[name, version]

    def lockfix(self, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        return run_lockfix(*args, cwd=cwd, cache=self.root / "cache")

    def installed(self, project: Path) -> set[str]:
        return {f"{n}=={v}" for n, v in installed(project, (), self.tmp).items()}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    world = World(tmp_path_factory.mktemp("index-data"))
    yield world
    world.server.stop()


@pytest.mark.parametrize("version", [NEW, OLD])
@pytest.mark.parametrize("name", sorted(PROJECTS))
def test_what_uv_locked_checks_clean(world: World, name: str, version: str) -> None:
    lock = world.lock(name, version)
    project = world.project(name, f"clean-{version}", lock)
    result = world.lockfix("check", "uv.lock", "--format", "json", cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["findings"] == [] and report["unverified"] == [], report
    registry = lock.count("source = { registry = ")
    assert report["verified"] == registry, report
    repair = world.lockfix("repair", "uv.lock", cwd=project)
    assert repair.returncode == 0, repair.stderr
    assert (project / "uv.lock").read_text() == lock


def test_the_marker_uv_locked_for_a_non_version_value(world: World) -> None:
    """What uv writes for ``python_version != "3.13t"`` (left out) and for such a value in
    an ``or`` and a version list: the edges lockfix derives must be these."""
    lock = world.lock("nightly-markers")
    assert (
        '{ name = "pytorch-triton", marker = "platform_machine == \'x86_64\' and '
        "sys_platform == 'linux'\" }" in lock
    )
    assert '{ name = "typing-extensions", marker = "sys_platform == \'win32\'" }' in lock
    assert '    { name = "mpmath" },\n    { name = "sympy", marker = "\'gpu\' in extras" },' in lock
    assert "%2Bgit0d4682f0-" in lock and "%2Bcu126-" in lock  # as the PyTorch index links them


CORRUPTIONS = {
    "nightly-markers": ("torch", "pytorch-triton"),
    "lenient-requires": ("legacyish", "bar"),
}


@pytest.mark.parametrize("name", sorted(PROJECTS))
def test_a_dropped_edge_and_package_are_restored(world: World, name: str) -> None:
    reference = world.lock(name)
    parent, child = CORRUPTIONS[name]
    broken = remove_package(drop_edge(reference, parent, child), child)
    project = world.project(name, "repaired", broken)

    check = world.lockfix("check", "uv.lock", cwd=project)
    assert check.returncode == 1, check.stdout + check.stderr
    assert f"missing dependency {child}" in check.stdout, check.stdout

    repair = world.lockfix("repair", "uv.lock", cwd=project)
    assert repair.returncode == 0, repair.stdout + repair.stderr
    repaired = (project / "uv.lock").read_text()
    assert semantic_differences(repaired, reference) == []
    accepted = run_uv(NEW, ["lock", "--check"], project, world.tmp, check=False)
    assert accepted.returncode == 0, accepted.stderr

    installed = world.installed(project)
    assert installed == world.installed(world.project(name, "reference", reference))
    wanted = f"pytorch-triton=={TRITON}" if child == "pytorch-triton" else "bar==1.0.3"
    assert wanted in installed  # this machine is Linux x86_64 on CPython 3.11


def test_an_orphaned_lenient_target_is_kept(world: World) -> None:
    """``bar`` is only reachable through ``bar>=1.0.*``: a repair of an unrelated damage
    must not take it for an orphan and delete it."""
    reference = world.lock("lenient-requires")
    broken = drop_edge(reference, "legacyish", "baz")
    project = world.project("lenient-requires", "keep-bar", broken)
    repair = world.lockfix("repair", "uv.lock", cwd=project)
    assert repair.returncode == 0, repair.stdout + repair.stderr
    assert semantic_differences((project / "uv.lock").read_text(), reference) == []
