"""lockfix as others run it: a pre-commit hook, the GitHub Action's script, an installed tool.

Each test makes a git repository holding the lock uv 0.10.9 broke against the loopback
fixture index, and runs the real outside tool (pre-commit from PyPI, bash, uv) on it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures.uvrun import base_python, run_uv, uv_bin
from lockfix import __version__
from tests.scenarios.test_torch_e2e import NEW, OLD, Case

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent

pytestmark = pytest.mark.skipif(
    not (uv_bin(OLD).exists() and uv_bin(NEW).exists()),
    reason="real uv binaries missing: run `make tools`",
)

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.invalid",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.invalid",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}


def _clean_environment() -> dict[str, str]:
    """os.environ without the variables that point git at another repository (a test run
    from a git hook, or with a temporary index, must not touch that repository)."""
    leaks = ("GIT_DIR", "GIT_INDEX_FILE", "GIT_WORK_TREE", "GIT_OBJECT_DIRECTORY")
    return {k: v for k, v in os.environ.items() if k not in leaks}


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Case]:
    case = Case("torch_groups", tmp_path_factory.mktemp("integrations"))
    yield case
    case.server.stop()


def sh(*args: str | Path, cwd: Path, env: dict[str, str] | None = None, check: bool = True):  # type: ignore[no-untyped-def]
    result = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        env={**_clean_environment(), **GIT_ENV, **(env or {})},
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"{args} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    return result


def git_project(case: Case, name: str) -> Path:
    """A git repository with the project and its broken lock committed."""
    project = case.project(name, case.broken)
    sh("git", "init", "-q", "-b", "main", cwd=project)
    sh("git", "add", "pyproject.toml", "uv.lock", cwd=project)
    sh("git", "commit", "-q", "-m", "broken lock", cwd=project)
    return project


def snapshot_of_this_checkout(target: Path) -> str:
    """This working tree's lockfix as a one-commit git repository; returns the commit."""
    target.mkdir()
    for name in ("src", "pyproject.toml", "README.md", ".pre-commit-hooks.yaml"):
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, target / name)
    sh("git", "init", "-q", "-b", "main", cwd=target)
    sh("git", "add", ".", cwd=target)
    sh("git", "commit", "-q", "-m", "snapshot", cwd=target)
    return sh("git", "rev-parse", "HEAD", cwd=target).stdout.strip()


def test_pre_commit_hook_repairs_then_passes(case: Case, tmp_path: Path) -> None:
    pre_commit = VENV_BIN / "pre-commit"
    if not pre_commit.exists():
        pytest.skip("pre-commit is not installed: pip install -e '.[test]'")
    hooks = tmp_path / "hooks"
    rev = snapshot_of_this_checkout(hooks)
    project = git_project(case, "pre-commit")
    cache = case.root / "cache"
    (project / ".pre-commit-config.yaml").write_text(
        f"""repos:
  - repo: {hooks}
    rev: {rev}
    hooks:
      - id: lockfix
        args: [--cache-dir, {cache}]
      - id: lockfix-check
        args: [--cache-dir, {cache}]
"""
    )
    env = {"PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home")}
    sh(pre_commit, "install", cwd=project, env=env)
    sh("git", "add", ".pre-commit-config.yaml", cwd=project)
    sh("git", "rm", "-q", "--cached", "uv.lock", cwd=project)
    sh("git", "commit", "-q", "--no-verify", "-m", "hooks, no lock", cwd=project)
    sh("git", "add", "uv.lock", cwd=project)

    first = sh("git", "commit", "-m", "add the lock", cwd=project, env=env, check=False)
    assert first.returncode != 0, first.stdout + first.stderr
    output = first.stdout + first.stderr  # git shows the hooks' output on stderr
    assert "lockfix repair" in output and "Failed" in output, output
    assert "files were modified by this hook" in output, output
    repaired = (project / "uv.lock").read_text()
    assert repaired != case.broken

    sh("git", "add", "uv.lock", cwd=project)
    second = sh("git", "commit", "-m", "add the lock", cwd=project, env=env, check=False)
    assert second.returncode == 0, second.stdout + second.stderr
    output = second.stdout + second.stderr
    assert "lockfix repair" in output and "lockfix check" in output, output
    assert "Failed" not in output, output
    committed = sh("git", "show", "HEAD:uv.lock", cwd=project).stdout
    assert committed == repaired


def action(project: Path, mode: str, **env: str) -> subprocess.CompletedProcess[str]:
    return sh(
        "bash",
        REPO / "scripts" / "action.sh",
        cwd=project,
        check=False,
        env={
            "INPUT_MODE": mode,
            "LOCKFIX_SKIP_INSTALL": "1",
            "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}",
            **env,
        },
    )


def test_action_script_checks_then_commits_the_repair(case: Case, tmp_path: Path) -> None:
    project = git_project(case, "action")
    before = sh("git", "rev-parse", "HEAD", cwd=project).stdout.strip()
    cache = {"LOCKFIX_CACHE_DIR": str(case.root / "cache")}
    outputs = tmp_path / "github-output"

    check = action(project, "check", **cache)
    assert check.returncode == 1, check.stderr
    assert "::error file=uv.lock,line=" in check.stdout

    repair = action(project, "repair", LOCKFIX_NO_PUSH="1", GITHUB_OUTPUT=str(outputs), **cache)
    assert repair.returncode == 0, repair.stdout + repair.stderr
    assert "not pushing" in repair.stdout
    parent = sh("git", "log", "-1", "--format=%P", cwd=project).stdout.strip()
    assert sh("git", "log", "-1", "--format=%s", cwd=project).stdout.strip() == (
        "lockfix: repair uv.lock"
    )
    assert parent == before
    changed = sh("git", "diff", "--name-only", before, "HEAD", cwd=project).stdout.split()
    assert changed == ["uv.lock"]
    assert sh("git", "status", "--porcelain", cwd=project).stdout == ""
    assert outputs.read_text() == "changed=true\n"
    committed = sh("git", "show", "HEAD:uv.lock", cwd=project).stdout
    assert committed != case.broken

    assert action(project, "check", **cache).returncode == 0
    again = action(project, "repair", LOCKFIX_NO_PUSH="1", **cache)
    assert again.returncode == 0 and "nothing to commit" in again.stdout
    assert sh("git", "log", "-1", "--format=%P", cwd=project).stdout.strip() == before

    bad = action(project, "fix", **cache)
    assert bad.returncode == 2 and "mode must be" in bad.stderr


def test_action_script_pushes_to_the_branch(case: Case, tmp_path: Path) -> None:
    project = git_project(case, "action-push")
    origin = tmp_path / "origin.git"
    sh("git", "clone", "-q", "--bare", project, origin, cwd=tmp_path)
    sh("git", "remote", "add", "origin", origin, cwd=project)
    cache = {"LOCKFIX_CACHE_DIR": str(case.root / "cache")}
    result = action(project, "repair", GITHUB_REF_NAME="main", **cache)
    assert result.returncode == 0, result.stdout + result.stderr
    pushed = sh("git", "--git-dir", origin, "log", "-1", "--format=%s", "main", cwd=tmp_path)
    assert pushed.stdout.strip() == "lockfix: repair uv.lock"
    head = sh("git", "rev-parse", "HEAD", cwd=project).stdout
    assert sh("git", "--git-dir", origin, "rev-parse", "main", cwd=tmp_path).stdout == head


def test_wheel_installs_as_a_uv_tool(case: Case, tmp_path: Path) -> None:
    wheelhouse = tmp_path / "wheelhouse"
    # lockfix's wheel and its dependencies' wheels, from pip's configured indexes
    sh(sys.executable, "-m", "pip", "wheel", "--quiet", "-w", wheelhouse, REPO, cwd=tmp_path)
    assert list(wheelhouse.glob(f"lockfix-{__version__}-py3-none-any.whl"))
    tools, bin_dir = tmp_path / "tools", tmp_path / "bin"
    run_uv(
        NEW,
        ["tool", "install", "--no-index", "--find-links", str(wheelhouse), "lockfix"],
        tmp_path,
        tmp_path / "uv",
        UV_TOOL_DIR=str(tools),
        UV_TOOL_BIN_DIR=str(bin_dir),
        UV_PYTHON=base_python(),
    )
    executable = bin_dir / "lockfix"
    version = sh(executable, "--version", cwd=tmp_path)
    assert __version__ in version.stdout
    cache = ["--cache-dir", str(case.root / "cache")]
    broken = case.project("tool-broken", case.broken)
    assert sh(executable, "check", *cache, cwd=broken, check=False).returncode == 1
    reference = case.project("tool-reference", case.reference)
    result = sh(executable, "check", *cache, cwd=reference, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    # the installed tool runs from its own environment, not from this checkout: Python's
    # verbose import log names the file each module is loaded from
    loaded = sh(executable, "--version", cwd=tmp_path, env={"PYTHONVERBOSE": "1"}).stderr
    sources = set(re.findall(r"(/\S+/lockfix/__init__\.py)\b", loaded))
    assert sources, loaded[-2000:]
    for source in sources:
        assert Path(source).resolve().is_relative_to((tools / "lockfix").resolve()), source
        assert not Path(source).resolve().is_relative_to(REPO), source


@pytest.mark.slow  # ~60 s: pip builds lockfix and installs its dependencies
def test_action_script_installs_lockfix_into_a_private_venv(case: Case, tmp_path: Path) -> None:
    project = git_project(case, "action-install")
    runner_temp = tmp_path / "runner-temp"
    runner_temp.mkdir()
    result = action(
        project,
        "check",
        LOCKFIX_SKIP_INSTALL="0",
        GITHUB_ACTION_PATH=str(REPO),
        RUNNER_TEMP=str(runner_temp),
        LOCKFIX_CACHE_DIR=str(case.root / "cache"),
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "::error file=uv.lock,line=" in result.stdout
    installed = runner_temp / "lockfix-action-venv" / "bin" / "lockfix"
    assert installed.exists()
    assert __version__ in sh(installed, "--version", cwd=tmp_path).stdout
