"""A clean verdict is reused while the pages it rests on stay fresh, and only then."""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures.lock_scenarios import SHAPES, build_registry
from fixtures.server import IndexServer
from fixtures.uvrun import run_uv, uv_bin
from lockfix.facts import FACTS_DATABASE

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


def lockfix(
    directory: Path, cache: Path, *args: str, python_flags: tuple[str, ...] = (), **env: str
) -> subprocess.CompletedProcess[str]:
    command = ["-m", "lockfix", *args, "--cache-dir", str(cache)]
    return subprocess.run(
        [sys.executable, *python_flags, *command],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
    )


def check(
    directory: Path, cache: Path, *args: str, python_flags: tuple[str, ...] = (), **env: str
) -> subprocess.CompletedProcess[str]:
    return lockfix(directory, cache, "check", "uv.lock", *args, python_flags=python_flags, **env)


def copy_project(source: Path, target: Path) -> Path:
    target.mkdir(parents=True)
    for name in ("uv.lock", "pyproject.toml"):
        shutil.copy2(source / name, target / name)
    return target


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


def test_a_zero_ttl_revalidates_pages_an_earlier_run_kept(project, tmp_path: Path) -> None:
    """Pages stored by a run with the default TTL are fresh for 600 s; LOCKFIX_PAGE_TTL=0
    still asks the index for each, and never answers from a stored verdict."""
    directory, server = project
    assert check(directory, tmp_path).returncode == 0
    server.reset_log()
    assert check(directory, tmp_path).returncode == 0
    assert server.requests == []  # the default run's verdict and pages are fresh
    for _ in range(2):  # the second run shows the first stored no verdict either
        server.reset_log()
        again = check(directory, tmp_path, LOCKFIX_PAGE_TTL="0")
        assert again.returncode == 0, again.stderr
        assert server.page_requests("reg"), "LOCKFIX_PAGE_TTL=0 must revalidate every page"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("LOCKFIX_PAGE_TTL", "nan"),
        ("LOCKFIX_PAGE_TTL", "-5"),
        ("LOCKFIX_PAGE_TTL", "inf"),
        ("LOCKFIX_PAGE_TTL", "soon"),
        ("LOCKFIX_PROCESSES", "7"),
    ],
)
def test_a_wrong_lockfix_value_is_an_input_error(
    project, tmp_path: Path, variable: str, value: str
) -> None:
    directory, server = project
    lock = copy_project(directory, tmp_path / "project") / "uv.lock"
    before = lock.read_bytes()
    assert check(lock.parent, tmp_path / "cache").returncode == 0  # a verdict is stored
    server.reset_log()
    for args in (("check", "uv.lock"), ("check", "uv.lock", "--format", "json"), ("repair",)):
        bad = lockfix(lock.parent, tmp_path / "cache", *args, **{variable: value})
        assert bad.returncode == 2, (args, bad.stdout, bad.stderr)
        assert bad.stderr.count("\n") == 1 and f"{variable} must be" in bad.stderr, bad.stderr
        assert f"{value!r}" in bad.stderr and "Traceback" not in bad.stderr
        assert bad.stdout == ""
    assert server.requests == []
    assert lock.read_bytes() == before


def test_a_verdict_names_the_lock_it_was_made_for(project, tmp_path: Path) -> None:
    """Two projects with the same lock and project files: each report names its own lock,
    whether the verdict is looked up by the entry point or by the command line."""
    directory, _ = project
    for name in ("projA", "projB"):
        copy_project(directory, tmp_path / name)
    cache = tmp_path / "cache"
    paths = ["projA/uv.lock", "projB/uv.lock"]
    both = lockfix(tmp_path, cache, "check", "--format", "json", *paths)
    assert both.returncode == 0, both.stderr
    assert [report["path"] for report in json.loads(both.stdout)] == paths
    for path in reversed(paths):  # each alone: answered from the verdicts above
        alone = lockfix(tmp_path, cache, "check", "--format", "json", path)
        assert alone.returncode == 0, alone.stderr
        assert json.loads(alone.stdout)["path"] == path
        github = lockfix(tmp_path, cache, "check", "--format", "github", path)
        assert github.returncode == 0, github.stderr


@pytest.mark.parametrize("form", [[], ["--single-wheel"]])  # entry point; command line
def test_a_verdict_is_keyed_by_the_lock_bytes(project, tmp_path: Path, form: list[str]) -> None:
    """A lock with CR line breaks only is not TOML: the verdict on its LF twin must not
    answer for it."""
    directory, _ = project
    lock = copy_project(directory, tmp_path / "project") / "uv.lock"
    lf = lock.read_bytes()
    assert b"\r" not in lf
    assert check(lock.parent, tmp_path / "cache", *form).returncode == 0
    lock.write_bytes(lf.replace(b"\n", b"\r"))
    cr = check(lock.parent, tmp_path / "cache", *form)
    assert cr.returncode == 2, cr.stdout + cr.stderr
    assert cr.stdout == ""


def _imported(stderr: str) -> set[str]:
    """Module names from ``python -X importtime`` output."""
    return {
        line.rsplit("|", 1)[1].strip()
        for line in stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }


@pytest.mark.parametrize("form", [[], ["--format", "json"], ["--format=github"], ["-q"]])
def test_a_reused_verdict_is_answered_before_the_command_line_loads(
    project, tmp_path: Path, form: list[str]
) -> None:
    directory, server = project
    first = check(directory, tmp_path, *form)
    assert first.returncode == 0, first.stderr
    server.reset_log()
    again = check(directory, tmp_path, *form, python_flags=("-X", "importtime"))
    assert again.returncode == 0, again.stderr
    assert again.stdout == first.stdout
    loaded = _imported(again.stderr)
    assert "lockfix.cli.verdicts" in loaded
    assert not loaded & {"click", "lockfix.cli.main", "lockfix.engine", "aiohttp"}, loaded
    assert server.requests == []


def test_other_forms_of_check_go_through_the_command_line(project, tmp_path: Path) -> None:
    directory, _ = project
    assert check(directory, tmp_path).returncode == 0
    for form in (["-v"], ["--single-wheel"], ["--concurrency", "0"], ["--no-cache"]):
        result = check(directory, tmp_path, *form, python_flags=("-X", "importtime"))
        assert "click" in _imported(result.stderr), form
    bad = check(directory, tmp_path, "--concurrency", "0")
    assert bad.returncode == 2 and "--concurrency" in bad.stderr


@pytest.mark.parametrize(
    "form",
    [[], ["--format", "json"], ["--format=github"], ["-q"], ["--offline"], ["-q", "--offline"]],
)
def test_a_plain_check_without_a_verdict_runs_without_click_as_click_would(
    project, tmp_path: Path, form: list[str]
) -> None:
    """Without a stored verdict, the plain forms are checked without loading click, and print
    what the command line (click) prints: --keep-going, which changes nothing in a check,
    sends the same check through click. With --offline and an empty cache, nothing can be
    verified: the error line and exit 3 must agree too."""
    directory, _ = project
    plain = check(directory, tmp_path / "plain", *form, python_flags=("-X", "importtime"))
    through_click = check(
        directory, tmp_path / "click", *form, "--keep-going", python_flags=("-X", "importtime")
    )
    assert "click" not in _imported(plain.stderr)
    assert "click" in _imported(through_click.stderr)
    assert plain.returncode == through_click.returncode == (3 if "--offline" in form else 0)
    assert plain.stdout == through_click.stdout

    def messages(stderr: str) -> list[str]:
        return [line for line in stderr.splitlines() if not line.startswith("import time:")]

    assert messages(plain.stderr) == messages(through_click.stderr)
    if "--offline" in form and "-q" not in form:
        assert "lockfix: could not verify uv.lock" in plain.stderr


def test_a_plain_check_of_a_missing_lock_fails_as_the_command_line_does(
    project, tmp_path: Path
) -> None:
    directory, _ = project
    plain = lockfix(directory, tmp_path, "check", "missing.lock")
    through_click = lockfix(directory, tmp_path, "check", "--keep-going", "missing.lock")
    assert plain.returncode == through_click.returncode == 2
    assert plain.stderr == through_click.stderr == "lockfix: error: missing.lock: no such file\n"
    assert plain.stdout == through_click.stdout == ""


def test_a_reused_verdict_still_warns_about_an_old_uv(project, tmp_path: Path) -> None:
    directory, _ = project
    cache = tmp_path / "cache"
    assert check(directory, cache).returncode == 0
    # One path, swapped between real uv releases: the remembered version must follow the binary.
    on_path = tmp_path / "bin" / "uv"
    on_path.parent.mkdir()
    path = f"{on_path.parent}{os.pathsep}{os.environ.get('PATH', '')}"
    for version, warned in (("0.10.9", True), ("0.13.9", False), ("0.10.9", True)):
        shutil.copy2(uv_bin(version), on_path)
        result = check(directory, cache, python_flags=("-X", "importtime"), PATH=path)
        assert result.returncode == 0
        assert "click" not in _imported(result.stderr)
        assert ("the uv on PATH is 0.10.9" in result.stderr) is warned, result.stderr
        quiet = check(directory, cache, "-q", PATH=path)
        assert quiet.returncode == 0 and quiet.stderr == ""
    memo = json.loads((cache / "uv-version-v1.json").read_text())
    assert memo[str(on_path.resolve())][1] == [0, 10, 9]


def test_a_full_check_skips_teardown_but_runs_atexit_and_flushes(project, tmp_path: Path) -> None:
    """The entry point ends a full run with os._exit (no object-by-object teardown): atexit
    handlers still run, output is complete, and the exit code is click's."""
    directory, _ = project
    hook = tmp_path / "hook"
    hook.mkdir()
    marker = tmp_path / "atexit-ran"
    (hook / "sitecustomize.py").write_text(
        "import atexit, pathlib\n"
        f"atexit.register(pathlib.Path({str(marker)!r}).write_text, 'yes')\n"
    )
    path = os.pathsep.join(p for p in (str(hook), os.environ.get("PYTHONPATH", "")) if p)
    done = check(directory, tmp_path / "cache", "--format", "json", PYTHONPATH=path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["findings"] == []
    assert marker.read_text() == "yes"
    bad = check(directory, tmp_path / "cache", "--format", "nope", PYTHONPATH=path)
    assert bad.returncode == 2 and "nope" in bad.stderr


def test_a_plain_check_looks_its_verdict_up_once_and_stores_it(
    project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The fast path's lookup that missed is not repeated by the check; the verdict the check
    stores is the one the next run finds under the same key."""
    from lockfix.cli import _entry
    from lockfix.cli.verdicts import VerdictCache

    directory, _ = project
    monkeypatch.chdir(directory)
    monkeypatch.setattr(sys, "argv", ["lockfix", "check", "uv.lock", "--cache-dir", str(tmp_path)])
    looked_up: list[str] = []
    real_get = VerdictCache.get

    def get(self: VerdictCache, key: str) -> object:
        looked_up.append(key)
        return real_get(self, key)

    monkeypatch.setattr(VerdictCache, "get", get)
    with pytest.raises(SystemExit) as done:
        _entry._main()
    assert done.value.code == 0
    first = capsys.readouterr().out
    assert len(looked_up) == 1
    assert _entry._main() == 0  # answered from the stored verdict
    assert capsys.readouterr().out == first
    assert looked_up == [looked_up[0], looked_up[0]]


def test_a_check_of_a_changed_lock_imports_no_dataclasses(project, tmp_path: Path) -> None:
    """The check of a lock that ``uv lock`` just changed (warm caches, stored package facts,
    no stored verdict) creates its classes without :mod:`dataclasses`, whose classes compile
    their methods when their module is imported."""
    source, _ = project
    directory = copy_project(source, tmp_path / "project")
    first = check(directory, tmp_path / "cache", "--format", "json")
    assert first.returncode == 0, first.stderr
    lock = directory / "uv.lock"
    lock.write_text(lock.read_text() + "# changed\n")
    for way, cache in _both_ways(tmp_path / "cache"):
        again = check(directory, cache, "--format", "json", python_flags=("-X", "importtime"))
        assert again.returncode == 0, again.stderr
        assert again.stdout == first.stdout
        loaded = _imported(again.stderr)
        assert "lockfix.engine" in loaded  # checked, not answered by a stored verdict
        assert "dataclasses" not in loaded, (way, sorted(loaded))


def _both_ways(cache: Path) -> list[tuple[str, Path]]:
    """``cache``, whose summary may carry the verdict over to a changed lock, and a copy
    without summaries, where the changed lock is checked in full."""
    full = cache.with_name(cache.name + "-full")
    shutil.copytree(cache, full)
    shutil.rmtree(full / "summaries-v1")
    return [("carried over", cache), ("in full", full)]


def _stored_facts(cache: Path) -> int:
    with sqlite3.connect(cache / FACTS_DATABASE) as db:
        return int(db.execute("SELECT count(*) FROM facts").fetchone()[0])


def test_a_changed_package_is_checked_without_the_wheel_tag_modules(
    project, tmp_path: Path
) -> None:
    """A package whose block changed is checked in full: the names and versions of its
    files are read without ``packaging.utils``, whose ``packaging.tags`` detects the running
    platform (``platform``, ``subprocess``, ``sysconfig``) on import. (Reading Requires-Dist
    lines imports ``packaging.requirements``, which imports both: the package changed here
    has none to read.)"""
    source, _ = project
    directory = copy_project(source, tmp_path / "project")
    cache = tmp_path / "cache"
    first = check(directory, cache, "--format", "json")
    assert first.returncode == 0, first.stderr
    stored = _stored_facts(cache)
    lock = directory / "uv.lock"
    text = lock.read_text()
    # gamma's wheel without its upload time: the same package, but no stored facts for it
    wheel = r'(name = "gamma"\n(?:.*\n)*?.*?), upload-time = "[^"]*"'
    changed = re.sub(wheel, r"\1", text, count=1)
    assert changed != text
    lock.write_text(changed)
    for way, copy in _both_ways(cache):
        again = check(directory, copy, "--format", "json", python_flags=("-X", "importtime"))
        assert again.returncode == 0, again.stderr
        assert again.stdout == first.stdout
        assert _stored_facts(copy) == stored + 1  # gamma checked in full, its facts stored
        loaded = _imported(again.stderr)
        assert "lockfix.engine" in loaded
        assert not loaded & {"packaging.utils", "packaging.tags", "platform"}, (way, loaded)
