"""Peak memory of a cold check counting both of its processes:
``python -m benchmarks.memory [--size 5000] [--reps 2]``.

``benchmarks.run`` reports the peak RSS of the biggest process (``ru_maxrss``); a cold
check of a big lock runs two (see ``lockfix._shard``). This samples ``/proc`` every 50 ms
and prints the peak of their summed RSS, which counts the copy-on-write pages a fork
shares with its parent twice, so it is an upper bound. Linux only.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.run import SyntheticTarget, log


def _rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _family(root: int) -> set[int]:
    """``root`` and its children."""
    found = {root}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                parent = int(stat.read().rpartition(")")[2].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if parent == root:
            found.add(int(entry))
    return found


def sample(command: list[str], cwd: Path, env: dict[str, str]) -> tuple[int, float, float]:
    """(exit code, peak summed RSS MB, peak RSS MB of the biggest process)."""
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL)
    total = biggest = 0
    while process.poll() is None:
        sizes = [_rss_kb(pid) for pid in _family(process.pid)]
        total, biggest = max(total, sum(sizes)), max(biggest, max(sizes))
        time.sleep(0.05)
    return process.returncode, total / 1024, biggest / 1024


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.memory", description=__doc__)
    ap.add_argument("--size", type=int, default=5000, help="synthetic lock size (5000)")
    ap.add_argument("--reps", type=int, default=2, help="cold checks (2)")
    args = ap.parse_args(argv)
    if not Path("/proc/self/status").exists():
        log("needs /proc (Linux)")
        return 2
    target = SyntheticTarget(args.size)
    try:
        for _ in range(args.reps):
            cache = Path(tempfile.mkdtemp(prefix="lockfix-memory-"))
            try:
                command = [sys.executable, "-m", "lockfix", "check", "uv.lock", "-q"]
                code, total, biggest = sample(
                    [*command, "--cache-dir", str(cache)],
                    target.project,
                    {**os.environ, **target.lockfix_env()},
                )
            finally:
                shutil.rmtree(cache, ignore_errors=True)
            print(
                f"{target.name} cold: exit {code}, both processes {total:.0f} MB at peak, "
                f"biggest {biggest:.0f} MB"
            )
    finally:
        target.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
