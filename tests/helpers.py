"""What several test modules do the same way."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


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
