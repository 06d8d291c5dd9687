"""Cold ``lockfix check`` with and without the second process, alternating in one session.

``.venv/bin/python -m benchmarks.processes [--sizes 500,2000] [--reps 3] [--real]``

Each repetition runs the cold check (empty cache, as :mod:`benchmarks.run`) once with
``LOCKFIX_PROCESSES=1`` and once with ``=2``, the order swapped every repetition, and prints
per lock the median wall time of each and the median of the per-pair ratios two/one.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
from typing import Any

from benchmarks import run as bench


def measure(target: bench.Target, reps: int) -> dict[str, Any]:
    walls: dict[str, list[float]] = {"1": [], "2": []}
    for i in range(reps):
        for processes in ("1", "2") if i % 2 == 0 else ("2", "1"):
            cache = target.work / f"cold-{processes}-{i}"
            shutil.rmtree(cache, ignore_errors=True)
            done = target.lockfix("cold", cache, extra_env={"LOCKFIX_PROCESSES": processes})
            walls[processes].append(done.wall)
            bench.log(f"  {target.name} {i + 1}/{reps} processes={processes}: {done.wall:.2f}s")
            shutil.rmtree(cache, ignore_errors=True)
    ratios = [two / one for one, two in zip(walls["1"], walls["2"], strict=True)]
    return {
        "target": target.name,
        "one": walls["1"],
        "two": walls["2"],
        "median_one": statistics.median(walls["1"]),
        "median_two": statistics.median(walls["2"]),
        "median_ratio": statistics.median(ratios),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="500,2000", type=bench.parse_sizes)
    parser.add_argument("--reps", default=3, type=int)
    parser.add_argument("--real", action="store_true", help="also the real lock (PyPI)")
    args = parser.parse_args()
    makers: list[Any] = [lambda n=n: bench.SyntheticTarget(n) for n in args.sizes]
    if args.real:
        makers.append(bench.RealTarget)
    for make in makers:
        target = make()
        try:
            print(json.dumps(measure(target, args.reps)), flush=True)
        finally:
            target.cleanup()


if __name__ == "__main__":
    main()
