"""What several test modules do the same way."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from fixtures.uvrun import UV_VERSIONS, run_uv

# A shell starts a background job (`cmd &` in a script: scripts/ci.sh runs the second Python
# so) with SIGINT ignored, and an ignored signal stays ignored across exec, as lockfix then
# rightly leaves it. A test that sends Ctrl-C starts lockfix as a terminal starts a foreground
# command: SIGINT at its default.
_SIGINT_AT_DEFAULT = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execv(sys.argv[1], sys.argv[1:])"
)


def interruptible(argv: Sequence[str]) -> list[str]:
    """``argv`` (its first item an absolute path) run with SIGINT at its default."""
    return [sys.executable, "-c", _SIGINT_AT_DEFAULT, *argv]


def run_lockfix(
    *args: str, cwd: Path, cache: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m lockfix ARGS --cache-dir CACHE`` as a real subprocess in ``cwd``, with
    ``env`` added to this process's environment."""
    return subprocess.run(
        [sys.executable, "-m", "lockfix", *args, "--cache-dir", str(cache)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **env} if env else None,
    )


def installed(project: Path, selection: Sequence[str], tmp: Path) -> dict[str, str]:
    """Name to version of what current uv's ``sync --frozen SELECTION`` installs from the
    project's lock into a new ``.venv``; ``tmp`` holds uv's cache and config."""
    new = UV_VERSIONS[-1]
    venv = project / ".venv"
    if venv.exists():
        shutil.rmtree(venv)
    run_uv(new, ["sync", "--frozen", *selection], project, tmp)
    out = run_uv(new, ["pip", "list", "--format", "json", "--python", str(venv)], project, tmp)
    return {entry["name"]: entry["version"] for entry in json.loads(out.stdout)}
