"""``python -m benchmarks.instructions DIR/project --cache-dir DIR/cache [--tree SRC ...]``:
the instructions one ``lockfix check`` executes, counted by valgrind.

Wall and CPU time of a 0.3 s check vary by a third from run to run on a shared machine;
the count of instructions executed does not. Each run is ``lockfix check uv.lock --format
json --offline`` in the project folder, on its own copy of the cache (the stored verdict
removed; ``shutil.copytree`` keeps the page files' modification times, which the stored
page stamps are checked against), under ``valgrind --tool=callgrind`` with
``PYTHONHASHSEED=0`` (string hashes change the order of sets and, with it, the work by a few
per cent). ``--tree``: the ``src`` folder of a lockfix checkout to count instead of the
installed one (byte-compiled first); given several times, one row each. The kept changed
project of ``benchmarks.run --keep-changed DIR`` is the usual subject.
"""

from __future__ import annotations

import argparse
import compileall
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

_COLLECTED = re.compile(r"Collected : (\d+)")


def count(project: Path, cache: Path, tree: str | None) -> int:
    """Instructions executed by one check of ``project`` with a copy of ``cache``."""
    with tempfile.TemporaryDirectory(prefix="lockfix-instructions-") as scratch:
        copy = Path(scratch) / "cache"
        shutil.copytree(cache, copy)
        shutil.rmtree(copy / "verdicts-v1", ignore_errors=True)
        env = dict(os.environ, PYTHONHASHSEED="0")
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        if tree is not None:
            env["PYTHONPATH"] = tree
        command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={scratch}/out"]
        command += [sys.executable, "-m", "lockfix", "check", "uv.lock", "--format", "json"]
        command += ["--offline", "--cache-dir", str(copy)]
        done = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True)
    found = _COLLECTED.search(done.stderr)
    if found is None or done.returncode not in (0, 1):
        raise SystemExit(f"the check under valgrind failed ({done.returncode}):\n{done.stderr}")
    return int(found.group(1))


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.instructions")
    ap.add_argument("project", type=Path, help="the folder of uv.lock (and pyproject.toml)")
    ap.add_argument("--cache-dir", type=Path, required=True, help="a filled lockfix cache")
    ap.add_argument("--tree", action="append", help="a lockfix src folder (repeatable)")
    args = ap.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed")
    for tree in args.tree or [None]:
        if tree is not None:
            compileall.compile_dir(Path(tree) / "lockfix", quiet=1)
        else:
            import lockfix

            compileall.compile_dir(Path(lockfix.__file__).parent, quiet=1)
        millions = count(args.project, args.cache_dir, tree) / 1e6
        print(f"{millions:8.0f} M instructions  {tree or 'installed lockfix'}", flush=True)


if __name__ == "__main__":
    main()
