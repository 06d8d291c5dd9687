"""The command line on bad input: one clear line, exit code 2, the file untouched."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from lockfix import __version__


def lockfix(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lockfix", *args, "--cache-dir", str(cwd / "cache")],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_version() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "lockfix", "--version"], capture_output=True, text=True, check=True
    )
    assert __version__ in result.stdout


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        ("", "the file is empty"),
        (b"\x00\xff\xfe garbage", "not a text file"),
        ("version = 1\n[[package]\n", "not valid TOML"),
        ('[project]\nname = "x"\n', "not a uv lock"),
        ("version = 7\n", "unsupported lock version 7"),
        ("directory", "is a directory"),
    ],
    ids=["missing", "empty", "binary", "not-toml", "not-a-lock", "version-7", "directory"],
)
@pytest.mark.parametrize("command", ["check", "repair"])
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, command: str, content: str | bytes | None, message: str
) -> None:
    path = tmp_path / "uv.lock"
    if content == "directory":
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    before = path.read_bytes() if path.is_file() else None
    result = lockfix(command, "uv.lock", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "uv.lock" in lines[0], result.stderr
    assert "Traceback" not in result.stderr
    if before is not None:
        assert path.read_bytes() == before
