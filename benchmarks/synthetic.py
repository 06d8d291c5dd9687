"""Seeded synthetic package indexes of N packages for the benchmark.

``synthetic_scenario(n, seed)`` returns a :func:`fixtures.builder.build_scenario` dict with
one index (``pypi``) holding:

* ``n`` *reachable* packages ``bNNNNN`` forming a random DAG: package ``j`` gets 1–2 parents
  among the packages before it, so everything is reachable from the first ``roots``
  packages, which the project depends on;
* a few unreachable "other roots" (index noise the lock never mentions);
* ~25 % of the packages with an older second version (uv has to pick the newest);
* ~4 % of the edges guarded by environment markers, ~3 % of the packages exposing an extra
  that some parent requests (``bNNNNN[fast]``), some ``Requires-Python``;
* 1–3 tiny wheels per release (``py3-none-any`` plus platform wheels).

``build_cached(n, seed)`` builds it once under ``$LOCKFIX_BENCH_CACHE`` (default
``<tmp>/lockfix-bench``) keyed by ``n``/``seed``/generator version and reuses it afterwards.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from fixtures.builder import BuiltScenario, build_scenario

GENERATOR_VERSION = 1
INDEX = "pypi"

MARKERS = (
    'sys_platform == "win32"',
    'sys_platform == "linux"',
    'platform_machine == "x86_64"',
    'python_version < "3.13"',
    'implementation_name == "cpython"',
)
PLATFORM_TAGS = (
    "py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64",
    "py3-none-win_amd64",
    "py3-none-macosx_11_0_arm64",
)


def pkg_name(i: int) -> str:
    return f"b{i:05d}"


def synthetic_scenario(n: int, seed: int = 0) -> tuple[dict[str, Any], list[str]]:
    """(scenario dict, root requirement strings for the project)."""
    rng = random.Random(f"lockfix-bench:{n}:{seed}:{GENERATOR_VERSION}")
    roots = max(3, n // 50)
    deps: list[list[str]] = [[] for _ in range(n)]
    extras: dict[int, list[str]] = {}  # package -> its extra's requirements
    has_extra: set[int] = set()
    for j in range(roots, n):
        # parents mostly "nearby" (a deep graph) with some long-range edges
        k = 1 if rng.random() < 0.6 else 2
        parents = set()
        for _ in range(k):
            if rng.random() < 0.7:
                lo = max(0, j - 60)
                parents.add(rng.randrange(lo, j))
            else:
                parents.add(rng.randrange(0, j))
        for p in parents:
            target = pkg_name(j)
            if rng.random() < 0.03:
                has_extra.add(j)
                target += "[fast]"
            spec = target
            r = rng.random()
            if r < 0.3:
                spec += ">=1.0"
            elif r < 0.35:
                spec += "<3"
            if rng.random() < 0.04:
                spec += f"; {rng.choice(MARKERS)}"
            deps[p].append(spec)
    # the "fast" extra pulls in one more (later or earlier-unrelated) package
    for j in sorted(has_extra):
        extra_dep = pkg_name(rng.randrange(roots, n))
        if extra_dep != pkg_name(j):
            extras[j] = [f'{extra_dep}; extra == "fast"']
        else:
            extras[j] = []
    packages: list[dict[str, Any]] = []
    for i in range(n):
        name = pkg_name(i)
        requires = sorted(set(deps[i])) + extras.get(i, [])
        nwheels = rng.choice((1, 1, 1, 2, 3))
        tags = ["py3-none-any", *PLATFORM_TAGS[: nwheels - 1]]
        base: dict[str, Any] = {
            "name": name,
            "version": "2.0.0",
            "requires-dist": requires,
            "tags": tags,
            "upload-time": f"2025-{1 + i % 12:02d}-{1 + i % 28:02d}T12:00:00.000000Z",
        }
        if i in extras:
            base["provides-extra"] = ["fast"]
        if rng.random() < 0.2:
            base["requires-python"] = ">=3.9"
        packages.append(base)
        if rng.random() < 0.25:
            old = dict(base, version="1.0.0", tags=["py3-none-any"])
            old["upload-time"] = "2024-01-01T00:00:00.000000Z"
            old["requires-dist"] = [r for r in requires if "extra ==" not in r][:1]
            old.pop("provides-extra", None)
            packages.append(old)
    for k in range(max(1, n // 100)):  # unreachable index noise
        packages.append({"name": f"other{k:04d}", "version": "1.0.0", "tags": ["py3-none-any"]})
    return {"indexes": [{"name": INDEX, "packages": packages}]}, [pkg_name(i) for i in range(roots)]


def cache_root() -> Path:
    env = os.environ.get("LOCKFIX_BENCH_CACHE")
    return Path(env) if env else Path(tempfile.gettempdir()) / "lockfix-bench"


def build_cached(n: int, seed: int = 0, log=None) -> tuple[BuiltScenario, list[str]]:  # type: ignore[no-untyped-def]
    """Build (or reuse) the scenario of ``n`` packages; returns (built, root requirements)."""
    scenario, roots = synthetic_scenario(n, seed)
    digest = hashlib.sha256(json.dumps(scenario, sort_keys=True).encode()).hexdigest()[:12]
    out = cache_root() / f"synthetic-n{n}-s{seed}-v{GENERATOR_VERSION}-{digest}"
    stamp = out / ".complete"
    t0 = time.perf_counter()
    if not stamp.exists() and out.exists():
        shutil.rmtree(out)
    # build_scenario skips rewriting files whose bytes are unchanged, so a reuse only
    # re-derives the in-memory records (hashes, metadata) from the deterministic builder.
    built = build_scenario(scenario, out)
    stamp.write_text("ok\n")
    if log:
        files = sum(len(p.files) for p in built[INDEX].projects.values())
        log(f"  scenario n={n}: {files} files in {time.perf_counter() - t0:.1f}s ({out})")
    return built, roots


def pyproject_text(index_url: str, roots: list[str]) -> str:
    deps = "".join(f'    "{r}",\n' for r in roots)
    return (
        "[project]\n"
        'name = "bench-workspace"\n'
        'version = "0.1.0"\n'
        'requires-python = ">=3.11"\n'
        f"dependencies = [\n{deps}]\n"
        "\n"
        "[tool.uv]\n"
        "package = false\n"
        "\n"
        "[[tool.uv.index]]\n"
        'name = "bench"\n'
        f'url = "{index_url}"\n'
        "default = true\n"
    )
