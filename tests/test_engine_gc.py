"""A check runs with Python's cyclic garbage collector paused, and gives it back as it was."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures.uvrun import uv_bin
from lockfix.engine import analyze_lock
from lockfix.lock.lockfile import parse_lock
from lockfix.settings import Settings
from tests.scenarios.test_torch_e2e import NEW, OLD, Case

pytestmark = pytest.mark.skipif(
    not (uv_bin(OLD).exists() and uv_bin(NEW).exists()),
    reason="real uv binaries missing: run `make tools`",
)


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Case]:
    case = Case("torch_groups", tmp_path_factory.mktemp("gc"))
    yield case
    case.server.stop()


@pytest.mark.parametrize("enabled", [True, False])
def test_check_pauses_the_collector(case: Case, tmp_path: Path, enabled: bool) -> None:
    project = case.project(f"gc-{enabled}", case.reference)
    seen: list[bool] = []
    settings = Settings(cache_dir=tmp_path / "cache")
    (gc.enable if enabled else gc.disable)()
    try:
        analysis = analyze_lock(
            parse_lock(case.reference),
            project,
            settings,
            progress=lambda _done, _total: seen.append(gc.isenabled()),
        )
        after = gc.isenabled()
    finally:
        gc.enable()
    assert analysis.plan.failed == set() and seen and not any(seen)
    assert after is enabled


def test_the_command_line_runs_without_the_cyclic_collector(case: Case, tmp_path: Path) -> None:
    import subprocess
    import sys

    project = case.project("cli-gc", case.reference)
    code = (
        "import gc, sys\n"
        "import lockfix.cli.checking as checking\n"
        "run = checking.check_paths\n"
        "def check_paths(*args):\n"
        "    print('collector on:', gc.isenabled(), file=sys.stderr, flush=True)\n"
        "    return run(*args)\n"
        "checking.check_paths = check_paths\n"
        f"sys.argv = ['lockfix', 'check', 'uv.lock', '--cache-dir', {str(tmp_path)!r}]\n"
        "from lockfix.cli._entry import main\n"
        "main()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=project, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "collector on: False" in result.stderr
