"""Interrupted and concurrent writes.

50 repairs of the saved broken lock against a slow loopback index (every request delayed),
each killed by SIGINT, SIGTERM or SIGKILL: at a random moment, or mid-write, when its temp
file is complete and about to be renamed over the lock (the repair stops itself there, see
``PAUSE_HOOK``, so the kill lands there on a machine under any load). Afterwards the lock
is byte for byte the old or the new text. SIGINT/SIGTERM never leave a temp file (they are
held back during the write: mid-write, the new text is written); SIGKILL mid-write leaves
the old text and a temp file, which the next run deletes. The lock is padded with a 4 MB
header comment (kept verbatim by the writer) so that a write is substantial.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from fixtures.server import Fault
from tests.helpers import interruptible

from .conftest import Index, Run, record

PAD = "# " + "padding " * 120 + "\n"
PADDING = PAD * (4_000_000 // len(PAD))
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGKILL)
WORKERS = 2  # two projects side by side, 25 runs each


def temps(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".uv.lock.lockfix-"))


# A sitecustomize for the repairs that are killed mid-write: just before lockfix renames its
# temp file (TEMP_MARK in the name) over the lock, the process stops itself (SIGSTOP); the
# test, blocked in waitpid until then, sends its signal and then SIGCONT.
PAUSE_HOOK = """
import os, signal

def _pausing(original):
    def call(source, *args, **kwargs):
        if ".lockfix-" in os.fspath(source):
            os.kill(os.getpid(), signal.SIGSTOP)
        return original(source, *args, **kwargs)
    return call

os.replace = _pausing(os.replace)
os.rename = _pausing(os.rename)
"""


def start(index: Index, project: Path, hook: Path | None = None) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    if hook is not None:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(hook), env.get("PYTHONPATH")) if p)
    return subprocess.Popen(
        interruptible([sys.executable, "-m", "lockfix", "repair", "uv.lock", "-q", "--no-cache"]),
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )


def stopped_before_rename(process: subprocess.Popen[bytes]) -> bool:
    """Wait until ``process`` stops itself before the rename (True) or ends (False)."""
    _, status = os.waitpid(process.pid, os.WUNTRACED)
    if os.WIFSTOPPED(status):
        return True
    process.returncode = os.waitstatus_to_exitcode(status)
    return False


@pytest.mark.timeout(900)
def test_kill_anywhere_leaves_old_or_new(index: Index, faults: None, tmp_path: Path) -> None:
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(PAUSE_HOOK)
    old = PADDING + index.broken
    project = index.project(old, name="interrupt")
    path = project / "uv.lock"

    started = time.monotonic()
    done = index.run("repair", "uv.lock", "-q", cwd=project)
    assert done.returncode == 0, done.output
    new = path.read_text()
    assert new == PADDING + index.repaired
    fast = time.monotonic() - started

    rng = random.Random(7)
    index.server.add_fault(lambda method, p: Fault(delay=rng.uniform(0.0, 0.01)))
    path.write_text(old)
    started = time.monotonic()
    done = index.run("repair", "uv.lock", "-q", "--no-cache", cwd=project)
    slow = time.monotonic() - started
    assert done.returncode == 0 and path.read_text() == new, done.output

    outcomes: dict[str, int] = {}
    tracebacks = 0

    def worker(number: int) -> None:
        nonlocal tracebacks
        folder = index.project(old, name=f"interrupt-{number}")
        lock = folder / "uv.lock"
        rng = random.Random(number)
        for run in range(number, 50, WORKERS):
            lock.write_text(old)
            sig = SIGNALS[run % 3]
            stale = set(temps(folder))  # a kill -9 before may have left one
            hit = run % 2 == 0  # mid-write: the temp file complete, not yet renamed
            process = start(index, folder, hook if hit else None)
            if hit:
                assert stopped_before_rename(process), f"run {run}: ended without writing"
                assert set(temps(folder)) - stale, f"run {run}: no temp file"
                process.send_signal(sig)
                os.kill(process.pid, signal.SIGCONT)
            else:
                time.sleep(rng.uniform(0.0, slow * 1.2))
                if process.poll() is None:
                    process.send_signal(sig)
            _, stderr = process.communicate(timeout=120)
            if b"Traceback" in stderr:
                # only Python's own report of SIGINT landing before click took over (imports)
                assert sig == signal.SIGINT and b"KeyboardInterrupt" in stderr, stderr
                tracebacks += 1
            text = lock.read_bytes()
            assert text in (old.encode(), new.encode()), f"run {run}: {sig!r} left a mixed lock"
            left = temps(folder)
            if sig != signal.SIGKILL:
                assert set(left) <= stale, f"run {run}: {sig!r} left {left}"
            if hit:  # SIGINT/SIGTERM wait for the rename; SIGKILL cannot
                assert text == (old if sig == signal.SIGKILL else new).encode(), run
                assert (set(left) - stale != set()) == (sig == signal.SIGKILL), run
            key = f"{signal.Signals(sig).name} {'mid-write' if hit else 'random'} → "
            key += "new" if text == new.encode() else "old"
            key += " +temp" if left else ""
            outcomes[key] = outcomes.get(key, 0) + 1
        # whatever a kill -9 left, the next run removes it
        lock.write_text(old)
        done = index.run("repair", "uv.lock", "-q", cwd=folder)
        assert done.returncode == 0 and lock.read_text() == new and temps(folder) == []

    with ThreadPoolExecutor(WORKERS) as pool:
        for future in [pool.submit(worker, n) for n in range(WORKERS)]:
            future.result()
    assert sum(outcomes.values()) == 50
    mid = sum(n for k, n in outcomes.items() if "mid-write" in k)
    assert mid == 25, outcomes  # every even run was killed mid-write
    summary = ", ".join(f"{k}: {n}" for k, n in sorted(outcomes.items()))
    print(f"\n50 interrupted runs ({fast:.1f} s fast, {slow:.1f} s slow): {summary}")
    print(f"SIGINT during interpreter start-up (KeyboardInterrupt traceback): {tracebacks}")
    record(
        "write: 50 runs killed (INT/TERM/KILL, random or mid-write)",
        # tracebacks: Python's own KeyboardInterrupt report when SIGINT lands before
        # lockfix has started (interpreter start-up); lockfix itself prints none
        Run(("repair",), 0, "", "Traceback\n" * tracebacks, slow),
        f"old or new bytes only; no temp after INT/TERM; {mid} kills mid-write",
    )


def test_stale_temp_file_is_removed_by_the_next_run(index: Index) -> None:
    project = index.project(name="stale")
    stale = project / ".uv.lock.lockfix-deadbeef.tmp"
    stale.write_text("half a lock")
    result = index.run("check", "uv.lock", cwd=project)
    assert result.returncode == 1, result.output
    assert not stale.exists()


def test_concurrent_repairs_do_not_interleave(index: Index, faults: None) -> None:
    """Four repairs of one lock at once: each write holds the folder's flock and checks the
    file is still what it read, so the result is the repaired lock, whole."""
    project = index.project(name="concurrent")
    path = project / "uv.lock"
    index.server.add_fault(lambda method, p: Fault(delay=0.005))
    processes = [start(index, project) for _ in range(4)]
    results = [p.communicate(timeout=120) for p in processes]
    codes = [p.returncode for p in processes]
    for (_, stderr), code in zip(results, codes, strict=True):
        assert b"Traceback" not in stderr
        # 2: another run changed the file first and this one refused to overwrite it
        assert code in (0, 2), stderr
    assert 0 in codes
    assert path.read_text() == index.repaired
    assert temps(project) == []
    record(
        "write: 4 concurrent repairs",
        Run(("repair",), max(codes), "", "", 0.0),
        "changed correctly (exits " + ",".join(map(str, codes)) + ")",
    )


def test_signal_during_write_is_delivered_after_it(tmp_path: Path) -> None:
    """Directly: SIGTERM sent while write_atomically runs is held until the rename is done."""
    script = (
        "import os, signal, sys\n"
        "from pathlib import Path\n"
        "from lockfix import safeio\n"
        "real = safeio.replace_file\n"
        "def slow(target, data, mode):\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    real(target, data, mode)\n"
        "    sys.stdout.write('renamed\\n'); sys.stdout.flush()\n"
        "safeio.replace_file = slow\n"
        "safeio.write_atomically(Path(sys.argv[1]), 'new\\n')\n"
        "print('not reached')\n"
    )
    target = tmp_path / "uv.lock"
    target.write_text("old\n")
    result = subprocess.run(
        [sys.executable, "-c", script, str(target)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == -signal.SIGTERM
    assert result.stdout == "renamed\n"
    assert target.read_text() == "new\n"
    assert [p.name for p in tmp_path.iterdir()] == ["uv.lock"]
    os.sync()
