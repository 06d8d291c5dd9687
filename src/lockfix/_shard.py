"""A second process for a cold check's fetching: ``python -m lockfix._shard``.

A cold check is CPU-bound in the client (TLS, HTTP, zip and metadata parsing: ~1.5 ms of
CPU per request), and a lock of a few hundred packages takes thousands of requests when
its index serves no PEP 658 files. One Python process uses one core. With two cores,
:func:`lockfix.engine.analyze_lock` gives about half of the registry packages (by number
of locked files) to this worker, which verifies them with the very same code and caches
and sends back what it found. If the worker fails in any way, the parent verifies those
packages itself.

The parent starts the worker (:meth:`Worker.spawn`) before it has even parsed the lock, so
that the worker's start-up (a new interpreter, its imports) overlaps the parent's; the
worker imports the pipeline, then waits for its job. Protocol: the parent writes a
length-prefixed pickle of :class:`ShardJob` on stdin and keeps stdin open; the worker
answers with a pickle of :class:`ShardResult` on stdout. EOF on stdin before that (the
parent died, or needs no second process after all) ends the worker at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pickle
import struct
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    from lockfix.artifacts import ArtifactAudit
    from lockfix.engine import Options
    from lockfix.lockfile import PackageId
    from lockfix.metadata import CoreMetadata
    from lockfix.planner import Finding

_LENGTH = struct.Struct("!Q")


@dataclass(slots=True)
class ShardJob:
    lock_text: str
    lock_dir: str
    options: Options  # without its progress callback and worker
    packages: list[PackageId]


@dataclass(slots=True)
class ShardResult:
    metadata: dict[PackageId, CoreMetadata] = field(default_factory=dict)
    unverified: dict[PackageId, str] = field(default_factory=dict)
    failed: set[PackageId] = field(default_factory=set)
    warnings: list[Finding] = field(default_factory=list)
    audit: ArtifactAudit | None = None
    wheel_metadata: dict[PackageId, dict[str, CoreMetadata]] = field(default_factory=dict)
    stats: dict[str, int] = field(default_factory=dict)
    fresh_until: float = 0.0


# A lock this big (~50 packages' worth) is worth a second interpreter; smaller ones are not.
EARLY_LOCK_SIZE = 200_000


def setting() -> str:
    """``LOCKFIX_PROCESSES``: "1" never a second process, "2" always, else as measured."""
    return os.environ.get("LOCKFIX_PROCESSES", "").strip()


def wanted(lock_size: int, offline: bool) -> bool:
    """Whether to start a worker for a lock of ``lock_size`` characters."""
    if setting() in ("1", "2"):
        return setting() == "2"
    return not offline and (os.cpu_count() or 1) >= 2 and lock_size >= EARLY_LOCK_SIZE


class Worker:
    """A started ``python -m lockfix._shard``, waiting for its job."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process

    @classmethod
    def spawn(cls) -> Worker | None:
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "lockfix._shard"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
            )
        except OSError:
            return None
        return cls(process)

    def _exchange(self, job: ShardJob) -> ShardResult | None:
        data = pickle.dumps(job, protocol=pickle.HIGHEST_PROTOCOL)
        stdin, stdout = self.process.stdin, self.process.stdout
        assert stdin is not None and stdout is not None
        try:
            stdin.write(_LENGTH.pack(len(data)) + data)
            stdin.flush()  # and stays open: the worker ends if it closes
            output = stdout.read()
            code = self.process.wait()
        except (OSError, ValueError):  # ValueError: closed meanwhile (the run was cancelled)
            return None
        if code != 0:
            return None
        try:
            result = pickle.loads(output)
        except Exception:  # anything unreadable means: the parent verifies those packages
            return None
        return result if isinstance(result, ShardResult) else None

    async def run(self, job: ShardJob) -> ShardResult | None:
        """The worker's findings on ``job``, or None if it failed in any way."""
        return await asyncio.to_thread(self._exchange, job)

    def close(self) -> None:
        """End the worker (if still running) and release its pipes; safe to call twice."""
        if self.process.poll() is None:
            with contextlib.suppress(OSError):
                self.process.kill()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            self.process.wait(timeout=5)


async def _run(job: ShardJob) -> ShardResult:
    from lockfix.engine import verify_packages
    from lockfix.lockfile import parse_lock

    lock = parse_lock(job.lock_text)
    return await verify_packages(lock, Path(job.lock_dir), job.options, job.packages)


def _exit_when_orphaned(stdin: BinaryIO) -> None:
    # The parent holds our stdin open until it has our answer; EOF means it is gone.
    while stdin.read(65536):
        pass
    os._exit(1)


def main() -> None:
    import lockfix._wire
    import lockfix.engine  # noqa: F401

    stdin = sys.stdin.buffer
    header = stdin.read(_LENGTH.size)
    if len(header) != _LENGTH.size:
        sys.exit(1)
    (length,) = _LENGTH.unpack(header)
    job: ShardJob = pickle.loads(stdin.read(length))
    threading.Thread(target=_exit_when_orphaned, args=(stdin,), daemon=True).start()
    result = asyncio.run(_run(job))  # the caches are written when its client closes
    sys.stdout.buffer.write(pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))
    sys.stdout.buffer.flush()
    # Not a normal exit: the watcher thread is blocked reading stdin, which interpreter
    # shutdown would turn into a fatal error.
    os._exit(0)


if __name__ == "__main__":
    main()
