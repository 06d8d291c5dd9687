"""A cold check split over two processes finds, writes and counts exactly what one process does.

``LOCKFIX_PROCESSES=2`` forces the second process (:mod:`lockfix._shard`, a
``python -m lockfix._worker``) on these small locks; ``=1`` forbids it. Real uv-written locks
from the loopback index, real subprocesses.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures.server import Fault, IndexServer
from fixtures.uvrun import run_uv, uv_bin
from tests.helpers import interruptible, run_lockfix
from tests.scenarios.test_torch_e2e import NEW, OLD, Case

pytestmark = pytest.mark.skipif(
    not (uv_bin(OLD).exists() and uv_bin(NEW).exists()),
    reason="real uv binaries missing: run `make tools`",
)

SHA256 = re.compile(r'(hash = "sha256:)([0-9a-f]{64})"')


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Case]:
    case = Case("torch_groups", tmp_path_factory.mktemp("shard"))
    yield case
    case.server.stop()


def lockfix(
    *args: str, cwd: Path, processes: int, cache: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return run_lockfix(
        *args, cwd=cwd, cache=cache, env={"LOCKFIX_PROCESSES": str(processes), **(env or {})}
    )


def hooked(directory: Path, code: str) -> dict[str, str]:
    """Environment whose Python runs ``code`` at start-up (sitecustomize)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "sitecustomize.py").write_text(code)
    path = os.pathsep.join(p for p in (str(directory), os.environ.get("PYTHONPATH", "")) if p)
    return {"PYTHONPATH": path}


def _sorted(document: dict) -> dict:
    return {
        key: sorted(value, key=json.dumps) if isinstance(value, list) else value
        for key, value in document.items()
    }


def tampered(lock_text: str) -> str:
    """Every third locked file's sha256 changed: artifact findings on both sides of a split."""
    count = 0

    def change(match: re.Match[str]) -> str:
        nonlocal count
        count += 1
        digest = match.group(2)
        if count % 3:
            return match.group(0)
        return f'{match.group(1)}{digest[::-1]}"'

    return SHA256.sub(change, lock_text)


@pytest.mark.parametrize("lock", ["broken", "tampered"])
def test_two_processes_report_what_one_does(case: Case, tmp_path: Path, lock: str) -> None:
    text = case.broken if lock == "broken" else tampered(case.reference)
    results = {}
    for processes in (1, 2):
        project = case.project(f"check-{lock}-{processes}", text)
        case.server.reset_log()
        result = lockfix(
            "check", "--format", "json", "-v", cwd=project, processes=processes,
            cache=tmp_path / f"cache-{processes}",
        )  # fmt: skip
        assert result.returncode == 1, result.stderr
        shared = "(in 2 processes)" in result.stderr
        assert shared is (processes == 2), result.stderr
        document = json.loads(result.stdout)
        assert document["findings"]
        counted = re.search(r"(\d+) request\(s\) to the indexes", result.stderr)
        assert counted is not None
        results[processes] = (_sorted(document), int(counted.group(1)), len(case.server.requests))
    (one, one_counted, one_served), (two, two_counted, two_served) = results[1], results[2]
    assert two == one
    assert one_counted == one_served and two_counted == two_served == one_served


def test_two_processes_repair_what_one_does(case: Case, tmp_path: Path) -> None:
    text = tampered(case.broken)
    written = {}
    for processes in (1, 2):
        project = case.project(f"repair-{processes}", text)
        result = lockfix(
            "repair", "--accept-index-artifacts", cwd=project, processes=processes,
            cache=tmp_path / f"cache-{processes}",
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        written[processes] = (project / "uv.lock").read_text()
    assert written[2] == written[1] != text


# The second process (and only it) dies as it starts.
DYING_WORKER = "import os, sys\nif 'lockfix._worker' in sys.orig_argv:\n    os._exit(3)\n"


def test_a_failing_second_process_is_done_here(case: Case, tmp_path: Path) -> None:
    env = hooked(tmp_path / "hook", DYING_WORKER)
    project = case.project("failing", case.broken)
    failed = lockfix(
        "check", "--format", "json", "-v", cwd=project, processes=2, cache=tmp_path / "a",
        env=env,
    )  # fmt: skip
    single = lockfix("check", "--format", "json", cwd=project, processes=1, cache=tmp_path / "b")
    assert failed.returncode == single.returncode == 1, failed.stderr
    assert "(in 2 processes)" not in failed.stderr
    assert _sorted(json.loads(failed.stdout)) == _sorted(json.loads(single.stdout))


def _children(parent: int) -> dict[int, bytes]:
    """Live child processes of ``parent`` running lockfix, and their command lines."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        state, ppid = stat.rpartition(")")[2].split()[:2]
        if int(ppid) != parent or state == "Z":
            continue
        with contextlib.suppress(OSError):  # python -m lockfix._worker
            command = (entry / "cmdline").read_bytes()
            if b"lockfix" in command:
                found[int(entry.name)] = command
    return found


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc")
def test_an_interrupted_check_leaves_no_second_process(case: Case, tmp_path: Path) -> None:
    # The first request is answered after 0.5 s, every later one after 5 s: once the index
    # has answered, the check is surely still at work when the interrupt comes, however
    # slowly this test gets to send it (a finished check would exit 1, not 130).
    # The hook is this test's own: a request a process of an earlier test left behind (its
    # answer delayed) may still be logged after reset_log, but never passes this hook.
    answered = itertools.count()
    asked = threading.Event()

    def delay(method: str, path: str) -> Fault:
        asked.set()
        return Fault(delay=0.5 if next(answered) == 0 else 5)

    case.server.add_fault(delay)
    case.server.reset_log()
    try:
        project = case.project("interrupted", case.broken)
        process = subprocess.Popen(
            interruptible(
                [sys.executable, "-m", "lockfix", "check", "--cache-dir", str(tmp_path / "c")]
            ),
            cwd=project,
            env={**os.environ, "LOCKFIX_PROCESSES": "2"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 30
        children: dict[int, bytes] = {}
        while not children and time.monotonic() < deadline:
            time.sleep(0.05)
            children = _children(process.pid)
        assert children, "the second process never started"
        assert all(b"lockfix._worker" in c for c in children.values())
        # at work: the index has answered this check a request (the first, after 0.5 s);
        # the rest are pending for 5 s more
        while not asked.is_set() and process.poll() is None:
            time.sleep(0.05)
        time.sleep(0.6)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
        # Wherever the interrupt lands once lockfix has started: "Aborted!" and 130.
        assert process.returncode == 130, (stdout[-2000:], stderr)
        assert stderr.decode().splitlines()[-1] == "Aborted!", stderr
        deadline = time.monotonic() + 10
        while any(map(_alive, children)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(map(_alive, children))
    finally:
        case.server.clear_faults()


def _synthetic_project(seed: int, root: Path) -> tuple[Path, IndexServer]:
    """A uv-locked project of 500 packages (a lock big enough for a second process) on its
    own loopback index."""
    from benchmarks import synthetic
    from fixtures.builder import build_scenario

    scenario, roots = synthetic.synthetic_scenario(500, seed)
    server = IndexServer(build_scenario(scenario, root / "index"), port=0).start()
    project = root / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        synthetic.pyproject_text(server.index_url(synthetic.INDEX), roots)
    )
    run_uv(NEW, ["lock"], project, root)
    return project, server


def test_a_second_process_only_for_a_cold_cache_or_many_new_blocks(tmp_path: Path) -> None:
    from lockfix._shard import EARLY_LOCK_SIZE

    cache = tmp_path / "cache"
    started = tmp_path / "started.log"
    record = f"import sys\nopen({str(started)!r}, 'a').write(repr(sys.orig_argv) + '\\n')\n"
    # as measured (no forcing either way); each Python started notes its command line
    env = {"LOCKFIX_PROCESSES": "", **hooked(tmp_path / "hook", record)}
    first, first_server = _synthetic_project(0, tmp_path / "a")
    second, second_server = _synthetic_project(1, tmp_path / "b")
    try:
        assert len((first / "uv.lock").read_text()) >= EARLY_LOCK_SIZE

        def workers(project: Path) -> tuple[int, bool]:
            """Second processes started by a check of ``project``, and whether one helped."""
            shutil.rmtree(cache / "verdicts-v1", ignore_errors=True)
            started.unlink(missing_ok=True)
            result = run_lockfix("check", "-v", cwd=project, cache=cache, env=env)
            assert result.returncode == 0, result.stderr
            count = started.read_text().count("lockfix._worker")
            return count, "(in 2 processes)" in result.stderr

        assert workers(first) == (1, True)  # an unused cache: started before parsing
        assert workers(first) == (0, False)  # every block known: none started
        assert workers(second) == (1, True)  # 500 blocks new to the cache: after parsing
    finally:
        first_server.stop()
        second_server.stop()


def test_the_next_check_is_answered_from_what_both_processes_stored(
    case: Case, tmp_path: Path
) -> None:
    project = case.project("stored", case.reference)
    cache = tmp_path / "cache"
    first = lockfix("check", "--format", "json", "-v", cwd=project, processes=2, cache=cache)
    assert first.returncode == 0, first.stderr
    assert "(in 2 processes)" in first.stderr
    shutil.rmtree(cache / "verdicts-v1", ignore_errors=True)
    # Without the metadata cache, only stored facts spare a package's metadata requests.
    (cache / "metadata-v2.sqlite").unlink()
    case.server.reset_log()
    second = lockfix("check", "--format", "json", cwd=project, processes=1, cache=cache)
    assert second.returncode == 0 and second.stdout == first.stdout
    assert [r.path for r in case.server.requests] == []


def _registry_lock(packages: dict[tuple[str, str], int]) -> str:
    """A lock of registry packages (name, version) → number of wheels, on one index."""
    blocks = ['version = 1\nrevision = 3\nrequires-python = ">=3.11"\n']
    for (name, version), count in packages.items():
        wheels = ",\n".join(
            f'    {{ url = "http://127.0.0.1:1/files/{name}-{version}-py3-none-any{i}.whl", '
            f'hash = "sha256:{(name + version + str(i)).encode().hex()[:64]:0<64}" }}'
            for i in range(count)
        )
        blocks.append(
            f'[[package]]\nname = "{name}"\nversion = "{version}"\n'
            f'source = {{ registry = "http://127.0.0.1:1/simple" }}\nwheels = [\n{wheels},\n]\n'
        )
    return "\n".join(blocks)


def test_the_versions_of_a_name_on_one_index_go_to_one_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from lockfix.engine import _shard_split
    from lockfix.lock.lockfile import parse_lock

    monkeypatch.setenv("LOCKFIX_PROCESSES", "2")
    # the two heaviest packages share a page: split by load alone, they would part
    sizes = {("big", "1.0"): 9, ("big", "2.0"): 9, **{(f"small{i}", "1.0"): 1 for i in range(12)}}
    registry = parse_lock(_registry_lock(sizes)).packages
    assert len(registry) == len(sizes)
    theirs = {p.id for p in _shard_split(registry, None)}
    assert theirs and len(theirs) < len(registry)
    assert len({p.id in theirs for p in registry if p.name == "big"}) == 1


def test_a_package_whose_locked_file_disagrees_is_not_called_dynamic(
    case: Case, tmp_path: Path
) -> None:
    """A package left unverified because a locked file disagrees with its index is reported
    with that reason's status, not as an sdist whose metadata needs a build."""
    project = case.project("artifact-status", tampered(case.reference))
    result = lockfix("check", "--format", "json", cwd=project, processes=1, cache=tmp_path / "json")
    assert result.returncode == 1, result.stderr
    document = json.loads(result.stdout)
    disagree = {f["package"] for f in document["findings"] if f["kind"].startswith("artifact-")}
    statuses = {(u["package"], u["status"]) for u in document["unverified"]}
    assert disagree and {name for name, _ in statuses} == disagree
    assert {status for _, status in statuses} == {"artifact"}
    text = lockfix("check", cwd=project, processes=1, cache=tmp_path / "text")
    summary = text.stdout.splitlines()[-1]
    assert "unread (a locked file disagrees with its index)" in summary
    assert "dynamic" not in summary
