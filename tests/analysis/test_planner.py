"""The planner on small hand-written locks: pure, no network, one rule per test."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from lockfix.analysis.findings import Plan
from lockfix.analysis.planner import Planner
from lockfix.dist.metadata import CoreMetadata
from lockfix.lock.lockfile import parse_lock
from lockfix.lock.project import infer_config
from lockfix.markers import Marker

REGISTRY = "https://example.invalid/simple"


def lock_text(manifest: str, packages: str) -> str:
    return f"""version = 1
revision = 3
requires-python = ">=3.11"

[manifest]
{manifest}

[[package]]
name = "app"
version = "0.1.0"
source = {{ virtual = "." }}
dependencies = [
    {{ name = "lib" }},
]

[package.metadata]
requires-dist = [{{ name = "lib" }}]
{packages}"""


def package(name: str, deps: str = "", extras: str = "") -> str:
    block = (
        f'\n[[package]]\nname = "{name}"\nversion = "1.0"\nsource = {{ registry = "{REGISTRY}" }}\n'
    )
    if deps:
        block += f"dependencies = [\n{deps}]\n"
    block += (
        f'wheels = [\n    {{ url = "https://example.invalid/{name}-1.0-py3-none-any.whl",'
        ' hash = "sha256:' + "0" * 64 + '" },\n]\n'
    )
    if extras:
        block += f"\n[package.optional-dependencies]\n{extras}"
    return block


def metadata(name: str, *requires: str, extras: tuple[str, ...] = ()) -> CoreMetadata:
    return CoreMetadata(name, "1.0", tuple(requires), None, extras, (), "2.3")


def plan(text: str, *metas: CoreMetadata) -> Plan:
    lock = parse_lock(text)
    planner = Planner(lock, infer_config(lock))
    for meta in metas:
        target = next(p for p in lock.packages if p.name == meta.name)
        planner.evidence.add_metadata(target.id, meta)
    return planner.plan()


def kinds(result: Plan) -> set[tuple[str, str, str | None]]:
    """Findings, plus the names the planner would still have to fetch."""
    found = {(f.package.name, f.kind, f.target) for f in result.findings}
    return found | {(m.name, "pending", None) for m in result.pending}


EDGE = '    { name = "dep" },\n'


def test_an_edge_the_metadata_declares_is_right() -> None:
    text = lock_text("", package("lib", EDGE) + package("dep"))
    assert kinds(plan(text, metadata("lib", "dep>=1"), metadata("dep"))) == set()


def test_only_a_check_that_failed_counts_as_failed() -> None:
    """The planner takes what the checks learned from the evidence: every unverified
    package keeps its locked edges and its reason, and only a failed check is a failure."""
    from lockfix.analysis.evidence import Evidence, UnverifiedStatus

    lock = parse_lock(lock_text("", package("lib", EDGE) + package("dep")))
    lib, dep = (next(p for p in lock.packages if p.name == n) for n in ("lib", "dep"))
    evidence = Evidence()
    evidence.mark_unverified(lib.id, UnverifiedStatus.FAILED, "index page unavailable: boom")
    evidence.mark_unverified(dep.id, UnverifiedStatus.DYNAMIC, "no metadata without a build")
    result = Planner(lock, infer_config(lock), evidence).plan()
    assert result.failed == {lib.id}
    assert result.unverified == {
        lib.id: "index page unavailable: boom",
        dep.id: "no metadata without a build",
    }
    assert result.findings == [] and result.removed == [] and result.verified == 0


def test_a_finding_kind_is_written_as_its_text() -> None:
    """Reports and JSON show a kind as its text; stored facts give it back as text, and a
    text no kind has is refused rather than carried along."""
    import json

    from lockfix.analysis.findings import Finding, FindingKind
    from lockfix.cli.report import finding_json

    text = lock_text("", package("lib") + package("dep"))
    (finding,) = plan(text, metadata("lib", "dep>=1"), metadata("dep")).findings
    assert finding.kind is FindingKind.MISSING_DEPENDENCY
    assert json.loads(json.dumps(finding_json(finding)))["kind"] == "missing-dependency"
    assert f"{finding.kind}: " == "missing-dependency: "
    again = Finding(finding.package, "missing-dependency", finding.message)
    assert again.kind is FindingKind.MISSING_DEPENDENCY
    with pytest.raises(ValueError):
        Finding(finding.package, "no-such-kind", finding.message)


def test_a_missing_edge_is_found() -> None:
    text = lock_text("", package("lib") + package("dep", "") + package("other", ""))
    found = kinds(plan(text, metadata("lib", "dep"), metadata("dep"), metadata("other")))
    assert ("lib", "missing-dependency", "dep") in found


def test_manifest_excludes_drop_the_requirement() -> None:
    text = lock_text('excludes = ["dep"]', package("lib"))
    assert kinds(plan(text, metadata("lib", "dep>=1"))) == set()


def test_manifest_overrides_replace_markers_but_keep_the_extra() -> None:
    override = 'overrides = [{ name = "dep", marker = "sys_platform == \'linux\'" }]'
    edge = '    { name = "dep", marker = "sys_platform == \'linux\'" },\n'
    text = lock_text(override, package("lib", edge) + package("dep"))
    # the metadata says windows; the override says linux, and the override wins
    assert (
        kinds(plan(text, metadata("lib", "dep; sys_platform == 'win32'"), metadata("dep"))) == set()
    )


def test_dependency_metadata_stands_in_for_the_index() -> None:
    declared = '\n[[manifest.dependency-metadata]]\nname = "lib"\nrequires-dist = ["dep"]\n'
    text = lock_text(declared, package("lib", EDGE) + package("dep"))
    # the index says lib needs nothing; the project's declaration says dep
    assert kinds(plan(text, metadata("lib"), metadata("dep"))) == set()


def test_lowered_requirements_handed_over_count_only_for_their_own_metadata() -> None:
    """Requirements lowered earlier (stored by the engine) stand in for lowering the very
    metadata they came from, under the override rule they were lowered with; never for
    other metadata, or where the project declares the package's metadata."""
    from lockfix.analysis.evidence import Evidence

    def run(manifest: str, legacy: bool, same: bool) -> set[tuple[str, str, str | None]]:
        lock = parse_lock(lock_text(manifest, package("lib", EDGE) + package("dep")))
        lib, dep = (next(p for p in lock.packages if p.name == n) for n in ("lib", "dep"))
        evidence = Evidence()
        meta = metadata("lib", "dep>=1")
        evidence.add_metadata(lib.id, meta)
        evidence.add_metadata(dep.id, metadata("dep"))
        # tables that say lib requires nothing: the locked edge to dep then looks extra
        evidence.add_lowered(lib.id, meta if same else metadata("lib", "dep>=1"), legacy, {})
        return kinds(Planner(lock, infer_config(lock), evidence).plan())

    assert ("lib", "extra-dependency", "dep") in run("", legacy=False, same=True)
    assert run("", legacy=False, same=False) == set()
    assert run("", legacy=True, same=True) == set()
    declared = '\n[[manifest.dependency-metadata]]\nname = "lib"\nrequires-dist = ["dep"]\n'
    assert run(declared, legacy=False, same=True) == set()


def test_a_second_plan_reads_the_evidence_anew() -> None:
    """What a plan computed from the evidence (expected edges, which extras define
    something) is not carried over to the next plan, which may be given other metadata:
    it plans as a new planner would."""
    text = lock_text("", package("lib", EDGE) + package("dep") + package("other"))
    lib = metadata("lib", "dep[x]")
    before = metadata("dep", "other; extra == 'x'", extras=("x",))
    after = metadata("dep", "other; extra == 'x' and python_version < '3.11'", extras=("x",))
    lock = parse_lock(text)
    planner = Planner(lock, infer_config(lock))
    ids = {p.name: p.id for p in lock.packages}
    planner.evidence.add_metadata(ids["lib"], lib)
    planner.evidence.add_metadata(ids["dep"], before)
    first = kinds(planner.plan())
    planner.evidence.add_metadata(ids["dep"], after)
    again = kinds(planner.plan())
    assert again == kinds(plan(text, lib, after)) == {("other", "orphan", None)} != first


def _dep_at(version: str) -> str:
    return (
        f'\n[[package]]\nname = "dep"\nversion = "{version}"\n'
        f'source = {{ registry = "{REGISTRY}" }}\nwheels = [\n'
        f'    {{ url = "https://example.invalid/dep-{version}-py3-none-any.whl", '
        f'hash = "sha256:{"0" * 64}" }},\n]\n'
    )


def test_a_version_settled_from_what_is_installed_anyway_gets_its_edge() -> None:
    """A requirement on a name locked at two versions that neither the parent's edges nor
    the versions' forks place goes where only one of them is installed anyway: the expected
    edges computed before that was settled give way to the settled ones."""
    source = f'source = {{ registry = "{REGISTRY}" }}'
    linux, other = "sys_platform == 'linux'", "sys_platform != 'linux'"
    app_edges = (
        '    { name = "lib" },\n'
        f'    {{ name = "dep", version = "1.0", {source}, marker = "{linux}" }},\n'
        f'    {{ name = "dep", version = "2.0", {source}, marker = "{other}" }},\n'
    )
    text = lock_text("", package("lib") + _dep_at("1.0") + _dep_at("2.0"))
    lock = parse_lock(text.replace('    { name = "lib" },\n', app_edges, 1))
    planner = Planner(lock, infer_config(lock))
    for locked in lock.packages:
        if locked.name != "app":
            requires = ("dep",) if locked.name == "lib" else ()
            meta = CoreMetadata(locked.name, locked.version or "", requires, None, (), (), "2.3")
            planner.evidence.add_metadata(locked.id, meta)
    result = planner.plan()
    (edits,) = result.edits.values()
    assert [(d.version, d.marker) for d in edits.tables[(None, None)]] == [
        ("1.0", linux),
        ("2.0", other),
    ]


def test_an_extra_with_nothing_to_install_is_not_named_on_edges() -> None:
    text = lock_text("", package("lib", EDGE) + package("dep"))
    lib = metadata("lib", "dep[toml]")
    dep = metadata("dep", "tomli; python_version < '3.11' and extra == 'toml'", extras=("toml",))
    assert kinds(plan(text, lib, dep)) == set()


def test_windows_is_the_only_nt() -> None:
    edge = '    { name = "dep", marker = "sys_platform == \'win32\'" },\n'
    text = lock_text("", package("lib", edge) + package("dep"))
    assert kinds(plan(text, metadata("lib", "dep; os_name == 'nt'"), metadata("dep"))) == set()


def test_self_extras_are_inlined() -> None:
    tables = '[package.optional-dependencies]\nall = [\n    { name = "dep" },\n]\n'
    lib_block = package("lib").replace("\n[package.optional-dependencies]\n", "")
    app_edge = '    { name = "lib", extra = ["all"] },\n'
    text = lock_text("", lib_block + "\n" + tables + package("dep")).replace(
        '    { name = "lib" },\n', app_edge
    )
    lib = metadata(
        "lib", "dep; extra == 'fast'", "lib[fast]; extra == 'all'", extras=("fast", "all")
    )
    assert kinds(plan(text, lib, metadata("dep"))) == set()


def test_an_analysis_of_a_big_lock_has_a_short_repr() -> None:
    """asyncio.run reprs its main task, result included, as it restores the SIGINT handler:
    the Analysis (and a second process's ShardResult) must not render the whole lock."""
    from pathlib import Path

    from lockfix._shard import ShardResult
    from lockfix.analysis.evidence import Evidence
    from lockfix.engine import Analysis

    text = (Path(__file__).parents[2] / "fixtures/bench/real/uv.lock").read_text()
    lock = parse_lock(text)
    planner = Planner(lock, infer_config(lock))
    analysis = Analysis(lock, planner.config, planner.plan())
    assert len(repr(analysis)) < 100 and str(len(lock.packages)) in repr(analysis)
    evidence = Evidence(metadata=dict.fromkeys(range(300)))  # type: ignore[arg-type]
    assert len(repr(ShardResult(evidence=evidence))) < 100


def test_what_only_a_conflicting_combination_reaches_is_kept_as_uv_keeps_it() -> None:
    """uv prunes what no path of edge markers reaches, but counts two extras of one conflict
    set as a possible combination there; its edge markers spell such combinations out
    (NVIDIA-NeMo/Export-Deploy: torch overridden to `sys_platform == 'never'`, its CUDA
    libraries kept). lockfix must neither call them orphans nor remove them."""
    both = "(extra == 'extra-3-app-a' and extra == 'extra-3-app-b')"
    text = (
        f"""version = 1
revision = 3
requires-python = ">=3.11"
conflicts = [[
    {{ package = "app", extra = "a" }},
    {{ package = "app", extra = "b" }},
]]

[[package]]
name = "app"
version = "0.1.0"
source = {{ virtual = "." }}
dependencies = [
    {{ name = "lib", marker = "sys_platform == 'never' or {both}" }},
]

[package.optional-dependencies]
a = [
    {{ name = "other" }},
]
b = [
    {{ name = "other" }},
]
"""
        + package("lib", '    { name = "dep", marker = "sys_platform == \'linux\'" },\n')
        + package("dep")
        + package("other")
    )
    result = plan(
        text,
        metadata("lib", "dep; sys_platform == 'linux'"),
        metadata("dep"),
        metadata("other"),
    )
    assert kinds(result) == set() and result.removed == []


_REPO = Path(__file__).resolve().parents[2]
_UV_LOCKS = sorted((_REPO / "fixtures" / "locks").glob("*/reference.uv.lock")) + sorted(
    (_REPO.parent / "shared" / "real-locks").glob("*/uv.lock")
)


@pytest.mark.parametrize("path", _UV_LOCKS, ids=lambda p: p.parent.name)
def test_resolution_markers_are_written_as_uv_writes_them(path: Path) -> None:
    """For every package of a name locked at several versions, the resolution-markers a
    second version would get (from the lock's forks and where the package is installed)
    mean what uv wrote, none included."""
    lock = parse_lock(path.read_text())
    planner = Planner(lock, infer_config(lock))
    reach = planner.reachability.compute()
    counts = Counter(p.name for p in lock.packages)
    checked = 0
    for package in lock.packages:
        if counts[package.name] < 2:
            continue
        here = reach.get((package.id, None, None), Marker.FALSE)
        written = planner.versions.resolution_markers(here)
        assert {Marker.parse(m) for m in written} == {
            Marker.parse(m) for m in package.resolution_markers
        }, package.id
        checked += 1
    if not checked:
        pytest.skip("no name is locked at several versions")
