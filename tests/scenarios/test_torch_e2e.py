"""End to end, with real uv: an old uv breaks the torch/nvidia lock, lockfix heals it.

For each variant of uv#14237 (dependency groups, extras, nvidia packages absent), uv
0.10.9 writes the broken lock and uv 0.13.9 the reference lock against the loopback
fixture indexes. lockfix must find the damage, repair it into a lock that current uv
accepts and installs correctly, equal in meaning to the reference, and then leave both
the repaired and the reference lock byte for byte alone.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from fixtures.builder import build_scenario
from fixtures.scenarios import NVIDIA_PINS, get_scenario, make_project
from fixtures.server import IndexServer
from fixtures.uvrun import run_uv, uv_bin
from tests.helpers import installed, run_lockfix
from tests.semantic import semantic_differences

OLD, NEW = "0.10.9", "0.13.9"
VARIANTS = ("torch_groups", "torch_extras", "torch_absent")
NVIDIA = {name for name, _ in NVIDIA_PINS}
GPU_SET = NVIDIA | {"torch", "triton"}

pytestmark = pytest.mark.skipif(
    not (uv_bin(OLD).exists() and uv_bin(NEW).exists()),
    reason="real uv binaries missing: run `make tools`",
)


class Case:
    def __init__(self, variant: str, root: Path) -> None:
        self.variant = variant
        self.root = root
        self.server = IndexServer(build_scenario(get_scenario(variant), root / "build")).start()
        self.tmp = root / "uv-tmp"
        self.broken = self._lock(OLD)
        self.reference = self._lock(NEW)

    def _lock(self, version: str) -> str:
        project = make_project(self.variant, self.server, self.root / f"lock-{version}")
        run_uv(version, ["lock"], project, self.tmp)
        return (project / "uv.lock").read_text()

    def project(self, name: str, lock_text: str) -> Path:
        directory = self.root / name
        if directory.exists():
            shutil.rmtree(directory)
        make_project(self.variant, self.server, directory)
        (directory / "uv.lock").write_text(lock_text)
        return directory

    def lockfix(self, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        return run_lockfix(*args, cwd=cwd, cache=self.root / "cache")


@pytest.fixture(scope="module", params=VARIANTS)
def case(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    case = Case(request.param, tmp_path_factory.mktemp(request.param))
    yield case
    case.server.stop()


@pytest.fixture(scope="module")
def repaired(case: Case) -> str:
    project = case.project("repaired", case.broken)
    result = case.lockfix("repair", "uv.lock", cwd=project)
    assert result.returncode == 0, result.stderr + result.stdout
    return (project / "uv.lock").read_text()


def _versions(case: Case, project: Path, *args: str) -> dict[str, str]:
    return installed(project, args, case.tmp)


def _installed(case: Case, project: Path, *args: str) -> set[str]:
    return set(_versions(case, project, *args))


def test_old_uv_really_broke_the_lock(case: Case) -> None:
    assert case.broken != case.reference
    assert semantic_differences(case.broken, case.reference)


def test_check_names_torch_and_its_missing_dependencies(case: Case) -> None:
    project = case.project("check-broken", case.broken)
    result = case.lockfix("check", "uv.lock", cwd=project)
    assert result.returncode == 1, result.stderr
    torch_lines = [
        line
        for line in result.stdout.splitlines()
        if "/pypi/simple" in line or line.startswith("torch 2.7.1 (")
    ]
    assert any(line.startswith("torch 2.7.1 (127.0.0.1") for line in torch_lines), result.stdout
    missing = {
        name
        for name in GPU_SET - {"torch"}
        if f"torch 2.7.1: missing dependency {name}" in result.stdout
    }
    assert missing == GPU_SET - {"torch"}, result.stdout
    assert (project / "uv.lock").read_text() == case.broken


def test_check_json_lists_the_missing_edges(case: Case) -> None:
    project = case.project("check-json", case.broken)
    result = case.lockfix("check", "uv.lock", "--format", "json", cwd=project)
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    missing = {
        f["target"]
        for f in report["findings"]
        if f["package"] == "torch"
        and f["version"] == "2.7.1"
        and f["source"].endswith("/pypi/simple")
        and f["kind"] == "missing-dependency"
    }
    assert missing == GPU_SET - {"torch"}


def test_repaired_lock_means_what_the_reference_means(case: Case, repaired: str) -> None:
    assert semantic_differences(repaired, case.reference) == []


def test_current_uv_accepts_the_repaired_lock(case: Case, repaired: str) -> None:
    project = case.project("uv-check", repaired)
    result = run_uv(NEW, ["lock", "--check"], project, case.tmp, check=False)
    assert result.returncode == 0, result.stderr
    assert (project / "uv.lock").read_text() == repaired


def test_sync_installs_the_gpu_stack_without_a_group(case: Case, repaired: str) -> None:
    project = case.project("sync-default", repaired)
    installed = _installed(case, project)
    assert installed >= GPU_SET, sorted(GPU_SET - installed)


def test_sync_with_cpu_installs_no_nvidia(case: Case, repaired: str) -> None:
    project = case.project("sync-cpu", repaired)
    flag = "--group" if case.variant != "torch_extras" else "--extra"
    installed = _installed(case, project, flag, "cpu")
    assert "torch" in installed
    assert not (installed & (NVIDIA | {"triton"})), sorted(installed & GPU_SET)


@pytest.mark.parametrize(("group", "torch"), [("cpu", "2.7.1+cpu"), ("cu126", "2.7.1+cu126")])
def test_sync_installs_the_local_version_torch_of_each_index(
    case: Case, repaired: str, group: str, torch: str
) -> None:
    """The +cpu and +cu126 wheels, locked by their percent-encoded URLs, install."""
    project = case.project(f"sync-{group}-version", repaired)
    flag = "--group" if case.variant != "torch_extras" else "--extra"
    installed = _versions(case, project, flag, group)
    assert installed["torch"] == torch
    if group == "cu126" and case.variant != "torch_absent":
        assert installed.keys() >= GPU_SET, sorted(GPU_SET - installed.keys())


@pytest.mark.parametrize("which", ["repaired", "reference"])
def test_repair_is_a_no_op_on_a_correct_lock(case: Case, repaired: str, which: str) -> None:
    text = repaired if which == "repaired" else case.reference
    project = case.project(f"noop-{which}", text)
    check = case.lockfix("check", "uv.lock", cwd=project)
    assert check.returncode == 0, check.stdout + check.stderr
    result = case.lockfix("repair", "uv.lock", cwd=project)
    assert result.returncode == 0, result.stderr
    assert (project / "uv.lock").read_text() == text
