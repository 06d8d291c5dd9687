"""The carried-over verdict on real data (opt-in: ``pytest -m network``): the benchmark's
real PyPI lock, with packages re-pinned to their previous releases by real uv 0.13.9 one
at a time, each changed lock checked both ways (carried over from the clean check of the
lock before it, and in full); both must say the same."""

from __future__ import annotations

import json
import shutil
import urllib.request
from pathlib import Path

import pytest
from packaging.version import InvalidVersion, Version

from fixtures.uvrun import run_uv, uv_bin
from lockfix.lock.lockfile import parse_lock
from tests.test_carryover import WITHOUT_PLANNING, check

REAL = Path(__file__).parents[2] / "fixtures" / "bench" / "real"
PYPI = "https://pypi.org/simple"
PICKS = 20  # packages re-pinned, spread over the lock's names
# uv_env closes every route but loopback; this test resolves against PyPI
OPEN = {k: "" for k in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")}
OPEN.update({k.lower(): "" for k in OPEN})
# every page the check reads stays fresh while the test runs
ENV = {"LOCKFIX_PAGE_TTL": "86400"}

pytestmark = [
    pytest.mark.network,
    pytest.mark.skipif(not uv_bin("0.13.9").exists(), reason="uv missing"),
]


def previous_release(name: str, version: str) -> str | None:
    """The newest final release of ``name`` on PyPI older than ``version`` with files."""
    with urllib.request.urlopen(f"https://pypi.org/pypi/{name}/json", timeout=60) as reply:
        releases = json.load(reply)["releases"]
    older = []
    for text, files in releases.items():
        try:
            parsed = Version(text)
        except InvalidVersion:
            continue
        usable = files and not all(f.get("yanked") for f in files)
        if usable and not parsed.is_prerelease and parsed < Version(version):
            older.append(parsed)
    return str(max(older)) if older else None


@pytest.mark.timeout(1800)
def test_real_upgrades_carry_over_only_where_the_full_check_agrees(tmp_path: Path) -> None:
    directory = tmp_path / "project"
    directory.mkdir()
    for name in ("pyproject.toml", "uv.lock"):
        shutil.copy2(REAL / name, directory / name)
    original = (REAL / "uv.lock").read_text()
    cache = tmp_path / "cache"
    first = check(directory, cache, **ENV)
    assert first.returncode == 0, first.stdout + first.stderr
    lock = parse_lock(original)
    single = sorted(
        p.name
        for p in lock.packages
        if p.source.is_registry and p.source.location == PYPI and len(lock.named(p.name)) == 1
    )
    picks = single[:: max(1, len(single) // PICKS)][:PICKS]
    outcomes: dict[str, str] = {}
    for name in picks:
        (package,) = lock.named(name)
        assert package.version is not None
        older = previous_release(name, package.version)
        if older is None:
            outcomes[name] = "no older release"
            continue
        (directory / "uv.lock").write_text(original)
        upgrade = ["lock", "--upgrade-package", f"{name}=={older}"]
        done = run_uv("0.13.9", upgrade, directory, tmp_path / "uv", check=False, **OPEN)
        if done.returncode != 0:
            outcomes[name] = f"uv could not pin {older}"
            continue
        carrying, full = tmp_path / f"carrying-{name}", tmp_path / f"full-{name}"
        shutil.copytree(cache, carrying)
        shutil.copytree(cache, full)
        shutil.rmtree(full / "summaries-v1")
        planless = check(directory, carrying, runner=("-c", WITHOUT_PLANNING), **ENV)
        carried = planless.returncode != 99
        result = planless if carried else check(directory, carrying, **ENV)
        whole = check(directory, full, **ENV)
        assert (result.returncode, result.stdout) == (whole.returncode, whole.stdout), name
        outcomes[name] = f"{older}: {'carried over' if carried else 'checked in full'}"
    print(json.dumps(outcomes, indent=2))
    compared = [o for o in outcomes.values() if o.endswith(("carried over", "checked in full"))]
    assert len(compared) >= PICKS // 2, outcomes
    assert any(o.endswith("carried over") for o in compared), outcomes
