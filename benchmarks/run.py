"""lockfix benchmark: ``python -m benchmarks.run [--sizes 500,2000,5000] [--reps 5]
[--cold-reps 3] [--real] [--json out.json] [--profile N]``.

For each synthetic size N (served from the loopback fixture index) and, with ``--real``, for
``fixtures/bench/real/uv.lock`` against https://pypi.org/simple, in one run:

* warm: ``lockfix check`` (its cache filled by an earlier run) vs ``uv lock --check`` (warm uv
  cache), alternating the tools in one loop (order swapped every repetition), ``--reps`` pairs;
* cold: ``lockfix check`` with an empty ``--cache-dir`` vs ``uv lock`` with an empty
  ``UV_CACHE_DIR`` and no lock file, alternating, ``--cold-reps`` pairs.

Every child is reaped with ``os.wait4`` so its own peak RSS (``ru_maxrss`` of that child and
the children it waited for) is exact per run.  HTTP requests come from the fixture server's
request log (loopback) and, for lockfix, also from its client's counters
(``benchmarks._lockfix_child``).  The table goes to stdout, progress to stderr.
"""

from __future__ import annotations

import argparse
import compileall
import functools
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parent.parent
PY = REPO / ".venv" / "bin" / "python"
if not PY.exists():
    PY = Path(sys.executable)
UV_VERSION = "0.13.9"
REAL_PROJECT = REPO / "fixtures" / "bench" / "real"
DEFAULT_SIZES = (500, 2000, 5000)
CHILD_TIMEOUT = 1800.0
_SCRIPT = REPO / ".venv" / "bin" / "lockfix"
LOCKFIX_COMMAND = [str(_SCRIPT)] if _SCRIPT.exists() else [str(PY), "-m", "lockfix"]
MODES = ("hook", "warm", "changed", "full", "cold")
# changed: at most this long, and at most this many times `uv lock --check`
CHANGED_TARGET_S = 0.5
CHANGED_TARGET_RATIO = 10.0

GROWTH_TARGET = 10.0
# --keep-changed: where to keep the changed lock's project and warm cache
KEEP_CHANGED: Path | None = None
MEMORY_TARGET_MB = 300.0


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- one child run


@dataclass
class Run:
    tool: str  # "lockfix" | "uv"
    mode: str  # "warm" | "cold"
    wall: float
    rss_mb: float
    rc: int
    cpu: float = 0.0  # user + system seconds of the child (and its reaped children)
    requests: dict[str, int] = field(default_factory=dict)  # from the server log
    client_stats: dict[str, int] | None = None  # lockfix's own counters
    stderr_tail: str = ""


def run_child(
    cmd: list[str], cwd: Path, env: dict[str, str]
) -> tuple[float, float, int, str, float]:
    """(wall seconds, peak RSS MB of the child, exit code, stderr tail, CPU seconds)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=err)
        timer = threading.Timer(CHILD_TIMEOUT, lambda: os.kill(proc.pid, signal.SIGKILL))
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        tail = err.read().decode(errors="replace")[-2000:]
    cpu = usage.ru_utime + usage.ru_stime
    return wall, usage.ru_maxrss / 1024.0, proc.returncode, tail, cpu


def classify(paths: list[str]) -> dict[str, int]:
    counts = {"total": len(paths), "page": 0, "metadata": 0, "file": 0}
    for p in paths:
        parts = urlsplit(p).path.split("/")
        if len(parts) > 2 and parts[2] == "simple":
            counts["page"] += 1
        elif len(parts) > 2 and parts[2] == "files":
            counts["metadata" if parts[-1].endswith(".metadata") else "file"] += 1
    # "meta": every request made to learn a file's core metadata (PEP 658 or wheel ranges)
    counts["meta"] = counts["metadata"] + counts["file"]
    return counts


class Target:
    """Where the tools run: a project dir with a uv.lock, environments, request counting."""

    name: str
    project: Path
    work: Path
    server: Any = None

    def lockfix_env(self) -> dict[str, str]:
        raise NotImplementedError

    def uv_env(self, cache: Path) -> dict[str, str]:
        raise NotImplementedError

    def reset_log(self) -> None:
        if self.server is not None:
            self.server.reset_log()

    def requests(self) -> dict[str, int]:
        if self.server is None:
            return {}
        return classify([r.path for r in self.server.requests])

    # --- the four measured commands
    # (name, version) that the "changed" mode pins with `uv lock --upgrade-package`
    changed_pin: tuple[str, str] | None = None

    def lockfix(
        self,
        mode: str,
        cache: Path,
        project: Path | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> Run:
        """cold/warm/changed/full: the CLI through ``_lockfix_child`` (client counters), with
        no stored verdict; hook: the installed ``lockfix`` command as a pre-commit hook runs
        it, on a lock it has found clean before (the verdict is reused)."""
        stats = self.work / "lockfix-stats.json"
        stats.unlink(missing_ok=True)
        env = dict(self.lockfix_env(), LOCKFIX_BENCH_STATS=str(stats), **(extra_env or {}))
        if mode == "hook":
            cmd = [*LOCKFIX_COMMAND, "check", "uv.lock", "--cache-dir", str(cache)]
        else:
            shutil.rmtree(cache / "verdicts-v1", ignore_errors=True)
            if mode in ("cold", "warm", "full"):
                # the summary of the lock's last clean check, which "changed" carries over
                # (lockfix.carryover): these modes check the lock in full
                shutil.rmtree(cache / "summaries-v1", ignore_errors=True)
            cmd = [str(PY), "-m", "benchmarks._lockfix_child", "check", "uv.lock"]
            cmd += ["--cache-dir", str(cache), "--format", "json"]
        self.reset_log()
        wall, rss, rc, tail, cpu = run_child(cmd, project or self.project, env)
        run = Run("lockfix", mode, wall, rss, rc, cpu, self.requests(), stderr_tail=tail)
        if stats.exists():
            run.client_stats = json.loads(stats.read_text())
        if rc not in (0, 1):
            log(f"    lockfix exited {rc}: {tail.strip()[-500:]}")
        return run

    def uv_check(self, cache: Path, mode: str = "warm", project: Path | None = None) -> Run:
        cmd = [str(uv_bin()), "lock", "--check"]
        self.reset_log()
        wall, rss, rc, tail, cpu = run_child(cmd, project or self.project, self.uv_env(cache))
        if rc != 0:
            log(f"    uv lock --check exited {rc}: {tail.strip()[-500:]}")
        return Run("uv", mode, wall, rss, rc, cpu, self.requests(), stderr_tail=tail)

    def uv_lock_cold(self, rep: int) -> Run:
        proj = self.work / f"cold-uv-{rep}"
        cache = self.work / f"cold-uv-cache-{rep}"
        shutil.rmtree(proj, ignore_errors=True)
        shutil.rmtree(cache, ignore_errors=True)
        proj.mkdir(parents=True)
        shutil.copy2(self.project / "pyproject.toml", proj / "pyproject.toml")
        self.reset_log()
        wall, rss, rc, tail, cpu = run_child([str(uv_bin()), "lock"], proj, self.uv_env(cache))
        run = Run("uv", "cold", wall, rss, rc, cpu, self.requests(), stderr_tail=tail)
        if rc != 0:
            log(f"    uv lock exited {rc}: {tail.strip()[-500:]}")
        elif (
            self.server is not None
            and (proj / "uv.lock").read_text() != (self.project / "uv.lock").read_text()
        ):
            log("    note: the cold uv lock differs from the benchmarked lock")
        shutil.rmtree(proj, ignore_errors=True)
        shutil.rmtree(cache, ignore_errors=True)
        return run

    def changed_project(self) -> Path | None:
        """A copy of the project whose lock `uv lock --upgrade-package <name>==<version>` has
        changed (with uv's warm cache): the lock a commit right after `uv lock` checks."""
        if self.changed_pin is None:
            return None
        name, version = self.changed_pin
        proj = self.work / "changed"
        shutil.rmtree(proj, ignore_errors=True)
        proj.mkdir(parents=True)
        for f in ("pyproject.toml", "uv.lock"):
            shutil.copy2(self.project / f, proj / f)
        cmd = [str(uv_bin()), "lock", "--upgrade-package", f"{name}=={version}"]
        _, _, rc, tail, _ = run_child(cmd, proj, self.uv_env(self.uv_warm_cache))
        before = split_blocks((self.project / "uv.lock").read_text())
        after = split_blocks((proj / "uv.lock").read_text())
        if rc != 0 or before == after:
            log(f"  changed mode skipped: uv lock --upgrade-package {name}=={version}: {tail}")
            return None
        differ = sum(1 for b in after if b not in set(before))
        log(f"  changed lock: {name} pinned to {version}; {differ} of {len(after)} blocks differ")
        return proj

    def cleanup(self) -> None:
        if self.server is not None:
            self.server.stop()
        shutil.rmtree(self.work, ignore_errors=True)


def uv_bin() -> Path:
    from fixtures.uvrun import uv_bin as _uv_bin

    return _uv_bin(UV_VERSION)


def split_blocks(text: str) -> list[str]:
    from lockfix.lock.lockfile import split_blocks as split

    return split(text)


def count_packages(lock: Path) -> int:
    return sum(1 for line in lock.read_text().splitlines() if line == "[[package]]")


# --------------------------------------------------------------------------- targets


def _fast_index(built: Any) -> None:
    """Memoize ``BuiltIndex.files``: the fixture server rebuilds that dict (all files of the
    index) on every file request, which for 9,000+ files costs the *server* more than the
    clients spend.  Benchmarking the clients, not the fixture, we freeze it."""
    from fixtures.builder import BuiltIndex

    class _FrozenIndex(BuiltIndex):
        @functools.cached_property
        def files(self):  # type: ignore[override]
            return {f.filename: f for p in self.projects.values() for f in p.files}

    for idx in built.indexes.values():
        idx.__class__ = _FrozenIndex


class SyntheticTarget(Target):
    def __init__(self, n: int, seed: int = 0) -> None:
        from benchmarks import synthetic
        from fixtures.server import IndexServer

        self.name = f"synthetic {n}"
        built, roots = synthetic.build_cached(n, seed, log=log)
        scenario, _ = synthetic.synthetic_scenario(n, seed)
        older = [p["name"] for p in scenario["indexes"][0]["packages"] if p["version"] == "1.0.0"]
        older = [name for name in older if name.startswith("b")]
        # the "changed" mode re-pins the last package with an older release (few dependents)
        self.changed_pin = (max(older), "1.0.0") if older else None
        _fast_index(built)
        self.server = IndexServer(built, port=0).start()
        self.work = Path(tempfile.mkdtemp(prefix=f"lockfix-bench-n{n}-"))
        self.project = self.work / "project"
        self.project.mkdir()
        (self.project / "pyproject.toml").write_text(
            synthetic.pyproject_text(self.server.index_url(synthetic.INDEX), roots)
        )
        self.uv_warm_cache = self.work / "uv-cache"
        t0 = time.perf_counter()
        self.reset_log()
        _, _, rc, tail, _ = run_child(
            [str(uv_bin()), "lock"], self.project, self.uv_env(self.uv_warm_cache)
        )
        if rc != 0:
            self.cleanup()
            raise RuntimeError(f"uv lock of the synthetic project failed:\n{tail}")
        self.packages = count_packages(self.project / "uv.lock") - 1  # minus the project
        log(
            f"  locked with uv {UV_VERSION}: {self.packages} packages + project in "
            f"{time.perf_counter() - t0:.1f}s, {self.requests()['total']} requests"
        )

    def lockfix_env(self) -> dict[str, str]:
        from fixtures.uvrun import uv_env

        env = {k: v for k, v in uv_env(self.work).items() if not k.startswith("UV_")}
        env["PYTHONPATH"] = str(REPO)
        return env

    def uv_env(self, cache: Path) -> dict[str, str]:
        from fixtures.uvrun import uv_env

        return uv_env(self.work, UV_VERSION, UV_CACHE_DIR=str(cache))


class RealTarget(Target):
    """fixtures/bench/real against https://pypi.org (copied to a temp dir; nothing written back)."""

    # an older release than the lock's: a leaf that uv re-pins without touching the rest
    changed_pin = ("certifi", "2025.8.3")

    def __init__(self) -> None:
        self.name = "real PyPI"
        self.server = None
        self.work = Path(tempfile.mkdtemp(prefix="lockfix-bench-real-"))
        self.project = self.work / "project"
        self.project.mkdir()
        for f in ("pyproject.toml", "uv.lock"):
            shutil.copy2(REAL_PROJECT / f, self.project / f)
        self.packages = count_packages(self.project / "uv.lock")
        self.uv_warm_cache = self.work / "uv-cache"

    def _base_env(self) -> dict[str, str]:
        return {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("UV_") and k not in ("VIRTUAL_ENV", "CONDA_PREFIX")
        }

    def lockfix_env(self) -> dict[str, str]:
        return dict(self._base_env(), PYTHONPATH=str(REPO))

    def uv_env(self, cache: Path) -> dict[str, str]:
        from fixtures.uvrun import base_python

        return dict(
            self._base_env(),
            UV_CACHE_DIR=str(cache),
            UV_PYTHON=base_python(),
            UV_PYTHON_DOWNLOADS="never",
            UV_NO_PROGRESS="1",
            XDG_CONFIG_HOME=str(self.work / "xdg-config"),
        )


# --------------------------------------------------------------------------- measuring


def measure(target: Target, reps: int, cold_reps: int) -> dict[str, Any]:
    """Cold pairs first; the first cold lockfix run's cache becomes the warm cache (so the
    cache fill costs no extra run), uv's warm cache is the one of the initial lock."""
    lf_warm_cache = target.work / "lockfix-cache"
    runs: list[Run] = []
    for i in range(max(1, cold_reps)):
        order = ("lockfix", "uv") if i % 2 == 0 else ("uv", "lockfix")
        pair = {}
        for tool in order:
            if tool == "lockfix":
                cache = lf_warm_cache if i == 0 else target.work / f"lockfix-cold-{i}"
                shutil.rmtree(cache, ignore_errors=True)
                pair[tool] = target.lockfix("cold", cache)
                if i:
                    shutil.rmtree(cache, ignore_errors=True)
            else:
                pair[tool] = target.uv_lock_cold(i)
        runs += [pair["lockfix"], pair["uv"]]
        log(
            f"  cold {i + 1}/{cold_reps}: lockfix {pair['lockfix'].wall:.2f}s "
            f"(cpu {pair['lockfix'].cpu:.1f}s) uv {pair['uv'].wall:.2f}s"
        )
    up = target.uv_check(target.uv_warm_cache)
    log(f"  warm-up uv lock --check {up.wall:.2f}s rc={up.rc}")
    for mode in ("warm", "hook"):
        if mode == "hook":
            # untimed: the first text-format check stores the verdict the hook runs reuse
            prime = target.lockfix("hook", lf_warm_cache)
            log(f"  hook priming run {prime.wall:.2f}s rc={prime.rc}")
        for i in range(reps):
            order = ("lockfix", "uv") if i % 2 == 0 else ("uv", "lockfix")
            pair = {}
            for tool in order:
                pair[tool] = (
                    target.lockfix(mode, lf_warm_cache)
                    if tool == "lockfix"
                    else target.uv_check(target.uv_warm_cache, mode)
                )
            runs += [pair["lockfix"], pair["uv"]]
            log(
                f"  {mode} {i + 1}/{reps}: lockfix {pair['lockfix'].wall:.3f}s "
                f"(cpu {pair['lockfix'].cpu:.2f}s) uv {pair['uv'].wall:.3f}s"
            )
    runs += measure_changed(target, lf_warm_cache, reps)
    return {
        "target": target.name,
        "packages": target.packages,
        "runs": [asdict(r) for r in runs],
        "summary": summarize(runs),
    }


def measure_changed(target: Target, lf_warm_cache: Path, reps: int) -> list[Run]:
    """The check right after `uv lock` changed the lock: every page and file's metadata
    cached, the stored facts of the old lock's packages, no verdict. "changed" is lockfix
    as shipped; "full" the same with LOCKFIX_PACKAGE_FACTS=0 (every package analysed).
    Each run starts from the same copy of the cache, so none sees the facts of another."""
    changed = target.changed_project()
    if changed is None:
        return []
    # The hook's check of the lock before, in the same directory, as on the commit before:
    # it leaves the summary that the check of the changed lock carries over.
    new_lock = (changed / "uv.lock").read_text()
    shutil.copy2(target.project / "uv.lock", changed / "uv.lock")
    before = target.lockfix("before", lf_warm_cache, changed)
    (changed / "uv.lock").write_text(new_lock)
    log(f"  lock before, checked in the changed project {before.wall:.2f}s rc={before.rc}")
    # the new files' metadata and pages, without facts of the changed blocks
    fill = target.lockfix("fill", lf_warm_cache, changed, {"LOCKFIX_PACKAGE_FACTS": "0"})
    log(f"  changed-lock fill {fill.wall:.2f}s rc={fill.rc}")
    snapshot = target.work / "lockfix-changed-cache"
    shutil.rmtree(snapshot, ignore_errors=True)
    shutil.copytree(lf_warm_cache, snapshot)
    if KEEP_CHANGED is not None:  # for benchmarks.phases: the project and its cache
        shutil.rmtree(KEEP_CHANGED, ignore_errors=True)
        shutil.copytree(changed, KEEP_CHANGED / "project")
        shutil.copytree(snapshot, KEEP_CHANGED / "cache")
        log(f"  changed project and cache kept in {KEEP_CHANGED}")
    scratch = target.work / "lockfix-changed-run"
    runs: list[Run] = []
    for i in range(reps):
        for mode in ("changed", "full") if i % 2 == 0 else ("full", "changed"):
            extra = {"LOCKFIX_PACKAGE_FACTS": "0"} if mode == "full" else {}
            pair = {}
            for tool in ("lockfix", "uv") if i % 2 == 0 else ("uv", "lockfix"):
                if tool == "lockfix":
                    shutil.rmtree(scratch, ignore_errors=True)
                    shutil.copytree(snapshot, scratch)
                    pair[tool] = target.lockfix(mode, scratch, changed, extra)
                else:
                    pair[tool] = target.uv_check(target.uv_warm_cache, mode, changed)
            runs += [pair["lockfix"], pair["uv"]]
            log(
                f"  {mode} {i + 1}/{reps}: lockfix {pair['lockfix'].wall:.3f}s "
                f"(cpu {pair['lockfix'].cpu:.2f}s, {pair['lockfix'].rss_mb:.0f} MB) "
                f"uv {pair['uv'].wall:.3f}s"
            )
    shutil.rmtree(scratch, ignore_errors=True)
    return runs


def _median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def summarize(runs: list[Run]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for mode in MODES:
        lf = [r for r in runs if r.tool == "lockfix" and r.mode == mode]
        uv = [r for r in runs if r.tool == "uv" and r.mode == mode]
        m: dict[str, Any] = {}
        for tool, rs in (("lockfix", lf), ("uv", uv)):
            m[tool] = {
                "wall_median": _median([r.wall for r in rs]),
                "wall_min": min((r.wall for r in rs), default=float("nan")),
                "wall_max": max((r.wall for r in rs), default=float("nan")),
                "cpu_median": _median([r.cpu for r in rs]),
                "rss_median_mb": _median([r.rss_mb for r in rs]),
                "rss_max_mb": max((r.rss_mb for r in rs), default=float("nan")),
                "requests_median": _median([r.requests.get("total", 0) for r in rs])
                if rs and rs[0].requests
                else None,
                "meta_requests_max": max(r.requests.get("meta", 0) for r in rs)
                if rs and rs[0].requests
                else None,
                "page_requests_median": _median([r.requests.get("page", 0) for r in rs])
                if rs and rs[0].requests
                else None,
                "exit_codes": sorted({r.rc for r in rs}),
            }
            stats = [r.client_stats for r in rs if r.client_stats]
            if stats:
                m[tool]["client_requests_median"] = _median([s["requests"] for s in stats])
                m[tool]["client_meta_requests_max"] = max(
                    s["metadata_pep658"] + s["range"] + s["full_download"] for s in stats
                )
        # median of the per-pair ratios (pairs were run back to back)
        m["ratio"] = _median([a.wall / b.wall for a, b in zip(lf, uv, strict=False)])
        out[mode] = m
    return out


# --------------------------------------------------------------------------- report


def _fmt_req(d: dict[str, Any]) -> str:
    if d.get("requests_median") is not None:
        return f"{d['requests_median']:.0f}/{d['meta_requests_max']}"
    if d.get("client_requests_median") is not None:
        return f"{d['client_requests_median']:.0f}/{d['client_meta_requests_max']}*"
    return "n/a"


def table(results: list[dict[str, Any]]) -> str:
    head = (
        f"{'lock':<16} {'pkgs':>5} {'mode':<7} {'lockfix s':>9} {'uv s':>7} {'ratio':>6} "
        f"{'lockfix MB':>10} {'uv MB':>6} {'lockfix req/meta':>16} {'uv req/meta':>12}"
    )
    lines = [head, "-" * len(head)]
    for res in results:
        for mode in MODES:
            if not any(r["mode"] == mode for r in res["runs"]):
                continue
            s = res["summary"][mode]
            lf, uv = s["lockfix"], s["uv"]
            lines.append(
                f"{res['target']:<16} {res['packages']:>5} {mode:<7} "
                f"{lf['wall_median']:>9.3f} {uv['wall_median']:>7.3f} {s['ratio']:>5.2f}x "
                f"{lf['rss_max_mb']:>10.0f} {uv['rss_max_mb']:>6.0f} "
                f"{_fmt_req(lf):>16} {_fmt_req(uv):>12}"
            )
    return "\n".join(lines)


def verdicts(results: list[dict[str, Any]]) -> list[str]:
    out: list[str] = []
    synth = sorted(
        (r for r in results if r["target"].startswith("synthetic")), key=lambda r: r["packages"]
    )
    if len(synth) >= 2:
        small, big = synth[0], synth[-1]
        for mode in ("warm", "cold"):
            g = (
                big["summary"][mode]["lockfix"]["wall_median"]
                / (small["summary"][mode]["lockfix"]["wall_median"])
            )
            ok = "OK" if g < GROWTH_TARGET else "MISSED"
            out.append(
                f"growth {mode} lockfix {big['packages']}/{small['packages']} pkgs: "
                f"{g:.1f}x (target < {GROWTH_TARGET:.0f}x) {ok}"
            )
    if synth:
        big = synth[-1]
        mem = max(big["summary"][m]["lockfix"]["rss_max_mb"] for m in ("warm", "cold"))
        ok = "OK" if mem < MEMORY_TARGET_MB else "MISSED"
        out.append(
            f"peak memory lockfix on {big['packages']} pkgs: {mem:.0f} MB "
            f"(target < {MEMORY_TARGET_MB:.0f} MB) {ok}"
        )
    for r in results:
        lf = r["summary"]["warm"]["lockfix"]
        meta = lf["meta_requests_max"]
        if meta is None:
            meta = lf.get("client_meta_requests_max")
        if meta is not None:
            ok = "OK" if meta == 0 else "MISSED"
            out.append(f"warm metadata requests lockfix, {r['target']}: {meta} (target 0) {ok}")
        h, w, c = (r["summary"][m]["ratio"] for m in ("hook", "warm", "cold"))
        out.append(
            f"ratio lockfix/uv, {r['target']}: hook {h:.2f}x (target <= 2x) "
            f"{'OK' if h <= 2 else 'MISSED'}, warm {w:.2f}x, cold {c:.2f}x (target <= 1x) "
            f"{'OK' if c <= 1 else 'MISSED'}"
        )
        if any(run["mode"] == "changed" for run in r["runs"]):
            ch, full = r["summary"]["changed"], r["summary"]["full"]
            wall, ratio = ch["lockfix"]["wall_median"], ch["ratio"]
            without = (
                f"without stored facts {full['lockfix']['wall_median']:.3f}s, {full['ratio']:.2f}x"
            )
            if r["target"].startswith("synthetic"):  # the targets are set on the real lock
                out.append(
                    f"changed lock, {r['target']}: lockfix {wall:.3f}s, {ratio:.2f}x uv lock "
                    f"--check; {without}"
                )
                continue
            ok = wall <= CHANGED_TARGET_S and ratio <= CHANGED_TARGET_RATIO
            out.append(
                f"changed lock, {r['target']}: lockfix {wall:.3f}s (target <= "
                f"{CHANGED_TARGET_S}s), {ratio:.2f}x uv lock --check (target <= "
                f"{CHANGED_TARGET_RATIO:.0f}x) {'OK' if ok else 'MISSED'}; {without}"
            )
    return out


LEGEND = """\
hook: the installed `lockfix check uv.lock` on a lock it found clean before (its stored
verdict is reused: what a pre-commit hook pays on most commits) vs uv lock --check (warm uv
cache). warm: lockfix check with every page, metadata and package fact cached but no stored
verdict vs uv lock --check. changed: the lock after `uv lock --upgrade-package` re-pinned
one package, every page and metadata cached, the old lock's package facts stored, no
verdict, vs uv lock --check of that lock; full: the same with LOCKFIX_PACKAGE_FACTS=0 (every
package analysed, as before package facts). cold: lockfix check (empty --cache-dir) vs uv
lock (empty UV_CACHE_DIR, no uv.lock). Times: medians of wall seconds; ratio: median over
back-to-back pairs of lockfix/uv; MB: peak RSS (max over runs, os.wait4 of each child);
req/meta: median total HTTP requests / max requests for core metadata (PEP 658 .metadata +
wheel reads) from the loopback server log (* = lockfix's own client counters, real PyPI)."""


# --------------------------------------------------------------------------- profile


def profile_warm(n: int, top: int = 30) -> str:
    import io
    import pstats

    target = SyntheticTarget(n)
    try:
        cache = target.work / "lockfix-cache"
        target.lockfix("fill", cache)
        prof = target.work / "warm.prof"
        env = dict(target.lockfix_env(), LOCKFIX_BENCH_PROFILE=str(prof))
        cmd = [str(PY), "-m", "benchmarks._lockfix_child", "check", "uv.lock"]
        cmd += ["--cache-dir", str(cache), "--format", "json"]
        wall, _, rc, _, _ = run_child(cmd, target.project, env)
        buf = io.StringIO()
        st = pstats.Stats(str(prof), stream=buf)
        buf.write(f"warm lockfix check, synthetic {n} (under cProfile: {wall:.2f}s, rc={rc})\n")
        st.sort_stats("tottime").print_stats(top)
        st.sort_stats("cumulative").print_stats(top)
        return buf.getvalue()
    finally:
        target.cleanup()


# --------------------------------------------------------------------------- main


def parse_sizes(text: str) -> list[int]:
    return [int(x) for x in text.replace(" ", "").split(",") if x and x != "0"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    ap.add_argument(
        "--sizes",
        default=",".join(map(str, DEFAULT_SIZES)),
        help="synthetic lock sizes, comma-separated ('' or 0: none)",
    )
    ap.add_argument("--reps", type=int, default=5, help="warm pairs per lock (default 5)")
    ap.add_argument("--cold-reps", type=int, default=3, help="cold pairs per lock (default 3)")
    ap.add_argument(
        "--real",
        action="store_true",
        help="also benchmark fixtures/bench/real/uv.lock against real PyPI",
    )
    ap.add_argument("--json", type=Path, help="write all runs and summaries here")
    ap.add_argument(
        "--profile",
        type=int,
        metavar="N",
        help="instead: cProfile one warm lockfix check of the N-package lock",
    )
    ap.add_argument(
        "--keep-changed",
        type=Path,
        metavar="DIR",
        help="keep the changed lock's project and cache in DIR/project, DIR/cache",
    )
    args = ap.parse_args(argv)
    global KEEP_CHANGED
    KEEP_CHANGED = args.keep_changed

    if not uv_bin().exists():
        log(f"missing {uv_bin()} (run `make tools`)")
        return 2
    # An installed lockfix has its bytecode compiled (pip does it). This checkout is an
    # editable install, and where PYTHONDONTWRITEBYTECODE is set (this sandbox) every run
    # would compile lockfix's modules afresh: ~0.1 s that no user pays.
    import lockfix

    compileall.compile_dir(Path(lockfix.__file__).parent, quiet=1)
    if args.profile:
        print(profile_warm(args.profile))
        return 0

    results: list[dict[str, Any]] = []
    started = time.perf_counter()
    targets: list[Any] = [("synthetic", n) for n in parse_sizes(args.sizes)]
    if args.real:
        targets.append(("real", None))
    for kind, n in targets:
        log(f"== {kind} {n or ''}".rstrip())
        target = SyntheticTarget(n) if kind == "synthetic" else RealTarget()
        try:
            results.append(measure(target, args.reps, args.cold_reps))
        finally:
            target.cleanup()
    elapsed = time.perf_counter() - started

    report = [
        f"lockfix benchmark — uv {UV_VERSION}, Python {sys.version.split()[0]}, "
        f"{os.cpu_count()} cores, {args.reps} warm / {args.cold_reps} cold pairs, "
        f"{elapsed / 60:.1f} min",
        "",
        table(results),
        "",
        *verdicts(results),
        "",
        LEGEND,
    ]
    print("\n".join(report))
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "uv": UV_VERSION,
                    "python": sys.version,
                    "cores": os.cpu_count(),
                    "reps": args.reps,
                    "cold_reps": args.cold_reps,
                    "results": results,
                },
                indent=1,
            )
        )
        log(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
