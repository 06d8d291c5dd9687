"""What lockfix declares about the Pythons and systems it runs on, and that CI holds to it."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def _makefile_python(name: str) -> tuple[int, int]:
    found = re.search(rf"^{name} \?= 3\.(\d+)$", (REPO / "Makefile").read_text(), re.MULTILINE)
    assert found, f"the Makefile sets no {name}"
    return (3, int(found.group(1)))


def test_ci_runs_the_lowest_declared_python_and_the_newest() -> None:
    floor = re.fullmatch(r">=\s*3\.(\d+)", PROJECT["requires-python"].strip())
    assert floor, PROJECT["requires-python"]
    lowest, newest = _makefile_python("PYTHON_LOWEST"), _makefile_python("PYTHON_NEWEST")
    assert lowest == (3, int(floor.group(1)))
    # tomllib and the rest of the 3.11 standard library lockfix uses
    assert lowest >= (3, 11)
    assert sys.version_info[:2] >= lowest
    assert "make test" in (REPO / ".ci" / "run").read_text()
    target = re.search(r"^test:.*\n((?:\t.*\n)+)", (REPO / "Makefile").read_text(), re.MULTILINE)
    assert target and "scripts/ci.sh $(PYTHON_LOWEST) $(PYTHON_NEWEST)" in target.group(1)
    declared = {
        tuple(map(int, c.rsplit(" ", 1)[1].split(".")))
        for c in PROJECT["classifiers"]
        if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)
    }
    assert declared == {(3, minor) for minor in range(lowest[1], newest[1] + 1)}


def test_posix_only_is_declared() -> None:
    classifiers = PROJECT["classifiers"]
    assert "Operating System :: POSIX" in classifiers
    assert not [c for c in classifiers if "Windows" in c or "OS Independent" in c]


def test_elsewhere_lockfix_says_so_in_one_line() -> None:
    """``fcntl`` and friends are POSIX-only: elsewhere one line and exit 2, not an import
    error (os.name is set as Windows has it, before the entry point runs)."""
    script = (
        "import os, sys\n"
        "os.name = 'nt'\n"
        "sys.argv = ['lockfix', 'check']\n"
        "from lockfix.cli._entry import main\n"
        "main()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "lockfix: error: lockfix runs on POSIX systems only (Linux, macOS)"
    ]
