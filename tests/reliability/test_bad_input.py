"""Bad input: one clear line naming the file and the problem, exit 2, file untouched.

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

# A root depending on one registry package with one wheel: the base of the wrong-value cases.
SIX_HASH = "sha256:" + "ab" * 32
SIX_WHEEL = "https://example.org/six-1.0-py3-none-any.whl"
WITH_SIX = (
    MINIMAL
    + "resolution-markers = [\"sys_platform == 'linux'\"]\n\n"
    + ROOT
    + 'dependencies = [\n    { name = "six", marker = "sys_platform == \'linux\'" },\n]\n'
    + '\n[[package]]\nname = "six"\nversion = "1.0"\n'
    + 'source = { registry = "https://pypi.org/simple" }\n'
    + f'wheels = [\n    {{ url = "{SIX_WHEEL}", hash = "{SIX_HASH}", size = 10 }},\n]\n'
)
MARKER = "marker = \"sys_platform == 'linux'\""
HASH = f'hash = "{SIX_HASH}"'
DEEP_MARKER = "(" * 5000 + "os_name == 'nt'" + ")" * 5000


def six(old: str, new: str) -> str:
    assert old in WITH_SIX, old
    return WITH_SIX.replace(old, new, 1)


# Values of the wrong type or shape: the line names the package (or key) and the problem.
WRONG_VALUES: list[tuple[str, str | bytes | None, str]] = [
    (
        "marker-integer",
        six(MARKER, "marker = 3"),
        "package root 0.1.0: dependency six: `marker` must be a string, not an integer",
    ),
    (
        "marker-table",
        six(MARKER, "marker = { a = 1 }"),
        "dependency six: `marker` must be a string, not a table",
    ),
    (
        "marker-unparsable",
        six(MARKER, 'marker = ">>>"'),
        "package root 0.1.0: dependency six: `marker`: invalid marker '>>>'",
    ),
    (
        "marker-nested",
        six(MARKER, f'marker = "{DEEP_MARKER}"'),
        "more than 64 levels of parentheses",
    ),
    (
        "resolution-marker-integer",
        six('resolution-markers = ["', 'resolution-markers = [3, "'),
        "`resolution-markers` entry must be a string, not an integer",
    ),
    (
        "requires-python-integer",
        six('requires-python = ">=3.11"', "requires-python = 311"),
        "`requires-python` must be a string, not an integer",
    ),
    (
        "requires-python-unparsable",
        six('requires-python = ">=3.11"', 'requires-python = ">>3"'),
        "`requires-python` '>>3' is not a version specifier",
    ),
    (
        "hash-integer",
        six(HASH, "hash = 5"),
        "package six 1.0: wheel `hash` must be a string, not an integer",
    ),
    (
        "hash-no-algorithm",
        six(HASH, 'hash = "abab"'),
        "package six 1.0: wheel `hash` 'abab' is not ALGORITHM:HEX-DIGEST",
    ),
    (
        "hash-not-hex",
        six(HASH, 'hash = "sha256:' + "zz" * 32 + '"'),
        "package six 1.0: wheel `hash` 'sha256:zzzz",
    ),
    (
        "hash-short",
        six(HASH, 'hash = "sha256:abab"'),
        "package six 1.0: wheel `hash` 'sha256:abab' is not ALGORITHM:HEX-DIGEST",
    ),
    (
        "size-string",
        six("size = 10", 'size = "10"'),
        "package six 1.0: wheel `size` must be a non-negative integer, not a string",
    ),
    (
        "size-negative",
        six("size = 10", "size = -10"),
        "package six 1.0: wheel `size` must be a non-negative integer, not -10",
    ),
    (
        "extra-string",
        six('{ name = "six", ', '{ name = "six", extra = "x", '),
        "dependency six: `extra` must be an array of strings, not a string",
    ),
    (
        "extra-integers",
        six('{ name = "six", ', '{ name = "six", extra = [1], '),
        "package root 0.1.0: dependency six: `extra` entry must be a string, not an integer",
    ),
    (
        "version-integer",
        six('version = "1.0"', "version = 1"),
        "package six: `version` must be a string, not an integer",
    ),
    (
        "version-unparsable",
        six('version = "1.0"', 'version = "one"'),
        "package six: `version` 'one' is not a version",
    ),
    (
        "nested-arrays",
        "x = " + "[" * 100_000 + "]" * 100_000 + "\n" + WITH_SIX,
        "not valid TOML: arrays or tables nested too deeply",
    ),
    (
        "nested-tables",
        "x = " + "{a=" * 5_000 + "1" + "}" * 5_000 + "\n" + WITH_SIX,
        "not valid TOML: arrays or tables nested too deeply",
    ),
]

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
    *WRONG_VALUES,
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


def _as_a_user() -> list[str]:
    """A command prefix under which chmod 000 stops reads: as root, the command runs without
    the CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH capabilities (``setpriv``), as a user would."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root, where chmod 000 does not stop reads, without setpriv")
    drop = "-dac_override,-dac_read_search"
    return [setpriv, f"--bounding-set={drop}", f"--inh-caps={drop}"]


def _run_with_unreadable(path: Path, command: str) -> subprocess.CompletedProcess[str]:
    """``lockfix COMMAND uv.lock --no-cache`` in ``path``'s folder, as a user, while ``path``
    is chmod 000."""
    prefix = _as_a_user()
    path.chmod(0)
    try:
        return subprocess.run(
            [*prefix, sys.executable, "-m", "lockfix", command, "uv.lock", "--no-cache"],
            cwd=path.parent,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        path.chmod(0o644)


@pytest.mark.parametrize("command", ["check", "repair"])
def test_unreadable(tmp_path: Path, command: str) -> None:
    """chmod 000 (see :func:`_as_a_user`)."""
    path = tmp_path / "uv.lock"
    path.write_text(MINIMAL)
    result = _run_with_unreadable(path, command)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot read" in lines[0] and "uv.lock" in lines[0], lines
    assert path.read_text() == MINIMAL
    record(f"input: unreadable (chmod 000), {command}", _as_run(result), "unchanged")


PYPROJECT = '[project]\nname = "root"\nversion = "0.1.0"\n'
INDEX = '[[tool.uv.index]]\nname = "pypi"\nurl = "https://pypi.org/simple"\n'

# (id, pyproject.toml, uv.toml, expected message naming the file)
PROJECT_CASES: list[tuple[str, str | bytes, str | bytes | None, str]] = [
    (
        "pyproject-latin-1",
        (PYPROJECT + "# caf\xe9\n").encode("latin-1"),
        None,
        "pyproject.toml: not UTF-8 (byte 0xe9 at offset",
    ),
    ("pyproject-tool-integer", "tool = 3\n", None, "pyproject.toml: [tool] must be a table"),
    (
        "tool-uv-string",
        PYPROJECT + '[tool]\nuv = "x"\n',
        None,
        "pyproject.toml: [tool.uv] must be a table, not a string",
    ),
    (
        "index-name-integer",
        PYPROJECT + INDEX.replace('name = "pypi"', "name = 3"),
        None,
        "pyproject.toml: [tool.uv] index[0].name must be a string, not an integer",
    ),
    (
        "index-url-integer",
        PYPROJECT + INDEX.replace('url = "https://pypi.org/simple"', "url = 3"),
        None,
        "pyproject.toml: [tool.uv] index[0].url must be a string, not an integer",
    ),
    (
        "index-explicit-string",
        PYPROJECT + INDEX + 'explicit = "yes"\n',
        None,
        "pyproject.toml: [tool.uv] index[0].explicit must be true or false, not a string",
    ),
    (
        "sources-string",
        PYPROJECT + '[tool.uv]\nsources = "x"\n',
        None,
        "pyproject.toml: [tool.uv] sources must be a table, not a string",
    ),
    (
        "source-index-integer",
        PYPROJECT + "[tool.uv.sources]\ntorch = { index = 3 }\n",
        None,
        "pyproject.toml: [tool.uv] sources.torch.index must be a string, not an integer",
    ),
    (
        "source-marker-unparsable",
        PYPROJECT + '[tool.uv.sources]\ntorch = [{ index = "pypi", marker = ">>>" }]\n',
        None,
        "pyproject.toml: [tool.uv] sources.torch[0].marker: invalid marker '>>>'",
    ),
    (
        "uv-toml-latin-1",
        PYPROJECT,
        "# caf\xe9\n".encode("latin-1"),
        "uv.toml: not UTF-8 (byte 0xe9 at offset 5)",
    ),
    ("uv-toml-index-integer", PYPROJECT, "index = 3\n", "uv.toml: index[0] must be a table"),
    (
        "uv-toml-nested",
        PYPROJECT,
        "x = " + "[" * 100_000 + "]" * 100_000 + "\n",
        "uv.toml: not valid TOML: arrays or tables nested too deeply",
    ),
]


@pytest.mark.parametrize("command", ["check", "repair"])
@pytest.mark.parametrize(
    ("pyproject", "uv_toml", "message"),
    [c[1:] for c in PROJECT_CASES],
    ids=[c[0] for c in PROJECT_CASES],
)
def test_bad_project_files(
    tmp_path: Path,
    command: str,
    pyproject: str | bytes,
    uv_toml: str | bytes | None,
    message: str,
) -> None:
    (tmp_path / "uv.lock").write_text(WITH_SIX)
    for name, content in (("pyproject.toml", pyproject), ("uv.toml", uv_toml)):
        if content is not None:
            path = tmp_path / name
            path.write_bytes(content if isinstance(content, bytes) else content.encode())
    result = lockfix(command, "uv.lock", "--cache-dir", str(tmp_path / "cache"), cwd=tmp_path)
    assert_one_line_exit_2(result, message, name=str(tmp_path))
    assert (tmp_path / "uv.lock").read_text() == WITH_SIX


@pytest.mark.parametrize("name", ["pyproject.toml", "uv.toml"])
def test_unreadable_project_file(tmp_path: Path, name: str) -> None:
    (tmp_path / "uv.lock").write_text(WITH_SIX)
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    path = tmp_path / name
    path.write_text(INDEX.replace("[[tool.uv.index]]", "[[index]]"))
    result = _run_with_unreadable(path, "check")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines == [f"lockfix: error: {path}: cannot read: Permission denied"], lines


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
