"""The scenario suite: lock shapes uv writes, corrupted by script, repaired by lockfix.

For each shape, current uv writes the reference lock against the loopback index. Each
case corrupts it (an edge dropped, an undeclared edge added, a marker changed, a package
removed); lockfix must report it, and its repair must be accepted by uv, install what the
reference installs for each selection, equal the reference in meaning, and be stable.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from fixtures.lock_scenarios import CASES, SHAPES, Case, build_registry, corrupt
from fixtures.server import IndexServer
from fixtures.uvrun import run_uv, uv_bin
from lockfix.lock.lockfile import PackageId, parse_lock
from tests.helpers import installed, run_lockfix
from tests.semantic import semantic_differences

NEW = "0.13.9"

pytestmark = pytest.mark.skipif(not uv_bin(NEW).exists(), reason="uv missing: run `make tools`")


class World:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.built = build_registry(root / "build")
        self.server = IndexServer(self.built, options={"reg": {"flat": True}}).start()
        self.tmp = root / "uv-tmp"
        self.references: dict[str, str] = {}

    def project(self, shape: str, name: str, lock: str | None = None) -> Path:
        directory = self.root / shape / name
        if directory.exists():
            shutil.rmtree(directory)
        SHAPES[shape].write(
            directory, self.server.index_url("reg"), self.server.flat_url("reg"), self.built.root
        )
        if lock is not None:
            (directory / "uv.lock").write_text(lock)
        return directory

    def reference(self, shape: str) -> str:
        if shape not in self.references:
            project = self.project(shape, "reference")
            run_uv(NEW, ["lock"], project, self.tmp)
            self.references[shape] = (project / "uv.lock").read_text()
        return self.references[shape]

    def lockfix(self, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        return run_lockfix(*args, cwd=cwd, cache=self.root / "cache")

    def installed(self, project: Path, selection: tuple[str, ...]) -> set[str]:
        return {f"{n}=={v}" for n, v in installed(project, selection, self.tmp).items()}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    world = World(tmp_path_factory.mktemp("shapes"))
    yield world
    world.server.stop()


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_repair_leaves_what_uv_writes_alone(world: World, shape: str) -> None:
    reference = world.reference(shape)
    project = world.project(shape, "noop", reference)
    check = world.lockfix("check", "uv.lock", cwd=project)
    assert check.returncode == 0, check.stdout + check.stderr
    repair = world.lockfix("repair", "uv.lock", cwd=project)
    assert repair.returncode == 0, repair.stderr
    assert (project / "uv.lock").read_text() == reference


def test_no_fitting_version_is_a_clear_error_and_nothing_is_written(world: World) -> None:
    reference = world.reference("exclude-newer")
    broken = corrupt(next(c for c in CASES if c.id == "exclude-newer-remove"), reference)
    broken = broken.replace(
        'exclude-newer = "2025-01-01T00:00:00Z"', 'exclude-newer = "2020-01-01T00:00:00Z"'
    )
    project = world.project("exclude-newer", "no-fit", broken)
    result = world.lockfix("repair", "uv.lock", cwd=project)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "no version of newish" in result.stderr and "wrapper" in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert (project / "uv.lock").read_text() == broken


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_corrupted_lock_is_repaired(world: World, case: Case) -> None:
    reference = world.reference(case.shape)
    donor = world.reference(case.donor) if case.donor else None
    broken = corrupt(case, reference, donor)
    project = world.project(case.shape, case.id, broken)

    check = world.lockfix("check", "uv.lock", cwd=project)
    assert check.returncode == 1, f"{case.what}\n{check.stdout}{check.stderr}"
    assert (project / "uv.lock").read_text() == broken

    repair = world.lockfix("repair", "uv.lock", cwd=project)
    assert repair.returncode == 0, repair.stdout + repair.stderr
    repaired = (project / "uv.lock").read_text()
    assert semantic_differences(repaired, reference) == [], case.what
    assert _resolution_markers(repaired) == _resolution_markers(reference)

    accepted = run_uv(NEW, ["lock", "--check"], project, world.tmp, check=False)
    assert accepted.returncode == 0, accepted.stderr

    again = world.lockfix("repair", "uv.lock", cwd=project)
    assert again.returncode == 0 and (project / "uv.lock").read_text() == repaired

    reference_project = world.project(case.shape, case.id + "-ref", reference)
    for selection in SHAPES[case.shape].selections:
        assert world.installed(project, selection) == world.installed(
            reference_project, selection
        ), selection


def _resolution_markers(text: str) -> dict[PackageId, tuple[str, ...]]:
    """Each package's ``resolution-markers``, as written."""
    return {p.id: p.resolution_markers for p in parse_lock(text).packages}
