"""A clean verdict is reused while the pages it rests on stay fresh, and only then."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures.lock_scenarios import SHAPES, build_registry
from fixtures.server import IndexServer
from fixtures.uvrun import run_uv, uv_bin

pytestmark = pytest.mark.skipif(not uv_bin("0.13.9").exists(), reason="uv missing")


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("verdicts")
    built = build_registry(root / "build")
    with IndexServer(built) as server:
        directory = SHAPES["platform"].write(
            root / "project", server.index_url("reg"), server.flat_url("reg"), built.root
        )
        run_uv("0.13.9", ["lock"], directory, root / "uv-tmp")
        yield directory, server


def check(directory: Path, cache: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lockfix", "check", "uv.lock", "--cache-dir", str(cache)],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
    )


def test_a_clean_verdict_is_reused_without_any_request(project, tmp_path: Path) -> None:
    directory, server = project
    first = check(directory, tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    server.reset_log()
    second = check(directory, tmp_path)
    assert second.returncode == 0 and second.stdout == first.stdout
    assert server.requests == []
    assert list((tmp_path / "verdicts-v1").rglob("*.json"))


def test_a_changed_lock_is_checked_anew(project, tmp_path: Path) -> None:
    directory, _ = project
    assert check(directory, tmp_path).returncode == 0
    lock = directory / "uv.lock"
    original = lock.read_text()
    try:
        lock.write_text(original.replace('{ name = "gamma" }', '{ name = "epsilon" }', 1))
        assert check(directory, tmp_path).returncode == 1
    finally:
        lock.write_text(original)


def test_pages_without_freshness_and_a_zero_ttl_keep_nothing(project, tmp_path: Path) -> None:
    directory, server = project
    assert check(directory, tmp_path, LOCKFIX_PAGE_TTL="0").returncode == 0
    assert not list((tmp_path / "verdicts-v1").rglob("*.json"))
    server.reset_log()
    assert check(directory, tmp_path, LOCKFIX_PAGE_TTL="0").returncode == 0
    assert server.requests, "with a zero TTL every run asks the index again"
