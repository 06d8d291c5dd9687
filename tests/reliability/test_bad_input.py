"""Bad input (issue 7): one clear line naming the file and the problem, exit 2, file untouched.

The full table, for ``check`` and ``repair``; the cases that need a real index (revision,
CRLF, symlink, read-only, mode) repair the saved broken torch_groups lock against the
loopback fixture index. Decisions:

- a byte-order mark is **refused** (uv never writes one, and uv's own TOML reader rejects it);
- an unknown newer ``revision``: ``check`` proceeds with a warning (reading is safe),
  ``repair`` refuses to rewrite a layout it does not know (exit 2, nothing written);
- CRLF line endings are kept; a symlink is written through (the link stays a link); a
  read-only lock is refused (the rename would otherwise replace it silently).
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .biglock import big_lock
from .conftest import Index, Run, lockfix, record

MINIMAL = 'version = 1\nrevision = 3\nrequires-python = ">=3.11"\n'
ROOT = '[[package]]\nname = "root"\nversion = "0.1.0"\nsource = { virtual = "." }\n'
DANGLING = MINIMAL + "\n" + ROOT + 'dependencies = [\n    { name = "ghost" },\n]\n'
DUPLICATE = (
    MINIMAL
    + "\n"
    + ROOT
    + '\n[[package]]\nname = "six"\nversion = "1.0"\n'
    + 'source = { registry = "https://pypi.org/simple" }\n'
    + '\n[[package]]\nname = "six"\nversion = "1.0"\n'
    + 'source = { registry = "https://pypi.org/simple" }\n'
)

# (id, content, expected message); content None = no file, "directory" = a folder
CASES: list[tuple[str, str | bytes | None, str]] = [
    ("missing", None, "no such file"),
    ("directory", "directory", "is a directory"),
    ("empty", "", "the file is empty"),
    ("blank", "\n  \n\t\n", "the file is empty"),
    ("binary", b"\x00\xff\xfe\x89PNG garbage\x00", "not a text file"),
    ("latin-1", "version = 1\n# caf\xe9\n".encode("latin-1"), "not a text file"),
    ("not-toml", "version = 1\n[[package]\n", "not valid TOML"),
    ("not-a-lock", '[project]\nname = "x"\n', "not a uv lock"),
    ("version-2", "version = 2\n", "unsupported lock version 2"),
    ("version-string", 'version = "1"\n', "unsupported lock version"),
    ("revision-string", 'version = 1\nrevision = "x"\n', "`revision` must be an integer"),
    ("bom", ("\ufeff" + MINIMAL).encode(), "byte-order mark"),
    ("dangling-dependency", DANGLING, "has no locked package"),
    ("duplicate-package", DUPLICATE, "appears twice"),
    ("package-not-array", MINIMAL + "package = 3\n", "`package` must be an array"),
]


def _write(path: Path, content: str | bytes | None) -> None:
    if content == "directory":
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)


def assert_one_line_exit_2(result, message: str, name: str = "uv.lock") -> None:  # type: ignore[no-untyped-def]
    assert result.returncode == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert message in lines[0] and name in lines[0], result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize("command", ["check", "repair"])
@pytest.mark.parametrize(("content", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input(
    tmp_path: Path, command: str, content: str | bytes | None, message: str, request
) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "uv.lock"
    _write(path, content)
    before = path.read_bytes() if path.is_file() else None
    result = lockfix(command, "uv.lock", "--cache-dir", str(tmp_path / "cache"), cwd=tmp_path)
    assert_one_line_exit_2(result, message)
    if before is not None:
        assert path.read_bytes() == before
    left = sorted(p.name for p in tmp_path.iterdir() if p.name != "cache")
    assert left == ([] if content is None else ["uv.lock"])
    record(f"input: {request.node.callspec.id}", result, "unchanged")


def test_dangling_symlink(tmp_path: Path) -> None:
    (tmp_path / "uv.lock").symlink_to(tmp_path / "gone.lock")
    result = lockfix("repair", "uv.lock", "--cache-dir", str(tmp_path / "c"), cwd=tmp_path)
    assert_one_line_exit_2(result, "dangling symlink")
    record("input: dangling symlink", result, "unchanged")


@pytest.mark.parametrize("command", ["check", "repair"])
def test_unreadable(tmp_path: Path, command: str) -> None:
    """chmod 000. Root reads anything, so as root the command runs without the
    CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH capabilities (``setpriv``), as a user would."""
    path = tmp_path / "uv.lock"
    path.write_text(MINIMAL)
    path.chmod(0)
    prefix: list[str] = []
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root, where chmod 000 does not stop reads, without setpriv")
        drop = "-dac_override,-dac_read_search"
        prefix = [setpriv, f"--bounding-set={drop}", f"--inh-caps={drop}"]
    try:
        result = subprocess.run(
            [*prefix, sys.executable, "-m", "lockfix", command, "uv.lock", "--no-cache"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        path.chmod(0o644)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot read" in lines[0] and "uv.lock" in lines[0], lines
    assert path.read_text() == MINIMAL
    record(f"input: unreadable (chmod 000), {command}", _as_run(result), "unchanged")


def _as_run(result: subprocess.CompletedProcess[str]):  # type: ignore[no-untyped-def]
    from .conftest import Run

    return Run(tuple(result.args), result.returncode, result.stdout, result.stderr, 0.0)


# --- cases that need the index ------------------------------------------------------------


def test_crlf_is_kept(index: Index) -> None:
    project = index.project(index.broken.replace("\n", "\r\n"))
    result = index.run("repair", "uv.lock", cwd=project)
    assert result.returncode == 0, result.output
    written = (project / "uv.lock").read_bytes()
    assert written == index.repaired.replace("\n", "\r\n").encode()
    record("input: CRLF lock repaired", result, "changed correctly (CRLF kept)")
    again = index.run("check", "uv.lock", cwd=project)
    assert again.returncode == 0, again.output


def test_unknown_revision(index: Index) -> None:
    text = index.broken.replace("revision = ", "revision = 9", 1)
    assert "revision = 9" in text
    project = index.project(text)
    check = index.run("check", "uv.lock", cwd=project)
    assert check.returncode == 1, check.output  # it reads and reports
    assert "warning" in check.stderr and "revision" in check.stderr
    record("input: unknown revision, check", check, "unchanged (warned)")
    repair = index.run("repair", "uv.lock", cwd=project)
    assert repair.returncode == 2, repair.output
    assert "revision" in repair.stderr and "will not rewrite" in repair.stderr
    assert "Traceback" not in repair.output
    assert (project / "uv.lock").read_text() == text
    record("input: unknown revision, repair", repair, "unchanged")


def test_symlinked_lock_is_written_through(index: Index) -> None:
    project = index.project()
    real = project / "real"
    real.mkdir()
    (project / "uv.lock").rename(real / "uv.lock")
    (project / "uv.lock").symlink_to(Path("real") / "uv.lock")
    result = index.run("repair", "uv.lock", cwd=project)
    assert result.returncode == 0, result.output
    assert (project / "uv.lock").is_symlink()
    assert (real / "uv.lock").read_text() == index.repaired
    assert [p.name for p in real.iterdir()] == ["uv.lock"]
    record("input: symlinked lock", result, "changed correctly (link kept)")


def test_read_only_lock_is_refused(index: Index) -> None:
    project = index.project()
    path = project / "uv.lock"
    path.chmod(0o444)
    result = index.run("repair", "uv.lock", cwd=project)
    assert_one_line_exit_2(result, "read-only")
    assert path.read_text() == index.broken
    assert stat.S_IMODE(path.stat().st_mode) == 0o444
    record("input: read-only lock, repair", result, "unchanged")
    check = index.run("check", "uv.lock", cwd=project)
    assert check.returncode == 1, check.output


def test_mode_is_kept(index: Index) -> None:
    project = index.project()
    path = project / "uv.lock"
    path.chmod(0o640)
    result = index.run("repair", "uv.lock", cwd=project)
    assert result.returncode == 0, result.output
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert path.read_text() == index.repaired
    record("input: mode 0640 kept", result, "changed correctly (mode kept)")


@pytest.mark.parametrize("command", ["check", "repair"])
def test_lock_of_tens_of_megabytes(tmp_path: Path, command: str) -> None:
    """A synthetic 19 MB lock (40 000 URL packages, no network): no blow-up. Its peak
    memory, which load does not change, stays within 30 times the lock's size (16 times
    when this was written)."""
    text = big_lock(40_000)
    assert len(text) > 15_000_000
    path = tmp_path / "uv.lock"
    path.write_text(text)
    args = (command, "uv.lock", "--cache-dir", str(tmp_path / "c"))
    output = tmp_path / "output"
    started = time.monotonic()
    with output.open("w") as stream:
        process = subprocess.Popen(
            [sys.executable, "-m", "lockfix", *args], cwd=tmp_path, stdout=stream, stderr=stream
        )
        _, status, usage = os.wait4(process.pid, 0)  # the rusage of this child alone
    process.returncode = os.waitstatus_to_exitcode(status)
    result = Run(args, process.returncode, output.read_text(), "", time.monotonic() - started)
    assert result.returncode == 0, result.output[-2000:]
    peak = usage.ru_maxrss * 1024  # KiB on Linux
    assert peak < 30 * len(text), (peak, len(text))
    assert path.read_text() == text
    record(f"input: 19 MB lock, {command}", result, "unchanged")
