"""Run the reliability tests and print their summary table.

    .venv/bin/python tests/reliability/table.py [extra pytest args, e.g. -k faults]

Each row is one real run of the command line that a passing test recorded after checking
it: the exit code, what happened to the lock (verified by the test: "unchanged" is byte
for byte the old lock, "changed correctly" byte for byte a fault-free repair), the
tracebacks in its output, and how often the index password appeared in stdout, stderr,
the JSON report, the diff or the lock ("secret leaks"; only the runs against the
password-protected index carry a secret).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PATHS = ["tests/reliability"]


def main(argv: list[str]) -> int:
    with tempfile.TemporaryDirectory() as folder:
        table = Path(folder) / "rows.jsonl"
        env = {**os.environ, "LOCKFIX_RELIABILITY_TABLE": str(table)}
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-s", *PATHS, *argv],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
        )
        lines = table.read_text().splitlines() if table.exists() else []
        rows = [json.loads(line) for line in lines]
    width = max([len(r["case"]) for r in rows] + [4])
    print(f"| {'case':<{width}} | exit | lock | tracebacks | secret leaks |")
    print(f"|{'-' * (width + 2)}|------|------|------------|--------------|")
    for row in rows:
        print(
            f"| {row['case']:<{width}} | {row['exit']:>4} | {row['lock']} | "
            f"{row['tracebacks']:>10} | {row['leaks']:>12} |"
        )
    print()
    print(
        f"{len(rows)} runs; tracebacks: {sum(r['tracebacks'] for r in rows)}; "
        f"secret leaks: {sum(r['leaks'] for r in rows)}"
    )
    for line in result.stdout.splitlines():
        if "interrupted runs" in line or "SIGINT during" in line:
            print(line.strip())
    tail = result.stdout.strip().splitlines()
    print("pytest:", tail[-1] if tail else result.stderr.strip()[-500:])
    return result.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
