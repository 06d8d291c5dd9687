"""Edges must reach versions that satisfy their requirement, with real uv.

In the pins scenario (fixtures/version_scenarios.py) uv 0.10.9 gives PyPI's torch 2.9.0
the CPU index's metadata, so the lock holds only the nvidia-nccl-cu12 and triton versions
that torch 2.8.0+cu128 pins. lockfix must add the versions PyPI's torch pins as second
versions (not link the ones locked), report an edge to a version that does not satisfy its
requirement, and refuse, with one line naming the way out, when two versions of one name
would be needed in the same environment.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from fixtures.builder import build_scenario
from fixtures.server import IndexServer
from fixtures.uvrun import run_uv, uv_bin
from fixtures.version_scenarios import make_pins_project, pins_scenario
from tests.helpers import installed, run_lockfix
from tests.semantic import semantic_differences

OLD, NEW = "0.10.9", "0.13.9"
SELECTIONS = ((), ("--extra", "cpu"), ("--extra", "cu128"))

pytestmark = pytest.mark.skipif(
    not (uv_bin(OLD).exists() and uv_bin(NEW).exists()),
    reason="real uv binaries missing: run `make tools`",
)


class Pins:
    def __init__(self, root: Path, clash: bool) -> None:
        self.root = root
        self.clash = clash
        self.server = IndexServer(build_scenario(pins_scenario(), root / "build")).start()
        self.tmp = root / "uv-tmp"
        self.broken = self._lock(OLD)
        self.reference = self._lock(NEW)

    def _lock(self, version: str) -> str:
        project = make_pins_project(self.server.url, self.root / f"lock-{version}", self.clash)
        run_uv(version, ["lock"], project, self.tmp)
        return (project / "uv.lock").read_text()

    def project(self, name: str, lock_text: str) -> Path:
        directory = self.root / name
        if directory.exists():
            shutil.rmtree(directory)
        make_pins_project(self.server.url, directory, self.clash)
        (directory / "uv.lock").write_text(lock_text)
        return directory

    def lockfix(self, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        return run_lockfix(*args, cwd=cwd, cache=self.root / "cache")

    def installed(self, project: Path, selection: tuple[str, ...]) -> set[str]:
        return {f"{n}=={v}" for n, v in installed(project, selection, self.tmp).items()}


@pytest.fixture(scope="module")
def pins(tmp_path_factory: pytest.TempPathFactory):
    world = Pins(tmp_path_factory.mktemp("pins"), clash=False)
    yield world
    world.server.stop()


@pytest.fixture(scope="module")
def clash(tmp_path_factory: pytest.TempPathFactory):
    world = Pins(tmp_path_factory.mktemp("clash"), clash=True)
    yield world
    world.server.stop()


def _torch_block(text: str, index: str) -> str:
    return next(
        block
        for block in text.split("\n\n")
        if 'name = "torch"\nversion = "2.9.0"\n' in block and f"/{index}/simple" in block
    )


def test_the_reference_locks_are_left_alone(pins: Pins, clash: Pins) -> None:
    for world in (pins, clash):
        project = world.project("reference", world.reference)
        check = world.lockfix("check", "uv.lock", cwd=project)
        assert check.returncode == 0, check.stdout + check.stderr
        assert "0 packages wrong" in check.stdout


def test_the_broken_lock_is_as_uv_0_10_9_writes_it(pins: Pins) -> None:
    """The premise: PyPI's torch lost its pins, and only torch 2.8.0+cu128's are locked."""
    assert "nvidia-nccl-cu12" not in _torch_block(pins.broken, "pypi")
    assert 'version = "2.27.3"' in pins.broken and 'version = "2.27.5"' not in pins.broken
    assert 'version = "2.27.5"' in pins.reference and 'version = "2.27.3"' in pins.reference


def test_repair_adds_the_pinned_versions_beside_the_locked_ones(pins: Pins) -> None:
    project = pins.project("repaired", pins.broken)
    check = pins.lockfix("check", "uv.lock", cwd=project)
    assert check.returncode == 1, check.stdout + check.stderr
    assert "nvidia-nccl-cu12 2.27.5 is required but not in the lock" in check.stdout
    assert "triton 3.5.0 is required but not in the lock" in check.stdout

    repair = pins.lockfix("repair", "uv.lock", cwd=project)
    assert repair.returncode == 0, repair.stdout + repair.stderr
    repaired = (project / "uv.lock").read_text()
    assert semantic_differences(repaired, pins.reference) == []
    torch = _torch_block(repaired, "pypi")
    assert re.search(r'name = "nvidia-nccl-cu12", version = "2\.27\.5", source = ', torch)
    assert re.search(r'name = "triton", version = "3\.5\.0", source = ', torch)

    accepted = run_uv(NEW, ["lock", "--check"], project, pins.tmp, check=False)
    assert accepted.returncode == 0, accepted.stderr
    again = pins.lockfix("repair", "uv.lock", cwd=project)
    assert again.returncode == 0 and (project / "uv.lock").read_text() == repaired

    reference = pins.project("reference-installed", pins.reference)
    for selection in SELECTIONS:
        assert pins.installed(project, selection) == pins.installed(reference, selection)
    assert {"nvidia-nccl-cu12==2.27.5", "triton==3.5.0", "torch==2.9.0"} <= pins.installed(
        project, ()
    )


def test_an_edge_to_a_version_that_does_not_satisfy_its_requirement(pins: Pins) -> None:
    """What an earlier repair wrote: PyPI's torch linked to the nccl and triton locked for
    torch 2.8.0+cu128, which do not satisfy its pins."""
    torch = _torch_block(pins.reference, "pypi")
    wrong = torch.replace('version = "2.27.5"', 'version = "2.27.3"').replace(
        'version = "3.5.0"', 'version = "3.4.0"'
    )
    assert wrong != torch
    project = pins.project("unsatisfied", pins.reference.replace(torch, wrong))

    check = pins.lockfix("check", "uv.lock", "--format", "json", cwd=project)
    assert check.returncode == 1, check.stdout + check.stderr
    findings = json.loads(check.stdout)["findings"]
    unsatisfied = {
        (f["package"], f["target"], f["requirement"])
        for f in findings
        if f["kind"] == "unsatisfied-requirement"
    }
    condition = 'platform_system == "Linux" and platform_machine == "x86_64"'
    assert unsatisfied == {
        ("torch", "nvidia-nccl-cu12", f"nvidia-nccl-cu12==2.27.5; {condition}"),
        ("torch", "triton", f"triton==3.5.0; {condition}"),
    }, findings
    message = next(f["message"] for f in findings if f["target"] == "nvidia-nccl-cu12")
    assert "goes to 2.27.3, which does not satisfy nvidia-nccl-cu12==2.27.5" in message

    repair = pins.lockfix("repair", "uv.lock", cwd=project)
    assert repair.returncode == 0, repair.stdout + repair.stderr
    assert semantic_differences((project / "uv.lock").read_text(), pins.reference) == []


def test_two_versions_in_one_environment_is_refused_with_the_way_out(clash: Pins) -> None:
    """The project pins nccl 2.27.3 itself where PyPI's torch 2.9.0 needs 2.27.5."""
    project = clash.project("clash", clash.broken)
    repair = clash.lockfix("repair", "uv.lock", cwd=project)
    assert repair.returncode == 1, repair.stdout + repair.stderr
    assert (project / "uv.lock").read_text() == clash.broken
    lines = repair.stderr.strip().splitlines()
    assert len(lines) == 1, repair.stderr
    line = lines[0]
    assert "torch 2.9.0 requires nvidia-nccl-cu12==2.27.5" in line
    assert "pins 0.1.0 requires nvidia-nccl-cu12==2.27.3" in line
    command = re.search(r"`(uv lock [^`]*)`", line)
    assert command is not None and "--upgrade-package torch" in command[1], line

    check = clash.lockfix("check", "uv.lock", cwd=project)
    assert check.returncode == 1 and "version-conflict" in check.stdout

    # the command named resolves it: current uv relocks, and lockfix finds nothing wrong
    run_uv(NEW, command[1].split()[1:], project, clash.tmp)
    assert clash.lockfix("check", "uv.lock", cwd=project).returncode == 0
