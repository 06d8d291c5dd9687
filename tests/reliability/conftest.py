"""Shared parts of the reliability tests: a fault-injecting loopback index serving
the torch_groups scenario, projects with its saved broken/reference locks, and a runner
that records every run of the real command line for the summary table."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from fixtures.builder import build_scenario
from fixtures.scenarios import get_scenario
from fixtures.server import IndexServer

REPO = Path(__file__).resolve().parents[2]
SAVED = REPO / "fixtures" / "locks" / "torch_groups"
USER, SECRET = "alice", "s3cr3t-Zq9-token"
TABLE = (
    Path(os.environ.get("LOCKFIX_RELIABILITY_TABLE", ""))
    if os.environ.get("LOCKFIX_RELIABILITY_TABLE")
    else None
)


@dataclass
class Run:
    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def lockfix(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120) -> Run:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "lockfix", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
    return Run(args, result.returncode, result.stdout, result.stderr, time.monotonic() - started)


def record(case: str, run: Run, lock: str, *, secrets: tuple[str, ...] = ()) -> None:
    """One row of the summary table (tests/reliability/table.py): written when
    LOCKFIX_RELIABILITY_TABLE names a file."""
    if TABLE is None:
        return
    leaks = sum(run.output.count(s) for s in secrets if s)
    row = {
        "case": case,
        "exit": run.returncode,
        "lock": lock,
        "tracebacks": run.output.count("Traceback"),
        "leaks": leaks,
        "seconds": round(run.seconds, 2),
    }
    with TABLE.open("a") as stream:
        stream.write(json.dumps(row) + "\n")


class Index:
    """The torch_groups indexes on loopback, optionally behind Basic auth."""

    def __init__(self, root: Path, *, auth: bool) -> None:
        self.root = root
        self.built = build_scenario(get_scenario("torch_groups"), root / "build")
        options = {"auth": (USER, SECRET)} if auth else {}
        self.server = IndexServer(self.built, **options).start()
        self.auth = auth
        port = f"127.0.0.1:{self.server.port}"
        self.broken = (SAVED / "broken.uv.lock").read_text().replace("127.0.0.1:8765", port)
        self.reference = (SAVED / "reference.uv.lock").read_text().replace("127.0.0.1:8765", port)
        userinfo = f"{USER}:{SECRET}@" if auth else ""
        self.pyproject = (
            (SAVED / "pyproject.toml")
            .read_text()
            .replace("http://127.0.0.1:8765", f"http://{userinfo}{port}")
        )
        self._repaired: str | None = None
        self._count = 0

    def project(self, lock_text: str | None = None, name: str | None = None) -> Path:
        self._count += 1
        directory = self.root / (name or f"p{self._count}")
        directory.mkdir(parents=True)
        (directory / "pyproject.toml").write_text(self.pyproject)
        (directory / "uv.lock").write_bytes((lock_text or self.broken).encode())
        return directory

    def run(self, *args: str, cwd: Path, env: dict[str, str] | None = None, **kw) -> Run:  # type: ignore[no-untyped-def]
        return lockfix(*args, "--cache-dir", str(cwd / "cache"), cwd=cwd, env=env, **kw)

    @property
    def repaired(self) -> str:
        """What a fault-free repair makes of the broken lock."""
        if self._repaired is None:
            directory = self.project(name="baseline")
            result = self.run("repair", "uv.lock", cwd=directory)
            assert result.returncode == 0, result.output
            self._repaired = (directory / "uv.lock").read_text()
            assert self._repaired != self.broken
        return self._repaired

    def close(self) -> None:
        self.server.stop()


@pytest.fixture(scope="session")
def index(tmp_path_factory: pytest.TempPathFactory):
    index = Index(tmp_path_factory.mktemp("reliability-index"), auth=False)
    assert index.repaired  # the fault-free baseline, before any test adds a fault
    yield index
    index.close()


@pytest.fixture(scope="session")
def secret_index(tmp_path_factory: pytest.TempPathFactory):
    index = Index(tmp_path_factory.mktemp("reliability-secret"), auth=True)
    assert index.repaired
    yield index
    index.close()


@pytest.fixture
def faults(index: Index, secret_index: Index):
    """Faults added in a test are cleared after it."""
    yield
    for each in (index, secret_index):
        each.server.clear_faults()
        for name in each.built.indexes:
            each.server.configure(
                name, pep658=True, pep658_wrong_hash=False, ranges=True, json=True, html=True
            )
