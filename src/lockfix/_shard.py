"""A second process for a cold check's fetching.

A cold check is CPU-bound in the client (TLS, HTTP, zip and metadata parsing), and a lock of
a few hundred packages takes thousands of requests when its index serves no PEP 658 files.
One Python process uses one core. With two cores, :func:`lockfix.engine.start_shard` gives
about half of the registry packages (by requests to make) to a second process, which
verifies them with the very same code and caches and sends back what it found. If it fails
in any way, the parent verifies those packages itself.

The second process is ``python -m lockfix._worker`` (:class:`Worker`), the same on every
system. The command line starts it before it has even parsed the lock, so that the worker's
start-up overlaps the parent's; the worker imports the pipeline, then waits for its job.
Protocol: the parent writes a length-prefixed pickle of :class:`ShardJob` on stdin and keeps
stdin open; the worker answers with a pickle of :class:`ShardResult` on stdout. The worker
ends at once when the parent's end of its stdin closes (the parent died, or needs no second
process after all).

This module is the parent's side and the protocol; it imports nothing of the pipeline.
"""

from __future__ import annotations

import contextlib
import os
import struct
import sys
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    import subprocess
    from concurrent.futures import Future

    from lockfix.analysis.artifacts import ArtifactAudit
    from lockfix.analysis.evidence import Evidence
    from lockfix.analysis.findings import Finding
    from lockfix.dist.metadata import CoreMetadata
    from lockfix.lock.lockfile import PackageId
    from lockfix.settings import Settings

_LENGTH = struct.Struct("!Q")


class ShardJob:
    __slots__ = ("lock_dir", "lock_text", "packages", "settings")

    def __init__(
        self, lock_text: str, lock_dir: str, settings: Settings, packages: list[PackageId]
    ) -> None:
        self.lock_text = lock_text
        self.lock_dir = lock_dir
        self.settings = settings
        self.packages = packages


class ShardResult:
    __slots__ = ("audit", "evidence", "fresh_until", "stats", "warnings", "wheel_metadata")

    def __init__(
        self,
        evidence: Evidence | None = None,
        warnings: list[Finding] | None = None,
        audit: ArtifactAudit | None = None,
        wheel_metadata: dict[PackageId, dict[str, CoreMetadata]] | None = None,
        stats: dict[str, int] | None = None,
        fresh_until: float = 0.0,
    ) -> None:
        self.evidence = evidence
        self.warnings: list[Finding] = [] if warnings is None else warnings
        self.audit = audit
        self.wheel_metadata: dict[PackageId, dict[str, CoreMetadata]] = (
            {} if wheel_metadata is None else wheel_metadata
        )
        self.stats: dict[str, int] = {} if stats is None else stats
        self.fresh_until = fresh_until

    # as lockfix.engine.Analysis: asyncio.run reprs it
    def __repr__(self) -> str:
        known = len(self.evidence.metadata) if self.evidence is not None else 0
        return f"<ShardResult on {known} packages>"


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


def answer(data: bytes) -> ShardResult | None:
    """A second process's pickled result; None for anything unreadable (the parent then
    verifies those packages itself)."""
    import pickle

    try:
        result = pickle.loads(data)
    except Exception:
        return None
    return result if isinstance(result, ShardResult) else None


def read_job(stream: BinaryIO) -> ShardJob | None:
    """The job the parent sends (the worker's side); None if the parent sent none."""
    header = stream.read(_LENGTH.size)
    if len(header) != _LENGTH.size:
        return None
    (length,) = _LENGTH.unpack(header)
    import pickle

    job = pickle.loads(stream.read(length))
    return job if isinstance(job, ShardJob) else None


class Worker:
    """A started ``python -m lockfix._worker``, waiting for its job."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        from concurrent.futures import Future

        self.process = process
        self.packages: list[PackageId] = []
        self._answer: Future[ShardResult | None] = Future()

    @classmethod
    def spawn(cls) -> Worker | None:
        import subprocess  # only for a second process: a check that starts none never loads it

        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "lockfix._worker"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                # its own process group: a Ctrl-C at the terminal reaches the parent only,
                # which ends the worker (the worker also ends when its stdin closes)
                process_group=0,
            )
        except OSError:
            return None
        return cls(process)

    def _exchange(self, job: ShardJob) -> ShardResult | None:
        import pickle  # the protocol: only once a second process is at work

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
        return answer(output) if code == 0 else None

    def start(self, job: ShardJob) -> Worker:
        """Send ``job`` (the worker may still be importing: from a thread, as the pipe fills)."""
        self.packages = job.packages

        def exchange() -> None:
            try:
                self._answer.set_result(self._exchange(job))
            except BaseException:  # anything: the parent verifies those packages itself
                self._answer.set_result(None)

        import threading

        threading.Thread(target=exchange, daemon=True).start()
        return self

    async def result(self) -> ShardResult | None:
        import asyncio

        return await asyncio.wrap_future(self._answer)

    def close(self) -> None:
        """End the worker (if still running) and release its pipes; safe to call twice."""
        import subprocess

        if self.process.poll() is None:
            with contextlib.suppress(OSError):
                self.process.kill()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            self.process.wait(timeout=5)
