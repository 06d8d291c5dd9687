"""The clean verdict of a lock carried over to its next version, and only when the full
check would find the same: real uv locks against a loopback index, each changed lock
checked both ways."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet

from fixtures.builder import build_scenario
from fixtures.lock_scenarios import _pkg
from fixtures.server import IndexServer
from fixtures.uvrun import run_uv, uv_bin
from lockfix.analysis.lowering import LoweredRequirement
from lockfix.carryover import Changes, LockSummary, Requirements, changes, judge, judge_versions
from lockfix.lock.edits import MAIN
from lockfix.lock.lockfile import block_keys, parse_lock, split_blocks
from lockfix.markers import Marker

pytestmark = pytest.mark.skipif(not uv_bin("0.13.9").exists(), reason="uv missing")

REGISTRY = {
    "indexes": [
        {
            "name": "reg",
            "packages": [
                _pkg("leaf", "0.9"),
                _pkg("leaf", "1.0"),
                _pkg("leaf", "1.1"),
                _pkg("leaf", "2.0", "newdep"),
                _pkg("newdep", "1.0"),
                _pkg("mid", "1.0", "leaf>=1", "beta; sys_platform == 'linux'"),
                _pkg("beta", "0.9"),
                _pkg("beta", "1.0"),
                # versions whose requirement on beta differs only in its specifier
                _pkg("kite", "1.0", "beta>=0.5"),
                _pkg("kite", "1.1", "beta>=1.0"),
                _pkg("kite", "1.2", "beta<1"),
                # a pair released together, each version pinning its partner's
                _pkg("pair-a", "1.0", "pair-b==1.0"),
                _pkg("pair-a", "1.1", "pair-b==1.1"),
                _pkg("pair-b", "1.0"),
                _pkg("pair-b", "1.1"),
                # versions that add, drop or change an extra: nothing asks for ext's, wants asks
                # for ext2's
                _pkg("ext", "1.0"),
                _pkg("ext", "1.1", "beta; extra == 'fast'"),
                _pkg("ext", "1.2", "leaf; extra == 'fast'"),
                _pkg("ext2", "1.0"),
                _pkg("ext2", "1.1", "beta; extra == 'fast'"),
                _pkg("wants", "1.0", "ext2[fast]"),
                # versions with one changed requirement and one pin kept as it was
                _pkg("duo", "1.0", "solo==1.0", "beta>=0.5"),
                _pkg("duo", "1.1", "solo==1.0", "beta>=1.0"),
                _pkg("solo", "1.0"),
                _pkg("solo", "1.1"),
                # a name locked at two versions (forks by platform)
                _pkg("twin", "1.0"),
                _pkg("twin", "1.1"),
                _pkg("twin", "2.0"),
            ],
        }
    ]
}

PYPROJECT = """[project]
name = "app"
version = "0.1.0"
requires-python = ">=3.11"
dependencies = [{deps}]

[tool.uv]
package = false

[[tool.uv.index]]
name = "reg"
url = "{index}"
default = true
"""

DEPS = (
    '"mid", "kite", "pair-a", "ext", "wants", "duo", '
    "\"twin<2; sys_platform == 'darwin'\", \"twin>=2; sys_platform != 'darwin'\""
)

# The check with the full analysis refused: exit 99 says the verdict was not carried over.
WITHOUT_PLANNING = (
    "import sys, lockfix.engine as engine\n"
    "def refuse(*args, **kwargs):\n"
    "    sys.exit(99)\n"
    "engine.analyze_lock = refuse\n"
    "from lockfix.cli._entry import main\n"
    "main()\n"
)


class Project:
    def __init__(self, root: Path, server: IndexServer) -> None:
        self.root = root
        self.server = server
        self.directory = root / "project"
        self.directory.mkdir()

    def lock(self, deps: str, *args: str) -> str:
        pyproject = PYPROJECT.format(deps=deps, index=self.server.index_url("reg"))
        (self.directory / "pyproject.toml").write_text(pyproject)
        run_uv("0.13.9", ["lock", *args], self.directory, self.root / "uv-tmp")
        return (self.directory / "uv.lock").read_text()


@pytest.fixture(scope="module")
def locks(tmp_path_factory: pytest.TempPathFactory):
    """The locks ``uv lock --upgrade-package`` writes from leaf 1.0, and a cache where the
    check of the one at leaf 1.0 left its clean verdict and summary."""
    root = tmp_path_factory.mktemp("carryover")
    built = build_scenario(REGISTRY, root / "build")
    with IndexServer(built) as server:
        project = Project(root, server)
        # a lock with leaf 0.9, for its block (mid's leaf>=1 rules it out otherwise)
        old_leaf = _block(project.lock('"leaf==0.9"'), "leaf")
        (project.directory / "uv.lock").unlink()
        # and one with solo 1.1, for its block (duo pins solo 1.0)
        new_solo = _block(project.lock('"solo==1.1"'), "solo")
        (project.directory / "uv.lock").unlink()
        # and one with twin 1.0 in the darwin fork, for its block
        older = DEPS.replace("twin<2", "twin<1.1")
        old_twin = _block(project.lock(older), "twin", "1.0")
        (project.directory / "uv.lock").unlink()
        project.lock(DEPS)
        before = project.lock(
            DEPS,
            "--upgrade-package",
            "leaf==1.0",
            "--upgrade-package",
            "kite==1.0",
            "--upgrade-package",
            "beta==1.0",
            "--upgrade-package",
            "pair-a==1.0",
            "--upgrade-package",
            "ext==1.1",
            "--upgrade-package",
            "ext2==1.0",
            "--upgrade-package",
            "duo==1.0",
        )

        def from_before(*args: str) -> str:
            (project.directory / "uv.lock").write_text(before)
            return project.lock(DEPS, *args)

        upgraded = from_before("--upgrade-package", "leaf==1.1")
        grown = from_before("--upgrade-package", "leaf==2.0")
        raised = from_before("--upgrade-package", "kite==1.1")
        lowered = from_before("--upgrade-package", "kite==1.2")
        pair = from_before("--upgrade-package", "pair-a==1.1")
        dropped = from_before("--upgrade-package", "ext==1.0")
        extra = from_before("--upgrade-package", "ext==1.2")
        asked = from_before("--upgrade-package", "ext2==1.1")
        duo = from_before("--upgrade-package", "duo==1.1")
        # twin re-pinned to 1.0 where it was 1.1, as uv writes it: its block, and the
        # version in the edge to it
        forked = before.replace(_block(before, "twin", "1.1"), old_twin).replace(
            '{ name = "twin", version = "1.1"', '{ name = "twin", version = "1.0"'
        )
        (project.directory / "uv.lock").write_text(before)
        cache = root / "cache"
        first = check(project.directory, cache)
        assert first.returncode == 0, first.stdout + first.stderr
        assert list((cache / "summaries-v1").rglob("*.bin"))
        yield {
            "directory": project.directory,
            "cache": cache,
            "before": before,
            "upgraded": upgraded,
            "grown": grown,
            "raised": raised,
            "lowered": lowered,
            "pair": pair,
            "extra": extra,
            "dropped": dropped,
            "asked": asked,
            "duo": duo,
            "new_solo": new_solo,
            "forked": forked,
            "old_leaf": old_leaf,
            "server": server,
        }


def _block(text: str, name: str, version: str | None = None) -> str:
    (block,) = [
        b
        for b in split_blocks(text)[1:]
        if f'\nname = "{name}"\n' in b and (version is None or f'\nversion = "{version}"\n' in b)
    ]
    return block


def _replace_block(text: str, name: str, block: str) -> str:
    return text.replace(_block(text, name), block)


def check(
    directory: Path, cache: Path, *, runner: tuple[str, ...] = ("-m", "lockfix"), **env: str
) -> subprocess.CompletedProcess[str]:
    """``lockfix check uv.lock`` in ``directory`` (``runner``: how Python runs it)."""
    return subprocess.run(
        [sys.executable, *runner, "check", "uv.lock", "--cache-dir", str(cache)],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **env},
    )


def both_ways(
    locks: dict, text: str, tmp_path: Path
) -> tuple[bool, subprocess.CompletedProcess[str], subprocess.CompletedProcess[str]]:
    """Check ``text`` after the clean check of the lock before it (whether its verdict was
    carried over, and what the check said), and in full against the same caches."""
    directory: Path = locks["directory"]
    (directory / "uv.lock").write_text(text)
    carrying, full = tmp_path / "carrying", tmp_path / "full"
    shutil.copytree(locks["cache"], carrying)
    shutil.copytree(locks["cache"], full)
    planless = check(directory, carrying, runner=("-c", WITHOUT_PLANNING))
    carried = planless.returncode != 99
    result = planless if carried else check(directory, carrying)
    shutil.rmtree(full / "summaries-v1")
    return carried, result, check(directory, full)


def _without_extras(block: str) -> str:
    """``block`` without its ``[package.optional-dependencies]`` table."""
    head, found, _ = block.partition("[package.optional-dependencies]\n")
    assert found
    return head


def _tampered(block: str) -> str:
    """``block`` with the first digit of its first sha256 changed."""
    at = block.index("sha256:") + len("sha256:")
    return block[:at] + ("1" if block[at] == "0" else "0") + block[at + 1 :]


def _mutations(locks: dict) -> dict[str, tuple[str, bool]]:
    """Changed locks, and whether the verdict of the lock before carries over to each."""
    before, upgraded = locks["before"], locks["upgraded"]
    leaf_11 = _block(upgraded, "leaf")
    mid = _block(upgraded, "mid")
    first, second = split_blocks(upgraded)[1:3]
    return {
        "upgraded": (upgraded, True),
        "comment in a block": (_replace_block(upgraded, "leaf", leaf_11 + "# reviewed\n"), True),
        "trailing comment": (upgraded + "# reviewed\n", True),  # in the last block
        "blocks reordered": (upgraded.replace(first + second, second + first), False),
        "unchanged": (before, True),
        "new dependency": (locks["grown"], False),
        "a bound raised": (locks["raised"], True),
        "a bound changed with its target": (locks["lowered"], True),
        "a bound its target does not meet": (
            _replace_block(locks["lowered"], "beta", _block(before, "beta")),
            False,
        ),
        "a forked name re-pinned": (locks["forked"], False),
        "a pinned pair upgraded together": (locks["pair"], True),
        "an extra nothing asks for dropped": (locks["dropped"], True),
        "an extra nothing asks for changed": (locks["extra"], True),
        "an extra that is asked for added, its edges left out": (
            _replace_block(before, "ext2", _without_extras(_block(locks["asked"], "ext2"))),
            False,
        ),
        "a changed package's pin kept, its target moved": (
            _replace_block(locks["duo"], "solo", locks["new_solo"]),
            False,
        ),
        "half of a pinned pair upgraded": (
            _replace_block(locks["pair"], "pair-b", _block(before, "pair-b")),
            False,
        ),
        "version without its files": (
            _replace_block(before, "leaf", _block(before, "leaf").replace('"1.0"', '"1.1"', 1)),
            False,
        ),
        "files tampered": (_replace_block(upgraded, "leaf", _tampered(leaf_11)), False),
        "edge added": (
            _replace_block(
                upgraded,
                "leaf",
                leaf_11.replace(
                    "\nwheels = [", '\ndependencies = [{ name = "beta" }]\nwheels = [', 1
                ),
            ),
            False,
        ),
        "edge dropped": (
            _replace_block(
                upgraded, "mid", mid.replace('    { name = "beta"', '    # { name = "beta"')
            ),
            False,
        ),
        "version out of a requirement": (_replace_block(before, "leaf", locks["old_leaf"]), False),
        "header changed": (
            upgraded.replace('requires-python = ">=3.11"', 'requires-python = ">=3.12"', 1),
            False,
        ),
    }


MUTATIONS = [
    "upgraded",
    "comment in a block",
    "trailing comment",
    "blocks reordered",
    "unchanged",
    "new dependency",
    "a bound raised",
    "a bound changed with its target",
    "a bound its target does not meet",
    "a forked name re-pinned",
    "a pinned pair upgraded together",
    "half of a pinned pair upgraded",
    "a changed package's pin kept, its target moved",
    "an extra nothing asks for dropped",
    "an extra nothing asks for changed",
    "an extra that is asked for added, its edges left out",
    "version without its files",
    "files tampered",
    "edge added",
    "edge dropped",
    "version out of a requirement",
    "header changed",
]


@pytest.mark.parametrize("name", MUTATIONS)
def test_a_carried_verdict_is_what_the_full_check_finds(locks, name: str, tmp_path: Path) -> None:
    text, carries = _mutations(locks)[name]
    assert (text == locks["before"]) == (name == "unchanged")
    # each case is a lock of its own
    others = [t for n, (t, _) in _mutations(locks).items() if n != name]
    assert text not in others
    carried, result, full = both_ways(locks, text, tmp_path)
    assert carried == carries, result.stdout + result.stderr
    assert (result.returncode, result.stdout) == (full.returncode, full.stdout)
    if carries:
        assert result.returncode == 0, result.stdout + result.stderr


def test_the_next_version_carries_over_from_a_carried_one(locks, tmp_path: Path) -> None:
    """The summary a carried verdict leaves is the new lock's: kite 1.0 → 1.1 (whose
    requirements no full check lowered: the carried-over one keeps them) → 1.0, then leaf
    1.0 → 1.1 → 1.0."""
    directory: Path = locks["directory"]
    cache = tmp_path / "cache"
    shutil.copytree(locks["cache"], cache)
    for text in (locks["raised"], locks["before"], locks["upgraded"], locks["before"]):
        (directory / "uv.lock").write_text(text)
        done = check(directory, cache, runner=("-c", WITHOUT_PLANNING))
        assert done.returncode == 0, done.stdout + done.stderr
    # and the verdict it stored is reused as is
    locks["server"].reset_log()
    again = check(directory, cache)
    assert again.returncode == 0 and locks["server"].requests == []


def test_no_summary_is_kept_without_package_facts(locks, tmp_path: Path) -> None:
    directory: Path = locks["directory"]
    (directory / "uv.lock").write_text(locks["before"])
    done = check(directory, tmp_path / "cache", LOCKFIX_PACKAGE_FACTS="0")
    assert done.returncode == 0, done.stdout + done.stderr
    assert not (tmp_path / "cache" / "summaries-v1").exists()


# -- the rules, on locks read in memory -------------------------------------------------------


def _summary(text: str, **blocks: tuple[str, str, str]) -> LockSummary:
    keys = block_keys(split_blocks(text))
    lock = parse_lock(text)
    entries = {
        keys[p.block]: blocks.get(p.name, (p.name, p.version or "", "digest"))
        for p in lock.packages
    }
    return LockSummary(keys[0], entries, {"leaf": {">=1": 2}}, frozenset(), "report", 2.0**40)


def test_changes_name_the_replaced_block_or_why_not(locks) -> None:
    before, upgraded = locks["before"], locks["upgraded"]
    summary = _summary(before)
    keys = block_keys(split_blocks(upgraded))
    found = changes(summary, keys)
    assert isinstance(found, Changes) and list(found.replaced) == ["leaf"]
    assert (
        changes(summary, block_keys(split_blocks(locks["grown"]))) == "blocks were added or removed"
    )
    first, second = split_blocks(before)[1:3]
    moved = before.replace(first + second, second + first)
    assert changes(summary, block_keys(split_blocks(moved))) == "blocks were moved"
    header = upgraded.replace("revision = 5", "revision = 4", 1)
    assert changes(summary, block_keys(split_blocks(header))) == "the header changed"
    refused = _summary(before, leaf=("leaf", "1.0", ""))
    assert "was not verified cleanly" in str(changes(refused, keys))
    pinned = LockSummary(summary.header, summary.blocks, {}, frozenset({"leaf"}), "r", 2.0**40)
    assert "with a version or a source" in str(changes(pinned, keys))
    stale = LockSummary(summary.header, summary.blocks, {}, frozenset(), "r", 1.0)
    assert "stale" in str(changes(stale, keys))


def test_each_requirement_is_held_to_the_new_version_unless_compared_anew(locks) -> None:
    """Two requirements on leaf with ">=1": both are held to leaf 0.9 unless both belong
    to packages whose changed requirements were compared new against new."""
    before = locks["before"]
    summary = _summary(before)
    locked = {p.name: p for p in parse_lock(before).packages}
    requirement = LoweredRequirement("leaf", (), SpecifierSet(">=1"), Marker.TRUE, "leaf>=1")
    one = {"p": Requirements("d", {MAIN: [requirement]}, {MAIN: []})}
    both = {**one, "q": Requirements("e", {MAIN: [requirement]}, {MAIN: []})}
    out_of_range = _replace_block(before, "leaf", locks["old_leaf"])
    for text, requirements, expected in (
        (locks["upgraded"], {}, None),
        (out_of_range, {}, "does not meet '>=1'"),
        (out_of_range, one, "does not meet '>=1'"),
        (out_of_range, both, None),
    ):
        keys = block_keys(split_blocks(text))
        found = changes(summary, keys)
        assert isinstance(found, Changes)
        new = parse_lock(text).packages
        changed = [p for p in new if keys[p.block] not in summary.blocks]
        old = {name: locked[name] for name in found.replaced}
        assert judge(summary, found, changed, old) is None
        reason = judge_versions(summary, changed, old, requirements)
        assert reason is None if expected is None else expected in str(reason), reason


def test_only_verified_warning_free_single_version_packages_are_carried(
    locks, tmp_path: Path
) -> None:
    """summarize, on the clean lock with one package warned about and one unverified."""
    from lockfix.analysis.evidence import Evidence, UnverifiedStatus
    from lockfix.analysis.findings import Finding
    from lockfix.analysis.planner import Planner
    from lockfix.carryover import NOT_CARRIED, summarize
    from lockfix.dist.metadata import CoreMetadata
    from lockfix.engine import Analysis
    from lockfix.facts import FactsStore
    from lockfix.lock.project import infer_config

    lock = parse_lock(locks["before"], FactsStore(tmp_path))
    declared = {
        "mid": ("leaf>=1", "beta; sys_platform == 'linux'"),
        "kite": ("beta>=0.5",),
        "pair-a": ("pair-b==1.0",),
        "wants": ("ext2[fast]",),
        "duo": ("solo==1.0", "beta>=0.5"),
    }
    evidence = Evidence()
    for package in lock.packages:
        if package.source.is_registry:
            requires = declared.get(package.name, ())
            metadata = CoreMetadata(
                package.name, package.version or "", requires, None, (), (), "2.1"
            )
            evidence.add_metadata(package.id, metadata)
    by_name = {p.name: p for p in lock.packages}
    evidence.mark_unverified(by_name["beta"].id, UnverifiedStatus.FAILED, "index down")
    planner = Planner(lock, infer_config(lock), evidence)
    plan = planner.plan()
    assert not plan.findings
    warned = Finding(by_name["leaf"].id, "artifact-yanked", "leaf-1.0-py3-none-any.whl: yanked")
    analysis = Analysis(
        lock, planner.config, plan, [warned], graph=planner.graph, fresh_until=2.0**40
    )
    summary = summarize(analysis, "report")
    assert summary is not None and summary.report == "report"
    digests = {name: digest for name, _, digest in summary.blocks.values()}
    assert digests["leaf"] == digests["beta"] == digests["app"] == NOT_CARRIED
    twins = [digest for name, _, digest in summary.blocks.values() if name == "twin"]
    assert twins == [NOT_CARRIED, NOT_CARRIED]
    assert digests["mid"] == evidence.metadata[by_name["mid"].id].requirements_digest
    assert summary.specifiers["leaf"] == {">=1": 1} and summary.pinned == {"twin"}
    assert summary.requested == {("ext2", "fast")}
    assert list(summary.blocks) == lock.block_keys[1:]


def test_an_error_in_a_carried_over_check_is_the_full_checks_to_report(
    locks, tmp_path: Path
) -> None:
    """The changed package needs the network (its files are new to the cache), and the
    TLS settings cannot be used: one line and exit 2, as without a summary."""
    directory: Path = locks["directory"]
    (directory / "uv.lock").write_text(locks["upgraded"])
    bad = {"SSL_CERT_FILE": str(tmp_path / "missing.pem")}
    results = []
    for name, keep in (("carrying", True), ("full", False)):
        cache = tmp_path / name
        shutil.copytree(locks["cache"], cache)
        if not keep:
            shutil.rmtree(cache / "summaries-v1")
        results.append(check(directory, cache, **bad))
    carrying, full = results
    assert carrying.returncode == full.returncode == 2, carrying.stderr
    assert carrying.stderr == full.stderr and "Traceback" not in carrying.stderr
    assert "cannot load certificates" in carrying.stderr


@pytest.mark.parametrize(
    "damage",
    ["truncated", "other types"],
)
def test_a_damaged_summary_is_checked_in_full(locks, damage: str, tmp_path: Path) -> None:
    import marshal

    directory: Path = locks["directory"]
    (directory / "uv.lock").write_text(locks["upgraded"])
    cache = tmp_path / "cache"
    shutil.copytree(locks["cache"], cache)
    (summary,) = (cache / "summaries-v1").rglob("*.bin")
    data = summary.read_bytes()
    if damage == "truncated":
        summary.write_bytes(data[: len(data) // 2])
    else:
        fields = list(marshal.loads(data))
        fields[2] = {key: entry[:2] for key, entry in fields[2].items()}  # 2-tuples
        summary.write_bytes(marshal.dumps(tuple(fields)))
    planless = check(directory, cache, runner=("-c", WITHOUT_PLANNING))
    assert planless.returncode == 99, planless.stderr  # not carried over: planned in full
    done = check(directory, cache)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
