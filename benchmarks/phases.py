"""``python -m benchmarks.phases DIR --cache-dir CACHE [--runs 9] [--tree SRC ...]``: where the
CPU time of one ``lockfix check`` goes, phase by phase.

Each run is a fresh process that runs ``lockfix check uv.lock --format json --offline`` in
``DIR`` on its own copy of ``CACHE`` (so no run sees what another stored; the stored verdict
is removed), with the named functions below wrapped in ``time.process_time`` counters:
CPU time, not wall time, so that other processes on the machine matter less. Phases are
inclusive; a phase named ``a/b`` is part of ``a``. A function that is not found (the code
moved) is left out and named on stderr.

``--tree``: the ``src`` folder of a lockfix checkout to run instead of the installed one;
given several times, the trees take turns run by run (the order swapped every run) and one
column each is printed: a before/after comparison in the same minutes.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

# (module, attribute path, phase); async functions are timed to their completion
PHASES: tuple[tuple[str, str, str], ...] = (
    ("lockfix.lock.lockfile", "parse_lock", "parse_lock"),
    ("lockfix.lock.lockfile", "_load_blocks", "parse_lock/block documents"),
    ("lockfix.lock.lockfile", "_read", "parse_lock/model"),
    ("lockfix.engine", "analyze_lock", "analyze_lock"),
    ("lockfix.engine", "_facts_key", "analyze_lock/facts keys"),
    ("lockfix.facts", "FactsStore.get_many", "analyze_lock/facts lookup"),
    ("lockfix.engine", "_recall", "analyze_lock/recall"),
    (
        "lockfix.analysis.evidence",
        "Evidence.add_metadata",
        "analyze_lock/recall/Requires-Dist check",
    ),
    ("lockfix.engine", "_recall_lowered", "analyze_lock/stored lowered requirements"),
    ("lockfix.engine", "_locked_metadata", "analyze_lock/packages checked in full"),
    ("lockfix.engine", "_cached_metadata", "analyze_lock/packages checked in full"),
    ("lockfix.analysis.planner", "Planner.plan", "analyze_lock/plan"),
    ("lockfix.analysis.reachability", "Reachability.compute", "analyze_lock/plan/reachability"),
    ("lockfix.analysis.graph", "lower_requirements", "analyze_lock/plan/lower_requirements"),
    ("lockfix.analysis.graph", "Graph.activations", "analyze_lock/plan/expected edges"),
    ("lockfix.engine", "_remember_lowered", "analyze_lock/lowered requirements stored"),
    ("lockfix.facts", "FactsStore.close", "analyze_lock/facts write"),
)

# Runs in the child: imports timed first, then the CLI as `python -m lockfix` runs it.
_CHILD = r"""
import atexit, importlib, inspect, json, os, sys, time
T0 = time.process_time()
acc = {}
def add(key, dt):
    acc[key] = acc.get(key, 0.0) + dt
t = time.process_time()
from lockfix.cli import _entry
try:  # what the check's command line loads: its click-free module, else click's
    import lockfix.cli.checking
except ImportError:
    import lockfix.cli.main
import lockfix.cli.report, lockfix.engine
add("imports", time.process_time() - t)
for module, path, key in json.loads(os.environ["PHASES"]):
    try:
        owner = importlib.import_module(module)
        *parents, name = path.split(".")
        for parent in parents:
            owner = getattr(owner, parent)
        f = getattr(owner, name)
    except (ImportError, AttributeError):
        print(f"phases: {module}.{path} not found; left out", file=sys.stderr)
        continue
    if inspect.iscoroutinefunction(f):
        async def w(*a, __f=f, __k=key, **kw):
            t = time.process_time()
            try:
                return await __f(*a, **kw)
            finally:
                add(__k, time.process_time() - t)
    else:
        def w(*a, __f=f, __k=key, **kw):
            t = time.process_time()
            try:
                return __f(*a, **kw)
            finally:
                add(__k, time.process_time() - t)
    setattr(owner, name, w)
dumped = []
def dump():
    if dumped:
        return
    dumped.append(True)
    add("total (after interpreter start)", time.process_time() - T0)
    with open(os.environ["PHASES_OUT"], "a") as out:
        out.write(json.dumps(acc) + "\n")
atexit.register(dump)
# the CLI ends with os._exit from an exit handler registered after this one (run before it)
real_exit = os._exit
def end(status):
    dump()
    real_exit(status)
os._exit = end
sys.argv = ["lockfix", *sys.argv[1:]]
_entry.main()
"""


def run_once(lock_dir: Path, cache: Path, tree: str | None, out: Path) -> int:
    with tempfile.TemporaryDirectory(prefix="lockfix-phases-") as scratch:
        copy = Path(scratch) / "cache"
        shutil.copytree(cache, copy)
        shutil.rmtree(copy / "verdicts-v1", ignore_errors=True)
        env = dict(os.environ, PHASES=json.dumps(PHASES), PHASES_OUT=str(out))
        if tree is not None:
            env["PYTHONPATH"] = tree
        cmd = [sys.executable, "-c", _CHILD, "check", "uv.lock", "--cache-dir", str(copy)]
        cmd += ["--format", "json", "--offline"]
        done = subprocess.run(cmd, cwd=lock_dir, env=env, stdout=subprocess.DEVNULL)
        return done.returncode


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.phases", description=__doc__)
    ap.add_argument("lock_dir", type=Path, help="the folder of uv.lock (and pyproject.toml)")
    ap.add_argument("--cache-dir", type=Path, required=True, help="a filled lockfix cache")
    ap.add_argument("--runs", type=int, default=9)
    ap.add_argument("--tree", action="append", help="a lockfix src folder (repeatable)")
    args = ap.parse_args(argv)
    trees: list[str | None] = list(args.tree or [None])
    # as an installed lockfix has its bytecode (see benchmarks.run)
    for tree in trees:
        if tree is None:
            import lockfix

            compileall.compile_dir(Path(lockfix.__file__).parent, quiet=1)
        else:
            compileall.compile_dir(Path(tree) / "lockfix", quiet=1)
    with tempfile.TemporaryDirectory(prefix="lockfix-phases-out-") as folder:
        outs = [Path(folder) / f"{i}.jsonl" for i in range(len(trees))]
        for run in range(args.runs):
            order = list(range(len(trees)))
            for i in order if run % 2 == 0 else order[::-1]:
                rc = run_once(args.lock_dir, args.cache_dir, trees[i], outs[i])
                if rc not in (0, 1):
                    print(f"phases: the check exited {rc}", file=sys.stderr)
        rows = [[json.loads(line) for line in out.read_text().splitlines()] for out in outs]
    phases = dict.fromkeys(key for _, _, key in PHASES)  # a phase may have several functions
    keys = ["total (after interpreter start)", "imports", *phases]
    names = [t or "installed" for t in trees]
    print(f"median CPU seconds over {args.runs} runs")
    print(f"{'phase':<48}" + "".join(f"{n[-24:]:>26}" for n in names))
    for key in keys:
        cells = [statistics.median(r.get(key, 0.0) for r in runs) if runs else 0.0 for runs in rows]
        print(f"{key:<48}" + "".join(f"{c:>26.3f}" for c in cells))
    total = "total (after interpreter start)"
    for i in range(1, len(rows)):
        # run k of each tree ran next to run k of the first: a pair of the same minutes
        ratios = sorted(b[total] / a[total] for a, b in zip(rows[0], rows[i], strict=False))
        if ratios:
            print(
                f"total, {names[i][-24:]} / {names[0][-24:]} per pair: median "
                f"{statistics.median(ratios):.3f} (range {ratios[0]:.3f}-{ratios[-1]:.3f})"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
