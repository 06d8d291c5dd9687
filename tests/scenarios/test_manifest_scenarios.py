"""Locks whose ``[manifest]`` changes the graph, written by real uv against the loopback index.

Overrides replace a requirement whole, extras included; ``[manifest] requirements`` (a
PEP 723 script) and ``[manifest.dependency-groups]`` (a workspace root without
``[project]``) are roots uv installs from. On each, the lock uv writes is right, and a lock
with a package taken out is repaired back to it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from fixtures.lock_scenarios import _block_span, remove_package
from fixtures.manifest_scenarios import MANIFEST_SHAPES, ManifestShape, build_manifest_registry
from fixtures.server import IndexServer
from fixtures.uvrun import run_uv, uv_bin
from tests.helpers import run_lockfix
from tests.semantic import semantic_differences

NEW = "0.13.9"
OLD = "0.10.9"  # reads an override of a requirement under several extras differently

pytestmark = pytest.mark.skipif(not uv_bin(NEW).exists(), reason="uv missing: run `make tools`")


class World:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.server = IndexServer(build_manifest_registry(root / "build")).start()
        self.tmp = root / "uv-tmp"
        self.references: dict[tuple[str, str], str] = {}

    def project(self, shape: ManifestShape, name: str, lock: str | None = None) -> Path:
        directory = self.root / shape.name / name
        if directory.exists():
            shutil.rmtree(directory)
        shape.write(directory, self.server.index_url("man"))
        if lock is not None:
            (directory / shape.lock).write_text(lock)
        return directory

    def reference(self, shape: ManifestShape, uv: str = NEW) -> str:
        if (shape.name, uv) not in self.references:
            project = self.project(shape, f"reference-{uv}")
            run_uv(uv, list(shape.lock_args), project, self.tmp)
            self.references[shape.name, uv] = (project / shape.lock).read_text()
        return self.references[shape.name, uv]

    def lockfix(self, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        return run_lockfix(*args, cwd=cwd, cache=self.root / "cache")

    def installed(self, shape: ManifestShape, project: Path) -> set[str]:
        """What ``uv sync --frozen`` installs from the project's lock."""
        script = shape.lock_args[2:]
        venv = project / ".venv"
        if venv.exists():
            shutil.rmtree(venv)
        selections = shape.selections if not script else ((),)
        found: set[str] = set()
        for selection in selections:
            args = ["sync", "--frozen", *selection]
            if script:
                args += ["--script", *script]
            env = {"UV_PROJECT_ENVIRONMENT": str(venv)} if not script else {}
            out = run_uv(NEW, args, project, self.tmp, **env)
            python = venv if not script else _script_python(out.stderr)
            listed = run_uv(
                NEW, ["pip", "list", "--format", "json", "--python", str(python)], project, self.tmp
            ).stdout
            found |= {f"{e['name']}=={e['version']}" for e in json.loads(listed)}
        return found


def _script_python(stderr: str) -> str:
    """The script environment ``uv sync --script`` reports creating or using."""
    match = re.search(r"environment at: (\S+)", stderr)
    assert match, stderr
    return match[1]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    world = World(tmp_path_factory.mktemp("manifest"))
    yield world
    world.server.stop()


@pytest.mark.parametrize("uv", [NEW, OLD])
@pytest.mark.parametrize("name", sorted(MANIFEST_SHAPES))
def test_the_lock_uv_writes_is_right(world: World, name: str, uv: str) -> None:
    if not uv_bin(uv).exists():
        pytest.skip(f"uv {uv} missing: run `make tools`")
    shape = MANIFEST_SHAPES[name]
    reference = world.reference(shape, uv)
    project = world.project(shape, f"noop-{uv}", reference)
    check = world.lockfix("check", shape.lock, "--format", "json", cwd=project)
    assert check.returncode == 0, check.stdout + check.stderr
    report = json.loads(check.stdout)
    assert report["findings"] == [] and report["warnings"] == [], report
    # a package locked with no file (overridden away everywhere) is unverifiable, not failed
    assert report["verified"] + len(report["unverified"]) == reference.count(
        "source = { registry ="
    )
    assert [u["status"] for u in report["unverified"]] == ["dynamic"] * (name == "overrides")
    repair = world.lockfix("repair", shape.lock, cwd=project)
    assert repair.returncode == 0, repair.stderr
    assert (project / shape.lock).read_text() == reference


def _drop_block(text: str, name: str) -> str:
    """Take a package's block out, leaving every reference to it (a root names it)."""
    start, end = _block_span(text, name)
    return (text[:start] + text[end:]).rstrip("\n") + "\n"


@dataclass(frozen=True)
class Damage:
    id: str
    shape: str
    corrupt: Callable[[str], str]
    what: str


DAMAGES = [
    Damage(
        "overrides-socks",
        "overrides",
        lambda t: remove_package(t, "socksx"),
        "a package only an override's own extra reaches, removed",
    ),
    Damage(
        "overrides-fast",
        "overrides",
        lambda t: remove_package(t, "fastx"),
        "a package an override's extra reaches where the original asked for no extra",
    ),
    Damage(
        "virtual-root-root",
        "virtual-root",
        lambda t: _drop_block(t, "lintx"),
        "a package a root dependency group names, removed",
    ),
    Damage(
        "virtual-root-transitive",
        "virtual-root",
        lambda t: remove_package(t, "pluggyx"),
        "a package only a root group's dependency reaches, removed",
    ),
    Damage(
        "span-cutoff",
        "exclude-newer-span",
        lambda t: remove_package(t, "freshx"),
        "a package removed from a lock with a relative exclude-newer (back at 1.0)",
    ),
    Damage(
        "span-package-cutoff",
        "exclude-newer-span",
        lambda t: remove_package(t, "freshy"),
        "a package with a cutoff of its own removed (back at 2.0)",
    ),
    Damage(
        "script-transitive",
        "script",
        lambda t: remove_package(t, "hpackx"),
        "a package only a script requirement's extra reaches, removed",
    ),
]


@pytest.mark.parametrize("damage", DAMAGES, ids=lambda d: d.id)
def test_a_package_taken_out_comes_back(world: World, damage: Damage) -> None:
    shape = MANIFEST_SHAPES[damage.shape]
    reference = world.reference(shape)
    broken = damage.corrupt(reference)
    assert broken != reference
    project = world.project(shape, damage.id, broken)

    check = world.lockfix("check", shape.lock, "--format", "json", cwd=project)
    assert check.returncode == 1, check.stdout + check.stderr
    kinds = {f["kind"] for f in json.loads(check.stdout)["findings"]}
    assert "missing-package" in kinds and "orphan" not in kinds, damage.what

    repair = world.lockfix("repair", shape.lock, cwd=project)
    assert repair.returncode == 0, repair.stdout + repair.stderr
    repaired = (project / shape.lock).read_text()
    assert semantic_differences(repaired, reference) == [], damage.what

    accepted = run_uv(NEW, [*shape.lock_args, "--check"], project, world.tmp, check=False)
    assert accepted.returncode == 0, accepted.stderr

    reference_project = world.project(shape, damage.id + "-ref", reference)
    assert world.installed(shape, project) == world.installed(shape, reference_project)
