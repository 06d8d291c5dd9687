"""Compare two uv locks by meaning, the way an installer sees them.

Two locks are equal in meaning when they hold the same packages and the same edges, and
when, for every environment (platform × Python × the extras/groups the conflicts allow),
walking the graph from the workspace members installs the same set and fires the same
edges (the roots outside the members too: ``[manifest] requirements`` and
``dependency-groups``). Marker spelling does not matter; what each marker decides does.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from lockfix.lock.lockfile import Lock, PackageId, parse_lock
from lockfix.markers import Marker, conflict_extra

PLATFORMS = (
    {
        "sys_platform": "linux",
        "platform_machine": "x86_64",
        "platform_system": "Linux",
        "os_name": "posix",
    },
    {
        "sys_platform": "linux",
        "platform_machine": "aarch64",
        "platform_system": "Linux",
        "os_name": "posix",
    },
    {
        "sys_platform": "darwin",
        "platform_machine": "arm64",
        "platform_system": "Darwin",
        "os_name": "posix",
    },
    {
        "sys_platform": "darwin",
        "platform_machine": "x86_64",
        "platform_system": "Darwin",
        "os_name": "posix",
    },
    {
        "sys_platform": "win32",
        "platform_machine": "AMD64",
        "platform_system": "Windows",
        "os_name": "nt",
    },
)
PYTHONS = ("3.9.7", "3.10.4", "3.11.9", "3.12.3", "3.13.1", "3.14.0")


@dataclass(frozen=True)
class Selection:
    """What the user asked to install: extras and groups of members, by (member, name)."""

    extras: frozenset[tuple[str, str]]
    groups: frozenset[tuple[str, str]]

    def describe(self) -> str:
        parts = [f"--extra {n}" for _, n in sorted(self.extras)]
        parts += [f"--group {n}" for _, n in sorted(self.groups)]
        return " ".join(parts) or "(no extras or groups)"


def environments(lock: Lock) -> Iterator[dict[str, str]]:
    for platform in PLATFORMS:
        for python in PYTHONS:
            env = dict(platform)
            env["python_full_version"] = python
            env["python_version"] = ".".join(python.split(".")[:2])
            env.setdefault("implementation_name", "cpython")
            env.setdefault("platform_python_implementation", "CPython")
            # PEP 751's list variables: nothing requested beyond the lock's own extras
            env.setdefault("extras", "")
            env.setdefault("dependency_groups", "")
            if _python_allowed(lock, python):
                yield env


def _python_allowed(lock: Lock, python: str) -> bool:
    from packaging.specifiers import SpecifierSet

    return not lock.requires_python or SpecifierSet(lock.requires_python).contains(python)


def selections(lock: Lock) -> list[Selection]:
    """Every choice of member extras/groups that the lock's conflicts allow."""
    choices: list[tuple[str, str, str]] = []
    for member in lock.members:
        choices += [(member.name, "extra", e) for e in member.optional_dependencies]
        choices += [(member.name, "group", g) for g in member.dev_dependencies]
    conflicting = [
        {(item.package, item.kind, item.name) for item in conflict_set}
        for conflict_set in lock.conflicts
    ]
    free = [c for c in choices if not any(c in s for s in conflicting)]
    result = []
    for size in range(len(choices) + 1):
        for combo in itertools.combinations([c for c in choices if c not in free], size):
            picked = set(combo)
            if any(len(picked & s) > 1 for s in conflicting):
                continue
            for free_on in (False, True):
                chosen = picked | (set(free) if free_on else set())
                result.append(
                    Selection(
                        frozenset((p, n) for p, k, n in chosen if k == "extra"),
                        frozenset((p, n) for p, k, n in chosen if k == "group"),
                    )
                )
    return list(dict.fromkeys(result))


def _active_conflict_extras(lock: Lock, selection: Selection) -> set[str]:
    active = set()
    for conflict_set in lock.conflicts:
        for item in conflict_set:
            key = (item.package, item.name)
            if (item.kind == "extra" and key in selection.extras) or (
                item.kind == "group" and key in selection.groups
            ):
                active.add(conflict_extra(item.kind, item.package, item.name))  # type: ignore[arg-type]
    return active


Edge = tuple[PackageId, PackageId, tuple[str, ...]]


def install(
    lock: Lock, env: dict[str, str], selection: Selection
) -> tuple[set[PackageId], set[Edge]]:
    """The packages and fired edges an installer gets from the members for one environment."""
    extras = _active_conflict_extras(lock, selection)
    installed: set[PackageId] = set()
    fired: set[Edge] = set()
    seen: set[tuple[PackageId, str | None]] = set()
    stack: list[tuple[PackageId, str | None]] = []
    for member in lock.members:
        stack.append((member.id, None))
        for extra in member.optional_dependencies:
            if (member.name, extra) in selection.extras:
                stack.append((member.id, "extra:" + extra))
        for group in member.dev_dependencies:
            if (member.name, group) in selection.groups:
                stack.append((member.id, "group:" + group))
    stack += _manifest_roots(lock, env)
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        package_id, table = node
        installed.add(package_id)
        package = lock.package(package_id)
        assert package is not None
        if table is None:
            deps: Iterable = package.dependencies
        elif table.startswith("extra:"):
            deps = package.optional_dependencies.get(table[6:], ())
        else:
            deps = package.dev_dependencies.get(table[6:], ())
        for dep in deps:
            if not Marker.parse(dep.marker).evaluate(env, extras):
                continue
            target = lock.resolve(dep, package).id
            fired.add((package_id, target, tuple(sorted(dep.extras))))
            stack.append((target, None))
            for extra in dep.extras:
                stack.append((target, "extra:" + extra))
    return installed, fired


def _manifest_roots(lock: Lock, env: dict[str, str]) -> list[tuple[PackageId, str | None]]:
    """``[manifest] requirements`` and every ``[manifest.dependency-groups]`` group, as uv
    installs them: the one locked version of the name whose resolution-markers hold."""
    entries = list(lock.manifest.get("requirements", ()))
    for group in lock.manifest.get("dependency-groups", {}).values():
        entries += group
    roots: list[tuple[PackageId, str | None]] = []
    for entry in entries:
        if not Marker.parse(entry.get("marker", "")).evaluate(env):
            continue
        (package,) = [
            p
            for p in lock.named(entry["name"])
            if not p.resolution_markers
            or any(Marker.parse(m).evaluate(env) for m in p.resolution_markers)
        ]
        roots.append((package.id, None))
        roots += [(package.id, "extra:" + extra) for extra in entry.get("extras", ())]
    return roots


def _edges_by_pair(lock: Lock) -> set[tuple[PackageId, PackageId]]:
    return {(p.id, lock.resolve(d, p).id) for p in lock.packages for _, _, d in p.edges()}


def semantic_differences(text_a: str, text_b: str, *, limit: int = 20) -> list[str]:
    """Human-readable differences in meaning between two locks ([] when equal)."""
    a, b = parse_lock(text_a), parse_lock(text_b)
    problems: list[str] = []
    ids_a, ids_b = {p.id for p in a.packages}, {p.id for p in b.packages}
    for package_id in sorted(ids_a - ids_b, key=lambda i: i.sort_key()):
        problems.append(f"only in first: {package_id}")
    for package_id in sorted(ids_b - ids_a, key=lambda i: i.sort_key()):
        problems.append(f"only in second: {package_id}")
    for pair in sorted(_edges_by_pair(a) ^ _edges_by_pair(b), key=str):
        problems.append(f"edge {pair[0]} -> {pair[1]} in only one lock")
    for package_id in ids_a & ids_b:
        pa, pb = a.package(package_id), b.package(package_id)
        assert pa is not None and pb is not None
        if [w.name for w in pa.wheels] != [w.name for w in pb.wheels]:
            problems.append(f"{package_id}: different wheels")
    if problems:
        return problems[:limit]
    for selection in selections(a):
        for env in environments(a):
            installed_a, fired_a = install(a, env, selection)
            installed_b, fired_b = install(b, env, selection)
            if installed_a != installed_b or fired_a != fired_b:
                platform = f"{env['sys_platform']}/{env['platform_machine']}"
                where = f"{platform} py{env['python_full_version']} {selection.describe()}"
                for package_id in sorted(installed_a ^ installed_b, key=lambda i: i.sort_key()):
                    side = "first" if package_id in installed_a else "second"
                    problems.append(f"{where}: {package_id} installed only by the {side}")
                for edge in sorted(fired_a ^ fired_b, key=str):
                    side = "first" if edge in fired_a else "second"
                    problems.append(
                        f"{where}: edge {edge[0].name} -> {edge[1].name} fires only in the {side}"
                    )
                if len(problems) >= limit:
                    return problems[:limit]
    return problems
