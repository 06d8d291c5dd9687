"""A second process for a cold check's fetching: ``python -m lockfix._shard``.

A cold check is CPU-bound in the client (TLS, HTTP, zip and metadata parsing: ~1.5 ms of
CPU per request), and a lock of a few hundred packages takes thousands of requests when
its index serves no PEP 658 files. One Python process uses one core. With two cores,
:func:`lockfix.engine.analyze_lock` gives about half of the registry packages (by number
of locked files) to this worker, which verifies them with the very same code and caches
and sends back what it found. If the worker fails in any way, the parent verifies those
packages itself.

Protocol: the parent writes a length-prefixed pickle of :class:`ShardJob` on stdin and keeps
stdin open; the worker answers with a pickle of :class:`ShardResult` on stdout. EOF on
stdin before that (the parent died or gave up) ends the worker at once.
"""

from __future__ import annotations

import asyncio
import os
import pickle
import struct
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
    options: Options  # without its progress callback
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


def encode_job(job: ShardJob) -> bytes:
    data = pickle.dumps(job, protocol=pickle.HIGHEST_PROTOCOL)
    return _LENGTH.pack(len(data)) + data


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
