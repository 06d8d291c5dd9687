"""Wheels that disagree: one version whose wheels declare different dependencies.

uv reads the metadata of one wheel per version and assumes every wheel says the same.
Real packages break that: PyTorch nightly ``+cu126`` wheels declare the nvidia packages
on Linux x86_64 only, tensorflow-cpu's Linux and Windows wheels differ, openmm 8.3.1's
Linux wheel has a ``cuda12`` extra its macOS wheel lacks.

:func:`merge_wheel_metadata` turns the metadata of all locked wheels of a version into
one :class:`CoreMetadata` whose requirements hold exactly where the wheel declaring them
is the one an installer picks among the *locked* wheels, so the planner, unchanged,
writes edges with the right markers. When every wheel agrees the first metadata is
returned as is.

The installer's choice follows ``packaging.tags`` (the order pip uses and uv keeps to):
among the wheels compatible with an environment the one whose tag comes first in the
environment's ``sys_tags()`` order wins, the order being built from ``cpython_tags``,
``generic_tags`` (PyPy), ``compatible_tags`` and ``mac_platforms``. Environments are
enumerated as cells — (sys_platform, platform_machine) from the wheels' platform tags
plus "any other platform", each Python minor the tags mention (and one cell above),
CPython / PyPy / other — and a wheel's selection marker is the union of the cells it
wins. Markers cannot tell glibc from musl, a 32-bit Python on 64-bit Windows, or the OS
release apart: a glibc system new enough for every manylinux tag, a 64-bit Python and a
macOS as recent as every macOS tag are assumed; a musllinux wheel, or a ``win32`` wheel on
64-bit Windows, is picked only where no other wheel fits.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Iterator, Sequence
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Final

from lockfix.analysis.findings import Finding, Plan
from lockfix.dist.metadata import CoreMetadata
from lockfix.dist.names import canonicalize_name
from lockfix.dist.requirements import parse_requirement, requirement_marker, unreadable_lines
from lockfix.dist.tags import platform_environments
from lockfix.lock.lockfile import PackageId
from lockfix.markers import InvalidMarker, Marker

if TYPE_CHECKING:
    # packaging.tags brings the running platform's detection: imported where wheel tags
    # are read, which a check of versions whose wheels all agree never does
    from packaging.tags import Tag

__all__ = [
    "Cell",
    "MergedMetadata",
    "WheelGroup",
    "installer_choice",
    "loose_metadata",
    "merge_wheel_metadata",
    "promote_disagreements",
    "wheel_selections",
]

Platform = tuple[str, str]  # (sys_platform, platform_machine)
IMPLEMENTATIONS = ("CPython", "PyPy", "other")


@cache
def _cp() -> re.Pattern[str]:
    return re.compile(r"^cp(?P<major>\d)(?P<minor>\d+)$")


@cache
def _pp() -> re.Pattern[str]:
    return re.compile(r"^pp(?P<major>\d)(?P<minor>\d+)$")


@cache
def _py() -> re.Pattern[str]:
    return re.compile(r"^py(?P<major>\d)(?P<minor>\d*)$")


class Cell:
    """One class of environments: a platform (None: none the tags name), a Python, an
    implementation. ``top`` means "this minor and every later one"."""

    __slots__ = ("implementation", "platform", "python", "top")
    platform: Final[Platform | None]
    python: Final[tuple[int, int]]
    implementation: Final[str]
    top: Final[bool]

    def __init__(
        self,
        platform: Platform | None,
        python: tuple[int, int],
        implementation: str,
        top: bool = False,
    ) -> None:
        self.platform = platform
        self.python = python
        self.implementation = implementation
        self.top = top

    def _key(self) -> tuple[object, ...]:
        return (self.platform, self.python, self.implementation, self.top)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Cell):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return "Cell({!r}, {!r}, {!r}, top={!r})".format(*self._key())

    def marker(self, platforms: Iterable[Platform]) -> Marker:
        return (
            _platform_marker(self.platform, tuple(sorted(platforms)))
            & _python_marker(self.python, self.top)
            & _implementation_marker(self.implementation)
        )


@lru_cache(maxsize=1024)
def _platform_marker(platform: Platform | None, known: tuple[Platform, ...]) -> Marker:
    if platform is not None:
        return Marker.parse(
            f"sys_platform == '{platform[0]}' and platform_machine == '{platform[1]}'"
        )
    result = Marker.TRUE
    for other in known:
        result &= ~_platform_marker(other, ())
    return result


@lru_cache(maxsize=1024)
def _python_marker(python: tuple[int, int], top: bool) -> Marker:
    major, minor = python
    if major < 3:
        return Marker.parse("python_full_version < '3'")
    low = Marker.parse(f"python_full_version >= '{major}.{minor}'")
    if top:
        return low
    return low & Marker.parse(f"python_full_version < '{major}.{minor + 1}'")


@lru_cache(maxsize=8)
def _implementation_marker(implementation: str) -> Marker:
    if implementation == "other":
        return Marker.parse(
            "platform_python_implementation != 'CPython' "
            "and platform_python_implementation != 'PyPy'"
        )
    return Marker.parse(f"platform_python_implementation == '{implementation}'")


# -- the installer's preference ---------------------------------------------------------


# packaging's manylinux order: each legacy alias right after the glibc version it names.
_LEGACY_MANYLINUX = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
# Windows platform tags by machine: what a 64-bit (or ARM) Python takes, then what only a
# 32-bit Python on that machine takes.
_WINDOWS_PLATFORMS = {
    "AMD64": (("win_amd64",), ("win32",)),
    "ARM64": (("win_arm64",), ()),
    "x86": (("win32",), ()),
}


@cache
def _manylinux() -> re.Pattern[str]:
    return re.compile(r"^manylinux_2_(\d+)_")


@cache
def _musllinux() -> re.Pattern[str]:
    return re.compile(r"^musllinux_1_(\d+)_")


@cache
def _macos() -> re.Pattern[str]:
    return re.compile(r"^macosx_(\d+)_(\d+)_")


def _newest(pattern: re.Pattern[str], platforms: Iterable[str], floor: int) -> int:
    return max((int(m[1]) for p in platforms if (m := pattern.match(p))), default=floor)


def _glibc_platforms(machine: str, platforms: frozenset[str]) -> Iterator[str]:
    """Platform tags of a glibc system new enough for every manylinux tag here, in the
    order ``packaging.tags.platform_tags()`` gives on one (it has no public generator for
    another system): manylinux newest first, then plain ``linux``."""
    for minor in range(_newest(_manylinux(), platforms, 17), 4, -1):
        yield f"manylinux_2_{minor}_{machine}"
        if minor in _LEGACY_MANYLINUX:
            yield f"{_LEGACY_MANYLINUX[minor]}_{machine}"
    yield f"linux_{machine}"


def _musl_platforms(machine: str, platforms: frozenset[str]) -> Iterator[str]:
    for minor in range(_newest(_musllinux(), platforms, 0), -1, -1):
        yield f"musllinux_1_{minor}_{machine}"


def _macos_version(platforms: frozenset[str]) -> tuple[int, int]:
    """A macOS as recent as every macOS tag here (11 at least)."""
    versions = [(int(m[1]), int(m[2])) for p in platforms if (m := _macos().match(p))]
    return max([(11, 0), *versions])


def _platform_tiers(cell: Cell, platforms: frozenset[str]) -> list[list[str]]:
    """The platform tags among ``platforms`` an installer in ``cell`` takes, preferred
    first: those of the common system (glibc Linux, a 64-bit Python on Windows), then
    those only a rarer one takes (musl Linux, a 32-bit Python), which markers cannot tell
    apart; a wheel for the rarer one is picked only where nothing else fits."""
    if cell.platform is None:
        return [[]]
    system, machine = cell.platform
    tiers: tuple[Iterable[str], ...] = ()
    if system == "linux":
        tiers = (_glibc_platforms(machine, platforms), _musl_platforms(machine, platforms))
    elif system == "darwin":
        from packaging.tags import mac_platforms

        tiers = (mac_platforms(_macos_version(platforms), machine),)
    elif system == "win32":
        tiers = _WINDOWS_PLATFORMS.get(machine, ())
    return [[p for p in tier if p in platforms] for tier in tiers] or [[]]


def _sys_tags(cell: Cell, accepted: list[str], abis: frozenset[tuple[str, str]]) -> Iterator[Tag]:
    """``sys_tags()`` of the cell's Python on these platform tags. A free-threaded ABI
    (``cp313t``) is never taken: markers cannot tell a free-threaded build apart."""
    from packaging.tags import compatible_tags, cpython_tags, generic_tags

    version = cell.python
    interpreter: str | None = None
    if cell.implementation in ("CPython", "PyPy"):
        interpreter = ("cp" if cell.implementation == "CPython" else "pp") + "".join(
            map(str, version)
        )
        own = sorted(
            abi
            for name, abi in abis
            if name == interpreter and abi not in ("none", "abi3") and not abi.endswith("t")
        )
        if cell.implementation == "CPython":
            yield from cpython_tags(version, own, accepted)
        else:
            yield from generic_tags(interpreter, own, accepted)
    yield from compatible_tags(version, interpreter, accepted)


@lru_cache(maxsize=4096)
def _tag_ranks(
    cell: Cell, platforms: frozenset[str], abis: frozenset[tuple[str, str]]
) -> dict[Tag, int]:
    """Each tag an installer in ``cell`` accepts → its place in ``sys_tags()`` order there
    (``packaging.tags``, which pip follows and uv matches), for wheels with these platform
    tags and (interpreter, ABI) pairs."""
    ranks: dict[Tag, int] = {}
    tiers = _platform_tiers(cell, platforms)
    for rank, tag in enumerate(itertools.chain(*(_sys_tags(cell, t, abis) for t in tiers))):
        ranks.setdefault(tag, rank)
    return ranks


@lru_cache(maxsize=65536)
def _wheel_tags(filename: str) -> frozenset[Tag]:
    from packaging.utils import InvalidWheelFilename, parse_wheel_filename

    try:
        return parse_wheel_filename(filename)[3]
    except InvalidWheelFilename:
        return frozenset()


def installer_choice(filenames: Sequence[str], cell: Cell) -> str | None:
    """The wheel an installer in ``cell`` picks among ``filenames`` (None: none fits); on a
    tie the first listed."""
    tagged = [_wheel_tags(filename) for filename in filenames]
    every = frozenset().union(*tagged)
    ranks = _tag_ranks(
        cell,
        frozenset(tag.platform for tag in every),
        frozenset((tag.interpreter, tag.abi) for tag in every),
    )
    best: tuple[int, int] | None = None
    for position, tags in enumerate(tagged):
        for tag in tags:
            rank = ranks.get(tag)
            if rank is not None and (best is None or (rank, position) < best):
                best = (rank, position)
    return filenames[best[1]] if best else None


def _cells(filenames: Sequence[str]) -> tuple[list[Cell], set[Platform]]:
    platforms: set[Platform] = set()
    minors: set[int] = set()
    for filename in filenames:
        for tag in _wheel_tags(filename):
            platforms.update(platform_environments(tag.platform) or ())
            interpreter = tag.interpreter
            match = _cp().match(interpreter) or _pp().match(interpreter) or _py().match(interpreter)
            if match and match["major"] == "3" and match["minor"]:
                minors.add(int(match["minor"]))
    top = max(minors) + 1 if minors else 0
    pythons = [((2, 7), False)] + [((3, m), m == top) for m in range(top + 1)]
    cells = [
        Cell(platform, python, implementation, is_top)
        for platform in [*sorted(platforms), None]
        for python, is_top in pythons
        for implementation in IMPLEMENTATIONS
    ]
    return cells, platforms


def wheel_selections(filenames: Sequence[str]) -> dict[str, Marker]:
    """For each wheel, the environments in which an installer picks it among these wheels
    (FALSE for a wheel that is never picked)."""
    cells, platforms = _cells(filenames)
    result = dict.fromkeys(filenames, Marker.FALSE)
    for cell in cells:
        chosen = installer_choice(filenames, cell)
        if chosen is not None:
            result[chosen] |= cell.marker(platforms)
    return result


# -- merging ----------------------------------------------------------------------------


class WheelGroup:
    """Wheels with identical Requires-Dist and Provides-Extra, and where they are picked."""

    __slots__ = ("metadata", "selection", "wheels")
    metadata: Final[CoreMetadata]
    wheels: Final[tuple[str, ...]]
    selection: Final[Marker]  # simplified where it does not matter (no locked wheel fits)

    def __init__(self, metadata: CoreMetadata, wheels: tuple[str, ...], selection: Marker) -> None:
        self.metadata = metadata
        self.wheels = wheels
        self.selection = selection

    def __repr__(self) -> str:
        return f"WheelGroup({self.metadata!r}, {self.wheels!r}, {self.selection!r})"


class MergedMetadata:
    __slots__ = ("groups", "metadata")
    metadata: Final[CoreMetadata]
    groups: Final[tuple[WheelGroup, ...]]

    def __init__(self, metadata: CoreMetadata, groups: tuple[WheelGroup, ...]) -> None:
        self.metadata = metadata
        self.groups = groups

    def __repr__(self) -> str:
        return f"MergedMetadata({self.metadata!r}, {self.groups!r})"

    @property
    def disagree(self) -> bool:
        return len(self.groups) > 1

    def describe(self) -> str:
        """What each group declares that not every group does."""
        declared = [_declarations(group.metadata) for group in self.groups]
        common = set.intersection(*(set(d) for d in declared))
        parts = []
        for group, declarations in zip(self.groups, declared, strict=True):
            own = [line for item, line in declarations.items() if item not in common]
            where = str(group.selection) or "everywhere else"
            what = "; ".join(own[:4]) + (f"; … {len(own) - 4} more" if len(own) > 4 else "")
            parts.append(
                f"{len(group.wheels)} wheel(s) such as {group.wheels[0]} (picked where {where}) "
                + (f"declare {what}" if own else "declare nothing the others lack")
            )
        return " | ".join(parts)


def _declarations(metadata: CoreMetadata) -> dict[object, str]:
    """Each extra and requirement by meaning, with the line that declares it."""
    out: dict[object, str] = {
        ("extra", canonicalize_name(e)): f"Provides-Extra: {e}" for e in metadata.provides_extra
    }
    for key, (marker, lines) in _requirements(metadata).items():
        out[(key, marker)] = lines[0]
    return out


def _key(metadata: CoreMetadata) -> tuple[object, ...]:
    """What a wheel declares, by meaning: spelling (``numpy (>=1)`` vs ``numpy>=1``,
    marker quoting, order, extra name case) does not make wheels disagree."""
    requirements = frozenset((key, marker) for key, (marker, _) in _requirements(metadata).items())
    unparsable = frozenset(line for line in metadata.requires_dist if _parse_line(line) is None)
    extras = frozenset(canonicalize_name(e) for e in metadata.provides_extra)
    return requirements, unparsable, extras


RequirementKey = tuple[str, tuple[str, ...], str, str | None]


@lru_cache(maxsize=65536)
def _parse_line(line: str) -> tuple[RequirementKey, Marker] | None:
    """A Requires-Dist line by meaning (None: unparsable); the same lines recur across
    wheels and across calls."""
    requirement = parse_requirement(line)
    if requirement is None:
        return None
    key = (
        canonicalize_name(requirement.name),
        tuple(sorted(canonicalize_name(e) for e in requirement.extras)),
        str(requirement.specifier),
        requirement.url,
    )
    try:
        marker = requirement_marker(requirement)
    except InvalidMarker:
        return None
    return key, marker


def _requirements(metadata: CoreMetadata) -> dict[RequirementKey, tuple[Marker, list[str]]]:
    result: dict[RequirementKey, tuple[Marker, list[str]]] = {}
    for line in metadata.requires_dist:
        parsed = _parse_line(line)
        if parsed is None:
            continue
        key, marker = parsed
        old, lines = result.get(key, (Marker.FALSE, []))
        result[key] = (old | marker, [*lines, line])
    return result


def _line(key: RequirementKey, original: str, marker: Marker) -> str:
    requirement = parse_requirement(original)
    assert requirement is not None  # only lines _parse_line read come here
    extras = f"[{','.join(sorted(requirement.extras))}]" if requirement.extras else ""
    text = requirement.name + extras
    text += f" @ {requirement.url}" if requirement.url else str(requirement.specifier)
    return f"{text} ; {marker}" if not marker.is_true() else text


def merge_wheel_metadata(
    wheels: Sequence[tuple[str, CoreMetadata]], sdist: CoreMetadata | None = None
) -> MergedMetadata:
    """One metadata for all locked wheels of a version (see the module docstring).

    ``sdist`` (static metadata only) counts where no locked wheel fits. When all wheels
    agree the first wheel's metadata comes back unchanged, with a single group.
    """
    if not wheels:
        raise ValueError("no wheels")
    # Most wheels of a release carry identical lists: key each distinct pair once.
    keys: dict[tuple[tuple[str, ...], tuple[str, ...]], tuple[object, ...]] = {}
    by_key: dict[tuple[object, ...], list[tuple[str, CoreMetadata]]] = {}
    for filename, metadata in wheels:
        raw_key = (metadata.requires_dist, metadata.provides_extra)
        key = keys.get(raw_key)
        if key is None:
            key = keys[raw_key] = _key(metadata)
        by_key.setdefault(key, []).append((filename, metadata))
    first = wheels[0][1]
    if len(by_key) == 1:
        names = tuple(f for f, _ in wheels)
        return MergedMetadata(first, (WheelGroup(first, names, Marker.TRUE),))
    filenames = sorted(f for f, _ in wheels)
    selections = wheel_selections(filenames)
    raw: list[tuple[CoreMetadata, tuple[str, ...], Marker]] = []
    for members in by_key.values():
        selection = Marker.FALSE
        for filename, _ in members:
            selection |= selections[filename]
        raw.append((members[0][1], tuple(f for f, _ in members), selection))
    care = Marker.FALSE
    for _, _, selection in raw:
        care |= selection
    if sdist is not None and not care.is_true():
        sdist_key = _key(sdist)
        for i, (metadata, names, selection) in enumerate(raw):
            if _key(metadata) == sdist_key:
                raw[i] = (metadata, names, selection | ~care)
                break
        else:
            raw.append((sdist, ("(sdist)",), ~care))
        care = Marker.TRUE
    groups = tuple(
        WheelGroup(metadata, names, _simplify(selection, care))
        for metadata, names, selection in raw
    )
    return MergedMetadata(_merge(first, groups), groups)


def loose_metadata(metadatas: Sequence[CoreMetadata]) -> CoreMetadata | None:
    """Every requirement some wheel declares, each with its own marker, whichever wheel is
    picked: what a lock may install without installing anything no wheel asks for.
    None when the wheels agree."""
    if len({_key(m) for m in metadatas}) < 2:
        return None
    lines: dict[str, None] = {}
    extras: dict[str, str] = {}
    for metadata in metadatas:
        lines.update(dict.fromkeys(metadata.requires_dist))
        for extra in metadata.provides_extra:
            extras.setdefault(canonicalize_name(extra), extra)
    return metadatas[0].with_requirements(tuple(lines), tuple(extras.values()))


def _simplify(selection: Marker, care: Marker) -> Marker:
    """A short marker that agrees with ``selection`` wherever some locked wheel fits."""
    if care.is_true():
        return selection
    # Prefer a marker over the platform alone when the split is by platform.
    platform_only = selection.simplify_under(care)
    return platform_only


def _merge(first: CoreMetadata, groups: Sequence[WheelGroup]) -> CoreMetadata:
    tables = [_requirements(g.metadata) for g in groups]
    order: dict[RequirementKey, str] = {}
    for table in tables:
        for key, (_, lines) in table.items():
            order.setdefault(key, lines[0])
    requires: list[str] = []
    origins: list[tuple[str, str, str]] = []
    for key, original in order.items():
        present = [t.get(key) for t in tables]
        everywhere = [p for p in present if p is not None]
        if len(everywhere) == len(present) and len({p[0] for p in everywhere}) == 1:
            requires.extend(everywhere[0][1])
            continue
        marker = Marker.FALSE
        for group, entry in zip(groups, present, strict=True):
            if entry is not None:
                marker |= entry[0] & group.selection
        if not marker.is_false():
            line = _line(key, original, marker)
            requires.append(line)
            declared = dict.fromkeys(text for entry in present if entry for text in entry[1])
            origins.append((line, "; ".join(declared), _declared_by(groups, present)))
    for group in groups:  # kept: the planner then leaves the package unverified
        requires.extend(unreadable_lines(group.metadata.requires_dist))
    extras: dict[str, str] = {}
    for group in groups:
        for extra in group.metadata.provides_extra:
            extras.setdefault(canonicalize_name(extra), extra)
    return first.with_requirements(
        tuple(dict.fromkeys(requires)), tuple(extras.values()), tuple(origins)
    )


def _declared_by(groups: Sequence[WheelGroup], present: Sequence[object | None]) -> str:
    """Which wheels declare a requirement and which do not, and where each is picked."""
    parts = []
    for group, entry in zip(groups, present, strict=True):
        where = str(group.selection) or "everywhere else"
        parts.append(
            f"{'by' if entry is not None else 'not by'} {len(group.wheels)} wheel(s) such as "
            f"{group.wheels[0]} (picked where {where})"
        )
    return ", ".join(parts)


# -- reporting ---------------------------------------------------------------------------


def disagreement(package_id: PackageId, merged: MergedMetadata) -> Finding:
    name, version = package_id.name, package_id.version
    return Finding(
        package_id,
        "wheels-disagree",
        f"wheels of {name} {version} declare different dependencies: {merged.describe()}",
    )


def promote_disagreements(plan: Plan, warnings: list[Finding]) -> None:
    """Rank each ``wheels-disagree`` warning by the harm the lock does (``harm``).

    ``less``: the lock installs less than the wheel picked somewhere needs (a finding of
    the package that misses something, or a member's edge that lacks an extra the package
    defines): it becomes a finding. ``more``: the lock only installs, besides what the
    picked wheel needs, what another wheel of the package declares (the planner kept
    those edges): it stays a warning. Otherwise it becomes a finding when the package has
    findings and stays a warning (no harm) when its edges already match.
    """
    short: dict[PackageId, list[str]] = {}
    edges: dict[str, list[str]] = {}  # target name → members whose edge lacks an extra
    for finding in plan.findings:
        if finding.harm != "less" or finding.kind == "wheels-disagree":
            continue
        if finding.kind == "missing-extra" and finding.target:
            edges.setdefault(finding.target, []).append(f"the edge of {finding.package.name}")
        else:
            short.setdefault(finding.package, []).append(finding.target or finding.kind)
    wrong = {f.package for f in plan.findings}
    for finding in list(warnings):
        if finding.kind != "wheels-disagree":
            continue
        package_id = finding.package
        reasons = short.get(package_id, []) + edges.get(package_id.name, [])
        if reasons:
            missing = ", ".join(dict.fromkeys(reasons))
            warnings.remove(finding)
            plan.findings.append(
                finding.ranked(
                    "less",
                    f"{finding.message} — the lock installs less than a picked wheel "
                    f"needs: {missing}",
                )
            )
        elif package_id in plan.excess:
            excess = "; ".join(plan.excess[package_id])
            warnings[warnings.index(finding)] = finding.ranked(
                "more",
                f"{finding.message} — the lock installs more than the picked wheel "
                f"needs, only what another wheel declares ({excess}); kept as locked",
            )
        elif package_id in wrong:
            warnings.remove(finding)
            plan.findings.append(finding)
