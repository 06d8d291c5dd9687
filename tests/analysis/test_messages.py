"""What findings say: what differs, and what the index declares as it declares it."""

from __future__ import annotations

from lockfix.analysis.planner import Planner
from lockfix.analysis.wheels import merge_wheel_metadata
from lockfix.dist.metadata import CoreMetadata
from lockfix.lock.lockfile import parse_lock
from lockfix.lock.project import infer_config
from tests.analysis.test_planner import lock_text, metadata, package, plan

TOML_TABLE = 'toml = [\n    { name = "tomli" },\n]\n'


def test_an_edge_that_lacks_an_extra_says_so() -> None:
    """Where only the extras differ, the markers agree: the message must name the extra,
    not print the same marker twice."""
    edge = '    { name = "dep" },\n'
    text = lock_text(
        "", package("lib", edge) + package("dep", extras=TOML_TABLE) + package("tomli")
    )
    lib = metadata("lib", "dep[toml]")
    dep = metadata("dep", "tomli; extra == 'toml'", extras=("toml",))
    (finding,) = plan(text, lib, dep, metadata("tomli")).findings
    assert finding.kind == "wrong-marker" and finding.target == "dep"
    assert "has the wrong extras (the edge lacks extra 'toml'" in finding.message
    assert "should be" not in finding.message, finding.message
    assert finding.requirement == "dep[toml]"


def test_an_edge_with_an_extra_the_index_does_not_ask_for_says_so() -> None:
    edge = '    { name = "dep", extra = ["toml"] },\n'
    text = lock_text(
        "", package("lib", edge) + package("dep", extras=TOML_TABLE) + package("tomli")
    )
    lib = metadata("lib", "dep")
    dep = metadata("dep", "tomli; extra == 'toml'", extras=("toml",))
    findings = plan(text, lib, dep, metadata("tomli")).findings
    wrong = [f for f in findings if f.kind == "wrong-marker"]
    assert len(wrong) == 1 and "extra 'toml' is not asked for" in wrong[0].message, findings


def test_a_wrong_marker_still_shows_both_markers() -> None:
    edge = '    { name = "dep", marker = "sys_platform == \'win32\'" },\n'
    text = lock_text("", package("lib", edge) + package("dep"))
    (finding,) = plan(
        text, metadata("lib", "dep; sys_platform == 'linux'"), metadata("dep")
    ).findings
    assert "applies in the wrong environments" in finding.message
    assert "lock: \"sys_platform == 'win32'\", should be: \"sys_platform == 'linux'\"" in (
        finding.message
    )


def test_wheels_that_disagree_show_what_the_index_declares_and_where_each_wheel_is_picked() -> None:
    """The marker lockfix derives from the wheels' tags is not what the index declares: the
    finding quotes the declared line, then which wheels declare it and where each is
    picked; the JSON ``requirement`` is the declared line alone."""
    linux = "lib-1.0-cp312-cp312-manylinux_2_28_x86_64.whl"
    windows = "lib-1.0-cp312-cp312-win_amd64.whl"
    declared = 'dep==1.0; platform_machine == "x86_64"'

    def wheel(*requires: str) -> CoreMetadata:
        return CoreMetadata("lib", "1.0", requires, None, (), (), "2.3")

    merged = merge_wheel_metadata([(linux, wheel(declared)), (windows, wheel())])
    assert merged.disagree
    lock = parse_lock(lock_text("", package("lib") + package("dep")))
    planner = Planner(lock, infer_config(lock))
    by_name = {p.name: p for p in lock.packages}
    planner.evidence.add_metadata(by_name["lib"].id, merged.metadata)
    planner.evidence.add_metadata(by_name["dep"].id, metadata("dep"))
    findings = [f for f in planner.plan().findings if f.kind == "missing-dependency"]
    (finding,) = findings
    assert finding.requirement == declared
    assert f"the index declares {declared}, by 1 wheel(s) such as {linux} (picked where " in (
        finding.message
    )
    assert f"not by 1 wheel(s) such as {windows} (picked where " in finding.message
