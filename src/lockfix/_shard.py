"""A second process for a cold check's fetching.

A cold check is CPU-bound in the client (TLS, HTTP, zip and metadata parsing), and a lock of
a few hundred packages takes thousands of requests when its index serves no PEP 658 files.
One Python process uses one core. With two cores, :func:`lockfix.engine.start_shard` gives
about half of the registry packages (by requests to make) to a second process, which
verifies them with the very same code and caches and sends back what it found. If it fails
in any way, the parent verifies those packages itself.

On Linux the second process is a fork of the parent taken once the lock is parsed and the
work split (:class:`Forked`): it starts on its share at once, with nothing to import or
parse. Elsewhere (no safe fork) the parent starts ``python -m lockfix._shard``
(:class:`Worker`) before it has even parsed the lock, so that the worker's start-up overlaps
the parent's; the worker imports the pipeline, then waits for its job. Protocol: the parent
writes a length-prefixed pickle of :class:`ShardJob` on stdin and keeps stdin open; the
worker answers with a pickle of :class:`ShardResult` on stdout. Either kind of second
process ends at once when the parent's end of its pipe closes (the parent died, or needs
no second process after all).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pickle
import signal
import struct
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol

if TYPE_CHECKING:
    from lockfix.analysis.artifacts import ArtifactAudit
    from lockfix.analysis.evidence import Evidence
    from lockfix.analysis.findings import Finding
    from lockfix.dist.metadata import CoreMetadata
    from lockfix.engine import Options
    from lockfix.lock.lockfile import PackageId

_LENGTH = struct.Struct("!Q")


@dataclass(slots=True)
class ShardJob:
    lock_text: str
    lock_dir: str
    options: Options  # without its progress callback and worker
    packages: list[PackageId]


@dataclass(slots=True, repr=False)  # as lockfix.engine.Analysis: asyncio.run reprs it
class ShardResult:
    evidence: Evidence | None = None
    warnings: list[Finding] = field(default_factory=list)
    audit: ArtifactAudit | None = None
    wheel_metadata: dict[PackageId, dict[str, CoreMetadata]] = field(default_factory=dict)
    stats: dict[str, int] = field(default_factory=dict)
    fresh_until: float = 0.0

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


def forks() -> bool:
    """Whether the second process is a fork (Linux) rather than a new interpreter: macOS
    system libraries are not fork-safe, Windows has no fork."""
    return sys.platform == "linux"


class Shard(Protocol):
    """A second process at work on ``packages``."""

    packages: list[PackageId]

    async def result(self) -> ShardResult | None:
        """Its findings, or None if it failed in any way."""
        ...

    def close(self) -> None:
        """End it (if still running) and release its pipes; safe to call twice."""
        ...


class Forked:
    """A fork of this process verifying ``packages`` (see :meth:`start`)."""

    def __init__(self, pid: int, results: int, alive: int, packages: list[PackageId]) -> None:
        self.pid, self.packages = pid, packages
        self._results: int | None = results  # read end: the child's pickled ShardResult
        self._alive: int | None = alive  # write end, held open: the child ends on EOF
        self._status: int | None = None

    @classmethod
    def start(cls, packages: list[PackageId], work: Callable[[], ShardResult]) -> Forked | None:
        """Fork; the child runs ``work`` (in a new event loop of its own), sends back what it
        returns and exits without running anything of the parent's (atexit, finally)."""
        results_r, results_w = os.pipe()
        alive_r, alive_w = os.pipe()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        try:
            pid = os.fork()
        except OSError:
            for fd in (results_r, results_w, alive_r, alive_w):
                os.close(fd)
            return None
        if pid == 0:  # the child
            code = 1
            try:
                os.close(results_r)
                os.close(alive_w)
                signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C: the parent cleans up
                threading.Thread(target=_exit_on_eof, args=(alive_r,), daemon=True).start()
                data = pickle.dumps(work(), protocol=pickle.HIGHEST_PROTOCOL)
                with os.fdopen(results_w, "wb") as out:
                    out.write(data)
                code = 0
            finally:
                os._exit(code)
        os.close(results_w)
        os.close(alive_r)
        return cls(pid, results_r, alive_w, packages)

    def _collect(self) -> ShardResult | None:
        fd, self._results = self._results, None
        if fd is None:
            return None
        try:
            with os.fdopen(fd, "rb") as pipe:
                data = pipe.read()
        except OSError:
            return None
        return _answer(data) if self._wait() == 0 else None

    async def result(self) -> ShardResult | None:
        return await asyncio.to_thread(self._collect)

    def _wait(self) -> int:
        if self._status is None:
            with contextlib.suppress(ChildProcessError):
                _, status = os.waitpid(self.pid, 0)
                self._status = os.waitstatus_to_exitcode(status)
        return self._status if self._status is not None else -1

    def close(self) -> None:
        if self._status is None:
            with contextlib.suppress(OSError):
                os.kill(self.pid, signal.SIGKILL)
            self._wait()
        for name in ("_alive", "_results"):
            fd = getattr(self, name)
            setattr(self, name, None)
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)


def _answer(data: bytes) -> ShardResult | None:
    """A second process's pickled result; None for anything unreadable (the parent then
    verifies those packages itself)."""
    try:
        result = pickle.loads(data)
    except Exception:
        return None
    return result if isinstance(result, ShardResult) else None


def _exit_on_eof(fd: int) -> None:
    # The parent holds the other end open until it has our answer; EOF means it is gone.
    while os.read(fd, 65536):
        pass
    os._exit(1)


class Worker:
    """A started ``python -m lockfix._shard``, waiting for its job."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process
        self.packages: list[PackageId] = []
        self._answer: Future[ShardResult | None] = Future()

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
        return _answer(output) if code == 0 else None

    def start(self, job: ShardJob) -> Worker:
        """Send ``job`` (the worker may still be importing: from a thread, as the pipe fills)."""
        self.packages = job.packages

        def exchange() -> None:
            try:
                self._answer.set_result(self._exchange(job))
            except BaseException:  # anything: the parent verifies those packages itself
                self._answer.set_result(None)

        threading.Thread(target=exchange, daemon=True).start()
        return self

    async def result(self) -> ShardResult | None:
        return await asyncio.wrap_future(self._answer)

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
    from lockfix.lock.lockfile import parse_lock

    lock = parse_lock(job.lock_text)
    return await verify_packages(lock, Path(job.lock_dir), job.options, job.packages)


def _exit_when_orphaned(stdin: BinaryIO) -> None:
    # The parent holds our stdin open until it has our answer; EOF means it is gone.
    while stdin.read(65536):
        pass
    os._exit(1)


def main() -> None:

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
