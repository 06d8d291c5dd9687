"""Requires-Dist lines and their markers read as uv reads them; no network."""

from __future__ import annotations

import subprocess
import sys

import pytest
from packaging.requirements import Requirement

from lockfix.analysis.planner import Planner
from lockfix.cli.report import human_report, json_document
from lockfix.dist.metadata import CoreMetadata
from lockfix.dist.requirements import (
    NameOnly,
    parse_requirement,
    parse_specifiers,
    read_requirement,
    unreadable_lines,
)
from lockfix.markers import InvalidMarker, Marker
from tests.analysis.test_planner import EDGE, REGISTRY, lock_text, metadata, package


@pytest.mark.parametrize(
    ("line", "read"),
    [
        ("bar>=1.0.*", "bar>=1.0"),
        ("elasticsearch-dsl (>=7.2.0<8.0.0)", "elasticsearch-dsl<8.0.0,>=7.2.0"),
        ("jupyter-core (!=~5.0,>=4.12)", "jupyter-core!=5.0.*,>=4.12"),
        ("jupyter-core (!=~5,>=4.12)", "jupyter-core!=5.*,>=4.12"),
        ("torch (>=1.9.*)", "torch>=1.9"),
        ("x (!=3.0*)", "x!=3.0.*"),
        ("x>=3.6,", "x>=3.6"),
        ("x>dev", "x>0.0.0dev"),
        ("x>=9.0.0a1.0", "x>=9.0.0a1"),
        ("x>= 2.7'", "x>=2.7"),
        ('bar>=1.0.*; python_version >= "3.8"', 'bar>=1.0; python_version >= "3.8"'),
        ("bar>=1.0", "bar>=1.0"),
    ],
)
def test_lines_packaging_rejects_are_repaired_as_uv_repairs_them(line: str, read: str) -> None:
    requirement = parse_requirement(line)
    assert requirement is not None and str(requirement) == read


@pytest.mark.parametrize("line", ["bar>=1.0+cpu", "bar~=1", "bar (1.0.3)", "bar ==="])
def test_lines_uv_cannot_read_either_are_none(line: str) -> None:
    assert parse_requirement(line) is None
    assert unreadable_lines(["ok>=1", line]) == [line]


def test_requires_python_is_repaired_too() -> None:
    assert str(parse_specifiers(">=3.6.*")) == ">=3.6"
    assert parse_specifiers(">=3.6, <4") is not None
    assert parse_specifiers("python3") is None


@pytest.mark.parametrize(
    ("text", "meaning"),
    [
        (
            'platform_system == "Linux" and platform_machine == "x86_64" '
            'and python_version != "3.13t"',
            "platform_machine == 'x86_64' and sys_platform == 'linux'",
        ),
        ('python_version == "3.13t"', ""),
        ('sys_platform == "win32" or python_version == "3.13t"', "sys_platform == 'win32'"),
        (
            '(python_version < "3.13t" or python_full_version >= "x") and os_name == "nt"',
            "os_name == 'nt'",
        ),
        ('python_version in "3.12 3.13t"', ""),
        ('python_version >= "3.*" and sys_platform == "linux"', "sys_platform == 'linux'"),
        ('"a" == "b" or sys_platform == os_name or extra > "x"', ""),
        ('platform_release ~= "5.10"', ""),
        ('python_version >= "3.12"', "python_full_version >= '3.12'"),
    ],
)
def test_comparisons_uv_ignores_are_left_out(text: str, meaning: str) -> None:
    """uv warns about and drops a comparison it cannot evaluate (from its ``and`` or
    ``or``); what uv locks for such a Requires-Dist line is the rest of the marker."""
    assert Marker.parse_lenient(text) == Marker.parse(meaning)


def test_strict_parsing_still_refuses_them() -> None:
    """A lock's own markers are uv's output and are read strictly."""
    with pytest.raises(InvalidMarker):
        Marker.parse('python_version != "3.13t"')


@pytest.mark.parametrize(
    "text", ['foo == "x"', 'sys_platform == "linux" and', '(python_version != "3.13t"']
)
def test_what_uv_rejects_is_still_an_error(text: str) -> None:
    with pytest.raises(InvalidMarker):
        Marker.parse_lenient(text)


def test_a_line_lockfix_cannot_read_never_counts_as_absent() -> None:
    """lib's metadata has a line lockfix cannot read: lib is not verified, its locked edge
    to dep is kept and dep is no orphan, whatever the readable lines say."""
    from lockfix.lock.lockfile import parse_lock
    from lockfix.lock.project import infer_config

    text = lock_text("", package("lib", EDGE) + package("dep"))
    lock = parse_lock(text)
    planner = Planner(lock, infer_config(lock))
    lib = next(p for p in lock.packages if p.name == "lib")
    dep = next(p for p in lock.packages if p.name == "dep")
    planner.evidence.add_metadata(lib.id, metadata("lib", "other>=1", "dep (1.0)"))
    planner.evidence.add_metadata(dep.id, metadata("dep"))
    plan = planner.plan()
    assert plan.findings == [] and plan.removed == [] and plan.pending == []
    assert not plan.changes
    assert lib.id in plan.unverified and lib.id not in plan.failed
    assert "'dep (1.0)'" in plan.unverified[lib.id]
    document = json_document(plan, [], changed=None)
    assert [u["status"] for u in document["unverified"]] == ["unreadable"]
    assert "1 with metadata lockfix cannot read" in human_report(plan)
    assert plan.verified == 1 and REGISTRY in lib.source.location


def test_wheels_that_disagree_keep_an_unreadable_line() -> None:
    """Merging the metadata of wheels that disagree must not drop such a line."""
    from lockfix.analysis.wheels import merge_wheel_metadata

    def wheel_metadata(*requires: str) -> CoreMetadata:
        return CoreMetadata("lib", "1.0", requires, None, (), (), "2.3")

    merged = merge_wheel_metadata(
        [
            ("lib-1.0-cp312-cp312-manylinux_2_28_x86_64.whl", wheel_metadata("a", "dep (1.0)")),
            ("lib-1.0-cp312-cp312-win_amd64.whl", wheel_metadata("b")),
        ]
    )
    assert merged.disagree
    assert unreadable_lines(merged.metadata.requires_dist) == ["dep (1.0)"]


@pytest.mark.parametrize(
    ("text", "printed"),
    [
        ("'x' in extras", "'x' in extras"),
        ('"Dev_X" not in dependency_groups', "'dev-x' not in dependency_groups"),
        (
            "python_version >= '3.8' and 'x' in extras",
            "python_full_version >= '3.8' and 'x' in extras",
        ),
    ],
)
def test_pep_751_list_variables_are_read_as_uv_writes_them(text: str, printed: str) -> None:
    """uv locks a dependency declared with ``'x' in extras`` under that marker: lockfix
    reads it in the index's metadata and in the lock alike."""
    marker = Marker.parse(text)
    assert str(marker) == printed and Marker.parse(printed) == marker
    assert Marker.parse_lenient(text) == marker
    assert marker != Marker.TRUE and marker != Marker.FALSE


@pytest.mark.parametrize("text", ["extras == 'x'", "extras in 'x'", "'x' == dependency_groups"])
def test_pep_751_list_variables_take_only_in(text: str) -> None:
    with pytest.raises(InvalidMarker, match="takes only 'NAME' in"):
        Marker.parse(text)


def test_a_python_floor_of_a_wildcard_requires_python() -> None:
    """A lock with ``requires-python = "==3.12.*"`` (NVIDIA-NeMo/Export-Deploy) chooses
    versions for Python 3.12 and up instead of failing."""
    from packaging.version import Version

    from lockfix.analysis.versions import _python_floor

    assert _python_floor("==3.12.*") == Version("3.12")
    assert _python_floor(">=3.10,<3.13") == Version("3.10")


def test_a_wildcard_pin_chooses_a_version() -> None:
    """A missing package pinned as ``==13.4.1.3.*`` (nvidia packages do this) gets the
    newest version under the pin; the wildcard once ended in a traceback."""
    from packaging.specifiers import SpecifierSet

    from lockfix.analysis.findings import Missing
    from lockfix.dist.simple import IndexFile, ProjectPage
    from lockfix.lock.lockfile import parse_lock
    from lockfix.lock.project import infer_config

    lock = parse_lock(lock_text("", package("lib")))
    planner = Planner(lock, infer_config(lock))
    files = [
        IndexFile(f"dep-{v}-py3-none-any.whl", f"{REGISTRY}/dep-{v}-py3-none-any.whl")
        for v in ("13.4.1.2", "13.4.1.3", "13.4.1.3.1", "13.5.0")
    ]
    page = ProjectPage("dep", f"{REGISTRY}/dep/", files)
    missing = Missing("dep", SpecifierSet("==13.4.1.3.*"), (REGISTRY,), ("lib 1.0",))
    assert planner.choose(missing, REGISTRY, page).id.version == "13.4.1.3.1"


@pytest.mark.parametrize(
    ("specifier", "versions", "chosen"),
    [
        (">=1.0", ("1.0", "2.0rc1"), "1.0"),  # a final release before a newer prerelease
        (">=2.0rc1", ("1.0", "2.0rc1"), "2.0rc1"),  # a specifier naming a prerelease
        (">=2.0", ("1.0", "2.0rc1", "2.1b1"), "2.1b1"),  # only prereleases satisfy it
        ("", ("1.0a1",), "1.0a1"),
        # uv 0.13.9 takes the final release even where a specifier names a prerelease
        # (uv 0.10.9 took 2.0rc1 for '>=1.0rc1'; neither took it for '!=1.0rc1')
        (">=1.0rc1", ("1.0", "2.0rc1"), "1.0"),
        ("!=1.0rc1", ("1.0", "2.0rc1"), "1.0"),
        ("<=2.0rc1,>=0.5", ("0.9", "2.0rc1"), "0.9"),
        # a yanked final release is no candidate: uv 0.13.9 falls back to the prerelease
        (">=0.5", ("1.0!yanked", "2.0rc1"), "2.0rc1"),
    ],
)
def test_a_missing_name_gets_a_prerelease_only_where_uv_takes_one(
    specifier: str, versions: tuple[str, ...], chosen: str
) -> None:
    from packaging.specifiers import SpecifierSet

    from lockfix.analysis.findings import Missing
    from lockfix.dist.simple import IndexFile, ProjectPage
    from lockfix.lock.lockfile import parse_lock
    from lockfix.lock.project import infer_config

    lock = parse_lock(lock_text("", package("lib")))
    planner = Planner(lock, infer_config(lock))
    files = []
    for version in versions:
        version, _, yanked = version.partition("!")
        name = f"dep-{version}-py3-none-any.whl"
        files.append(IndexFile(name, f"{REGISTRY}/{name}", yanked=bool(yanked)))
    page = ProjectPage("dep", f"{REGISTRY}/dep/", files)
    missing = Missing("dep", SpecifierSet(specifier), (REGISTRY,), ("lib 1.0",))
    assert planner.choose(missing, REGISTRY, page).id.version == chosen


def test_an_extra_named_extras_is_an_extra() -> None:
    """``extra == 'extras'`` (mem0ai, backrefs on PyPI) compares the extra variable with the
    string 'extras'; only the variable named extras is PEP 751's list."""
    marker = Marker.parse("extra == 'extras'")
    assert marker.extras() == {"extras"} and str(marker) == "extra == 'extras'"
    assert str(Marker.parse("sys_platform == 'dependency_groups'")) == (
        "sys_platform == 'dependency_groups'"
    )


@pytest.mark.parametrize(
    ("line", "name_only"),
    [
        ("fastapi[standard]", True),
        ("Foo.Bar_baz-2[Extra_One,extra.two,x]", True),
        ("a[]", True),
        ("a", True),
        ("x[y,y]", True),
        # anything else is read by packaging's grammar
        ("a_", False),
        ("a [b]", False),
        ("a[b, c]", False),
        ("a[b]>=1", False),
        ("a[b]; python_version < '3.9'", False),
        ("a @ https://example.org/a.whl", False),
        ("a[-b]", False),
        ("-a", False),
        ("a[b", False),
        ("é", False),
    ],
)
def test_a_line_of_only_a_name_and_extras_reads_as_packaging_reads_it(
    line: str, name_only: bool
) -> None:
    read = read_requirement(line)
    assert isinstance(read, NameOnly) == name_only
    try:
        expected: Requirement | None = Requirement(line)
    except ValueError:
        expected = parse_requirement(line)
    if expected is None:
        assert read is None
        return
    assert read is not None
    assert (read.name, sorted(read.extras), str(read.specifier), read.url, read.marker) == (
        expected.name,
        sorted(expected.extras),
        str(expected.specifier),
        expected.url,
        expected.marker,
    )


def test_lowering_a_request_for_extras_leaves_packaging_grammar_unloaded() -> None:
    """A workspace member's request for extras is lowered on every check; a check whose
    packages are all answered from stored facts reads no other line, and must not pay for
    loading packaging's requirement grammar."""
    code = (
        "import sys\n"
        "from lockfix.analysis.lowering import MAIN, lower_requirements\n"
        "from lockfix.dist.metadata import CoreMetadata\n"
        "from lockfix.dist.requirements import unreadable_lines\n"
        "lines = ('fastapi[standard]', 'uvicorn')\n"
        "meta = CoreMetadata('app', '1', lines, None, (), (), '2.3')\n"
        "lowered = lower_requirements(meta)[MAIN]\n"
        "assert [(r.name, r.extras, str(r.specifier)) for r in lowered] == "
        "[('fastapi', ('standard',), ''), ('uvicorn', (), '')], lowered\n"
        "assert unreadable_lines(lines) == []\n"
        "assert 'packaging.requirements' not in sys.modules, 'grammar loaded'\n"
        "lower_requirements(CoreMetadata('app', '1', ('uvicorn>=1',), None, (), (), '2.3'))\n"
        "assert 'packaging.requirements' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
