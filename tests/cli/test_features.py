"""The user-facing command line on a real broken lock: formats, -v, explain, config, cache.

One loopback fixture index (``torch_groups``) and the lock uv 0.10.9 breaks against it.
"""

from __future__ import annotations

import json
import os
import pty
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures.builder import build_scenario
from fixtures.server import Fault, IndexServer
from fixtures.uvrun import run_uv, uv_bin
from lockfix.lock.lockfile import parse_lock
from tests.scenarios.test_torch_e2e import NEW, OLD, Case

pytestmark = pytest.mark.skipif(
    not (uv_bin(OLD).exists() and uv_bin(NEW).exists()),
    reason="real uv binaries missing: run `make tools`",
)


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Case]:
    case = Case("torch_groups", tmp_path_factory.mktemp("cli"))
    yield case
    case.server.stop()


def run(
    case: Case, *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lockfix", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "LOCKFIX_CACHE_DIR": str(case.root / "cache"), **(env or {})},
    )


def test_github_annotations_point_at_the_package_block(case: Case) -> None:
    project = case.project("github", case.broken)
    result = run(case, "check", "--format", "github", cwd=project)
    assert result.returncode == 1, result.stderr
    lines = case.broken.splitlines()
    annotations = [line for line in result.stdout.splitlines() if line.startswith("::")]
    assert annotations
    torch = [a for a in annotations if "title=lockfix missing-dependency::torch 2.7.1" in a]
    assert torch, result.stdout
    for annotation in annotations:
        match = re.match(
            r"::(error|warning) file=uv\.lock,line=(\d+),title=([^:]+)::(.+)", annotation
        )
        assert match, annotation
        line = int(match.group(2))
        assert lines[line - 1] == "[[package]]", annotation
        name = match.group(4).split(" ", 1)[0]
        assert lines[line] == f'name = "{name}"', annotation
    # torch from the pypi index, not the cpu one: its source line follows the version
    line = int(re.search(r"line=(\d+)", torch[0]).group(1))  # type: ignore[union-attr]
    assert "/pypi/simple" in "\n".join(lines[line : line + 4])
    assert result.stdout.splitlines()[-1].endswith("verified")


def test_json_schema_fields(case: Case) -> None:
    project = case.project("json", case.broken)
    result = run(case, "check", "--format", "json", cwd=project)
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert report["schema"] == 1
    assert report["path"] == "uv.lock"
    assert set(report) == {
        "schema", "path", "findings", "warnings", "unverified", "verified", "changed"
    }  # fmt: skip
    assert report["changed"] is None
    assert report["verified"] > 0
    for finding in report["findings"]:
        assert set(finding) == {
            "package", "version", "source", "kind", "message", "target", "requirement", "fix",
            "harm",
        }  # fmt: skip
        assert finding["harm"] in ("less", "more", None)
    repaired = run(case, "repair", "--format", "json", "--dry-run", cwd=project)
    assert repaired.returncode == 0, repaired.stderr
    assert json.loads(repaired.stdout)["changed"] is True
    assert (project / "uv.lock").read_text() == case.broken


def test_verbose_prints_each_package_verdict(case: Case) -> None:
    project = case.project("verbose", case.broken)
    result = run(case, "check", "-v", cwd=project)
    assert result.returncode == 1
    assert re.search(
        r"^lockfix: wrong: torch 2\.7\.1 \(127\.0\.0\.1:\d+/pypi\)$", result.stderr, re.M
    )
    assert re.search(r"^lockfix: verified: filelock ", result.stderr, re.M)
    assert "request(s) to the indexes" in result.stderr
    assert "lockfix: verified" not in result.stdout


def test_explain_torch_shows_both_indexes_and_the_findings(case: Case) -> None:
    project = case.project("explain", case.broken)
    result = run(case, "explain", "torch==2.7.1", cwd=project)
    assert result.returncode == 1, result.stderr
    sections = re.split(r"^(?=torch 2\.7\.1 \()", result.stdout, flags=re.M)
    cpu = next(s for s in sections if s and "/cpu)" in s.splitlines()[0])
    pypi = next(s for s in sections if s and "/pypi)" in s.splitlines()[0])
    assert "nvidia-cudnn-cu12==9.5.1.17" not in cpu and "findings: none" in cpu
    assert "nvidia-cudnn-cu12==9.5.1.17; platform_system" in pypi
    assert "missing-dependency: torch 2.7.1: missing dependency nvidia-cudnn-cu12" in pypi
    assert "the lock says:" in pypi and "[main] filelock" in pypi

    as_json = json.loads(run(case, "explain", "torch", "--format", "json", cwd=project).stdout)
    by_index = {
        entry["source"].rsplit("/", 2)[-2]: entry
        for entry in as_json
        if entry["version"] == "2.7.1"
    }
    assert set(by_index) == {"cpu", "pypi"}
    declared = [r for g in by_index["pypi"]["declared"] for r in g["requires_dist"]]
    assert any(r.startswith("nvidia-cudnn-cu12") for r in declared)
    assert not any(f["target"] == "nvidia-cudnn-cu12" for f in by_index["cpu"]["findings"])

    missing = run(case, "explain", "no-such-thing", cwd=project)
    assert missing.returncode == 2
    assert "no package no-such-thing in the lock" in missing.stderr


def _add_tool_lockfix(project: Path, text: str) -> None:
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + "\n[tool.lockfix]\n" + text)


def test_skip_packages_from_pyproject(case: Case) -> None:
    project = case.project("skip", case.broken)
    wrong = {"torch", "triton", "nvidia-cudnn-cu12", "nvidia-cufft-cu12"}
    wrong |= {"nvidia-cusolver-cu12", "nvidia-cusparse-cu12"}
    _add_tool_lockfix(project, f"skip-packages = {sorted(wrong)!r}\nconcurrency = 4\n")
    result = run(case, "check", "--format", "json", cwd=project)
    report = json.loads(result.stdout)
    assert report["findings"] == [], report["findings"]
    skipped = {u["package"] for u in report["unverified"] if u["status"] == "skipped"}
    assert skipped == wrong
    assert result.returncode == 0, result.stderr
    text = run(case, "check", cwd=project)
    assert text.returncode == 0
    assert re.search(r", \d+ skipped$", text.stdout.strip())


def test_skip_indexes_and_bad_settings(case: Case) -> None:
    project = case.project("skip-index", case.broken)
    _add_tool_lockfix(project, f'skip-indexes = ["{case.server.url}/pypi/simple/"]\n')
    report = json.loads(run(case, "check", "--format", "json", cwd=project).stdout)
    assert report["findings"] == [] and report["unverified"]
    assert {u["source"] for u in report["unverified"]} == {f"{case.server.url}/pypi/simple"}

    bad = run(case, "check", cwd=project, env={"LOCKFIX_CONCURRENCY": "many"})
    assert bad.returncode == 2 and "LOCKFIX_CONCURRENCY" in bad.stderr
    # the command line wins over a bad environment value
    good = run(case, "check", "--concurrency", "2", cwd=project, env={"LOCKFIX_CONCURRENCY": "x"})
    assert good.returncode == 0, good.stderr

    broken = case.project("bad-config", case.broken)
    _add_tool_lockfix(broken, "concurrency = 0\n")
    result = run(case, "check", cwd=broken)
    assert result.returncode == 2
    assert "[tool.lockfix] concurrency" in result.stderr and "Traceback" not in result.stderr

    not_bool = case.project("bad-per-wheel", case.broken)
    _add_tool_lockfix(not_bool, 'per-wheel = "yes"\nsurprise = 1\n')
    result = run(case, "check", cwd=not_bool)
    assert result.returncode == 2 and "per-wheel must be true or false" in result.stderr


def test_unknown_keys_are_warned_about(case: Case) -> None:
    project = case.project("unknown-key", case.reference)
    _add_tool_lockfix(project, "per-wheel = false\nsurprise = 1\n")
    result = run(case, "check", cwd=project)
    assert result.returncode == 0, result.stderr
    assert "unknown [tool.lockfix] key(s) ignored: surprise" in result.stderr


def test_exit_non_zero_on_fix_and_several_paths(case: Case) -> None:
    first = case.project("fix-a", case.broken)
    second = case.project("fix-b", case.reference)
    fixed = run(case, "repair", "--exit-non-zero-on-fix", "-q", "uv.lock", cwd=first)
    assert fixed.returncode == 1, fixed.stderr
    assert (first / "uv.lock").read_text() != case.broken
    again = run(case, "repair", "--exit-non-zero-on-fix", "uv.lock", cwd=first)
    assert again.returncode == 0, again.stderr

    broken = case.project("multi", case.broken)
    both = run(
        case, "check", "--format", "json", str(broken / "uv.lock"), str(second / "uv.lock"),
        cwd=case.root,
    )  # fmt: skip
    assert both.returncode == 1
    reports = json.loads(both.stdout)
    assert [bool(r["findings"]) for r in reports] == [True, False]
    missing = run(case, "check", str(second / "uv.lock"), "nope.lock", cwd=case.root)
    assert missing.returncode == 2 and "nope.lock: no such file" in missing.stderr
    annotated = run(case, "check", "--format", "github", "nope.lock", cwd=case.root)
    assert annotated.returncode == 2
    assert annotated.stdout == "::error file=nope.lock,title=lockfix::nope.lock: no such file\n"


def test_old_uv_on_path_is_warned_about(case: Case) -> None:
    project = case.project("old-uv", case.reference)
    for version, warned in ((OLD, True), (NEW, False)):
        path = f"{uv_bin(version).parent}{os.pathsep}{os.environ.get('PATH', '')}"
        result = run(case, "check", cwd=project, env={"PATH": path})
        assert result.returncode == 0, result.stderr
        assert ("the uv on PATH is 0.10.9" in result.stderr) is warned, result.stderr
        quiet = run(case, "check", "-q", cwd=project, env={"PATH": path})
        assert quiet.stderr == ""


def test_cache_info_and_clean(case: Case, tmp_path: Path) -> None:
    project = case.project("cache", case.reference)
    cache = tmp_path / "cache"
    env = {"LOCKFIX_CACHE_DIR": str(cache)}
    assert run(case, "check", cwd=project, env=env).returncode == 0
    info = run(case, "cache", "info", cwd=project, env=env)
    assert info.returncode == 0, info.stderr
    assert f"cache: {cache}" in info.stdout
    entries = int(re.search(r"metadata entries: (\d+)", info.stdout).group(1))  # type: ignore[union-attr]
    assert entries >= len(parse_lock(case.reference).packages) - 1
    # files of the user's that merely start like lockfix's entries are left alone
    theirs = ["keep-me.txt", "metadata-vault.txt", "pages-visited", "uv-version-vintage.json"]
    for name in theirs:
        (cache / name).write_text("not lockfix's")
    (cache / "verdicts-vote").mkdir()
    (cache / "verdicts-vote" / "ballot.txt").write_text("not lockfix's")
    # lockfix's own, from this layout and earlier ones
    (cache / "metadata-v1" / "ab").mkdir(parents=True)
    (cache / "metadata-v1" / "ab" / ("ab" * 32)).write_text("{}")
    for name in ("pages-v1.db", "pages-v1.db-wal", "metadata-v2.damaged", "uv-version-v1.json"):
        (cache / name).write_bytes(b"old")
    clean = run(case, "cache", "clean", "--cache-dir", str(cache), cwd=project)
    assert clean.returncode == 0, clean.stderr
    assert sorted(p.name for p in cache.iterdir()) == sorted([*theirs, "verdicts-vote"])
    assert (cache / "verdicts-vote" / "ballot.txt").read_text() == "not lockfix's"
    for name in theirs:
        (cache / name).unlink()
    shutil.rmtree(cache / "verdicts-vote")
    run(case, "cache", "clean", cwd=project, env=env)
    assert not cache.exists()
    empty = run(case, "cache", "info", cwd=project, env=env)
    assert "does not exist" in empty.stdout


def test_offline_answers_from_the_cache_only(case: Case, tmp_path: Path) -> None:
    """--offline and LOCKFIX_OFFLINE=1: a cold check makes no request at all and cannot
    verify (exit 3); once the cache holds every page, even stale ones, they answer it."""
    project = case.project("offline", case.broken)
    cache = {"LOCKFIX_CACHE_DIR": str(tmp_path / "cache")}
    forms = ((("--offline",), {}), ((), {"LOCKFIX_OFFLINE": "1"}))
    for args, env in forms:
        case.server.reset_log()
        cold = run(case, "check", *args, cwd=project, env={**cache, **env})
        assert cold.returncode == 3, cold.stdout + cold.stderr
        assert "not in the cache" in cold.stdout
        assert case.server.requests == []
    # pages stored with a zero TTL are stale from the start
    warm = run(case, "check", cwd=project, env={**cache, "LOCKFIX_PAGE_TTL": "0"})
    assert warm.returncode == 1, warm.stderr
    for args, env in forms:
        case.server.reset_log()
        offline = run(case, "check", *args, cwd=project, env={**cache, **env})
        assert offline.returncode == 1, offline.stderr
        assert offline.stdout == warm.stdout
        assert case.server.requests == []
    online = run(case, "check", cwd=project, env=cache)
    assert online.returncode == 1 and case.server.requests  # stale: asked again


def test_repair_output_writes_elsewhere(case: Case) -> None:
    fixed = case.project("output-in-place", case.broken)
    assert run(case, "repair", cwd=fixed).returncode == 0
    repaired = (fixed / "uv.lock").read_text()
    assert repaired != case.broken
    project = case.project("output", case.broken)
    result = run(case, "repair", "-o", "out/fixed.lock", cwd=project)
    assert result.returncode == 2, result.stderr  # the folder out/ does not exist
    assert "does not exist" in result.stderr
    assert not (project / "out").exists()
    (project / "out").mkdir()
    result = run(case, "repair", "-o", "out/fixed.lock", cwd=project)
    assert result.returncode == 0, result.stderr
    assert "wrote out/fixed.lock" in result.stderr
    assert (project / "out" / "fixed.lock").read_text() == repaired
    assert (project / "uv.lock").read_text() == case.broken  # the input is left alone
    # a lock with nothing to repair is still written where -o says
    clean = case.project("output-clean", case.reference)
    copied = run(case, "repair", "--output", "copy.lock", cwd=clean)
    assert copied.returncode == 0, copied.stderr
    assert (clean / "copy.lock").read_text() == case.reference
    dry = run(case, "repair", "--dry-run", "-o", "dry.lock", cwd=project)
    assert dry.returncode == 0 and not (project / "dry.lock").exists()
    several = run(case, "repair", "-o", "x.lock", "uv.lock", "uv.lock", cwd=project)
    assert several.returncode == 2 and "single lock" in several.stderr


def on_terminal(case: Case, *args: str, cwd: Path, stream: str) -> tuple[int, str]:
    """Run lockfix with ``stream`` (stdout or stderr) on a pseudo-terminal; the other is
    discarded. Returns the exit code and what reached the terminal."""
    controller, terminal = pty.openpty()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "lockfix", *args],
            cwd=cwd,
            stdout=terminal if stream == "stdout" else subprocess.DEVNULL,
            stderr=terminal if stream == "stderr" else subprocess.DEVNULL,
            env={**os.environ, "LOCKFIX_CACHE_DIR": str(case.root / "cache")},
        )
        os.close(terminal)
        chunks = []
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        code = process.wait(timeout=300)
    finally:
        os.close(controller)
    return code, b"".join(chunks).decode()


def test_diff_is_coloured_only_on_a_terminal(case: Case) -> None:
    project = case.project("diff", case.broken)
    piped = run(case, "repair", "--diff", "--dry-run", cwd=project)
    assert piped.returncode == 0, piped.stderr
    assert "+++ b/uv.lock" in piped.stdout and "\x1b[" not in piped.stdout

    code, coloured = on_terminal(
        case, "repair", "--diff", "--dry-run", "-q", cwd=project, stream="stdout"
    )
    assert code == 0
    assert "\x1b[32m+" in coloured and "\x1b[31m-" in coloured
    assert (project / "uv.lock").read_text() == case.broken


def test_progress_line_only_on_a_terminal(case: Case) -> None:
    project = case.project("progress", case.reference)
    args = ("check", "--no-cache", "--concurrency", "2")
    case.server.add_fault(lambda _method, path: Fault(delay=0.2) if "/simple/" in path else None)
    try:
        code, shown = on_terminal(case, *args, cwd=project, stream="stderr")
        piped = run(case, *args, cwd=project)
    finally:
        case.server.clear_faults()
    assert code == 0
    assert re.search(r"\rlockfix: \[\d+/\d+\] packages checked", shown), repr(shown)
    assert shown.endswith("\r\x1b[K"), repr(shown[-40:])
    assert piped.returncode == 0 and "packages checked" not in piped.stderr


@pytest.mark.parametrize(
    ("variable", "content", "says"),
    [
        ("SSL_CERT_FILE", None, "No such file or directory"),
        ("SSL_CERT_FILE", "not a certificate\n", "no certificate"),
        ("SSL_CLIENT_CERT", None, "No such file or directory"),
        ("SSL_CLIENT_CERT", "not a certificate\n", "PEM"),
    ],
)
def test_unusable_tls_settings_are_one_line_and_need_the_network_first(
    case: Case, tmp_path: Path, variable: str, content: str | None, says: str
) -> None:
    project = case.project(f"tls-{variable}-{content is None}", case.broken)
    before = (project / "uv.lock").read_bytes()
    target = tmp_path / "certs.pem"
    if content is not None:
        target.write_text(content)
    bad = {variable: str(target), "LOCKFIX_CACHE_DIR": str(tmp_path / "cache")}
    for command in ("check", "repair"):
        result = run(case, command, cwd=project, env=bad)
        assert result.returncode == 2, result.stderr
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
        assert f"{variable}={target}" in result.stderr and says in result.stderr, result.stderr
        assert (project / "uv.lock").read_bytes() == before
    # once the caches hold everything (fresh pages), a check needs no TLS context at all
    filled = run(case, "check", cwd=project, env={"LOCKFIX_CACHE_DIR": bad["LOCKFIX_CACHE_DIR"]})
    assert filled.returncode == 1, filled.stderr
    cached = run(case, "check", cwd=project, env=bad)
    assert cached.returncode == 1 and cached.stdout == filled.stdout, cached.stderr


OSC = "\x1b]0;pwned\x07"  # sets a terminal's title; any escape sequence would do


def test_escape_sequences_from_an_index_are_shown_escaped(tmp_path: Path) -> None:
    """An index whose metadata declares a requirement with an OSC sequence in a marker
    string: text, github, -v and explain output show it escaped, never raw."""
    scenario = {
        "indexes": [
            {
                "name": "reg",
                "packages": [
                    {
                        "name": "host",
                        "version": "1.0",
                        "requires-dist": [f'guest; platform_machine == "{OSC}"'],
                    },
                    {"name": "guest", "version": "1.0"},
                ],
            }
        ]
    }
    built = build_scenario(scenario, tmp_path / "build")
    with IndexServer(built) as server:
        project = tmp_path / "project"
        project.mkdir()
        (project / "pyproject.toml").write_text(
            '[project]\nname = "app"\nversion = "0.1.0"\nrequires-python = ">=3.11"\n'
            'dependencies = ["host"]\n\n[tool.uv]\npackage = false\n\n'
            f'[[tool.uv.index]]\nname = "reg"\nurl = "{server.index_url("reg")}"\n'
            "default = true\n"
        )
        run_uv(NEW, ["lock"], project, tmp_path / "uv")
        lock = project / "uv.lock"
        text = lock.read_text()
        edge = re.search(r'\n    \{ name = "guest", marker = "[^\n]*" \},', text)
        assert edge, text
        lock.write_text(text.replace(edge.group(), ""))  # the edge the index declares: gone
        cache = {"LOCKFIX_CACHE_DIR": str(tmp_path / "cache")}
        for args in (["check"], ["check", "--format", "github"], ["check", "-v"]):
            result = subprocess.run(
                [sys.executable, "-m", "lockfix", *args],
                cwd=project,
                capture_output=True,
                text=True,
                timeout=300,
                env={**os.environ, **cache},
            )
            assert result.returncode == 1, result.stderr
            assert "missing dependency guest" in result.stdout
            assert "\\x1b]0;pwned\\x07" in result.stdout, result.stdout
            assert "\x1b" not in result.stdout + result.stderr
            assert "\x07" not in result.stdout + result.stderr
        explained = subprocess.run(
            [sys.executable, "-m", "lockfix", "explain", "host"],
            cwd=project,
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, **cache},
        )
        assert explained.returncode == 1, explained.stderr
        assert "\\x1b]0;pwned\\x07" in explained.stdout, explained.stdout
        assert "\x1b" not in explained.stdout and "\x07" not in explained.stdout
