"""``python -m lockfix._worker``: the second process of a cold check (see :mod:`lockfix._shard`).

It imports the pipeline while the parent parses the lock, then reads its job on stdin,
verifies its share of the packages and writes what it found on stdout.
"""

from __future__ import annotations

import asyncio
import os
import pickle
import sys
import threading
from pathlib import Path
from typing import BinaryIO

from lockfix._shard import ShardJob, ShardResult, read_job
from lockfix.engine import verify_packages
from lockfix.lock.lockfile import parse_lock


async def _run(job: ShardJob) -> ShardResult:
    lock = parse_lock(job.lock_text)
    return await verify_packages(lock, Path(job.lock_dir), job.settings, job.packages)


def _exit_when_orphaned(stdin: BinaryIO) -> None:
    # The parent holds our stdin open until it has our answer; EOF means it is gone.
    while stdin.read(65536):
        pass
    os._exit(1)


def main() -> None:
    stdin = sys.stdin.buffer
    job = read_job(stdin)
    if job is None:
        sys.exit(1)
    threading.Thread(target=_exit_when_orphaned, args=(stdin,), daemon=True).start()
    result = asyncio.run(_run(job))  # the caches are written when its client closes
    sys.stdout.buffer.write(pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))
    sys.stdout.buffer.flush()
    # Not a normal exit: the watcher thread is blocked reading stdin, which interpreter
    # shutdown would turn into a fatal error.
    os._exit(0)


if __name__ == "__main__":
    main()
