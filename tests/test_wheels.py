"""Wheels that disagree: one version whose wheels declare different dependencies.

The installer's pick is computed here independently of ``lockfix.wheels``, from
``packaging.tags`` (the tag order pip and uv use), for every platform × Python of the
scenario; the merged metadata and the markers written into the lock must give, in each
of those environments, exactly the dependencies of the wheel picked there.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from packaging import tags as ptags
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename

from fixtures.builder import build_scenario
from fixtures.scenarios import WHEEL_SCENARIOS, get_wheel_scenario, make_wheels_project
from fixtures.server import IndexServer
from fixtures.uvrun import run_uv, uv_bin
from helpers import run_lockfix
from lockfix.lockfile import parse_lock
from lockfix.markers import Marker
from lockfix.metadata import CoreMetadata, parse_core_metadata
from lockfix.wheels import merge_wheel_metadata, wheel_selections

NEW = "0.13.9"
PLATFORMS = {
    "linux-x86_64": ("linux", "x86_64", "Linux", "posix"),
    "linux-aarch64": ("linux", "aarch64", "Linux", "posix"),
    "macos-arm64": ("darwin", "arm64", "Darwin", "posix"),
    "macos-x86_64": ("darwin", "x86_64", "Darwin", "posix"),
    "windows-amd64": ("win32", "AMD64", "Windows", "nt"),
}
PYTHONS = ("3.11.9", "3.12.3", "3.13.1")
HERE = ("linux-x86_64", "3.11.9")
LOCKFIX = (sys.executable, "-m", "lockfix")  # this machine, as far as the fixtures care


def _platform_tags(platform: str) -> list[str]:
    system, machine = PLATFORMS[platform][:2]
    if system == "linux":
        out = []
        for minor in range(40, 4, -1):
            out.append(f"manylinux_2_{minor}_{machine}")
            legacy = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}.get(minor)
            if legacy:
                out.append(f"{legacy}_{machine}")
        return [*out, f"linux_{machine}"]
    if system == "darwin":
        return list(ptags.mac_platforms((14, 0), machine))
    return ["win_amd64"]


def _env(platform: str, python: str) -> dict[str, str]:
    system, machine, platform_system, os_name = PLATFORMS[platform]
    env = dict(default_environment())
    env.update(
        sys_platform=system,
        platform_machine=machine,
        platform_system=platform_system,
        os_name=os_name,
        python_full_version=python,
        python_version=".".join(python.split(".")[:2]),
        implementation_name="cpython",
        platform_python_implementation="CPython",
    )
    return env


def installer_pick(filenames: list[str], platform: str, python: str) -> str | None:
    """The wheel pip/uv installs: the first of sys_tags() order that some wheel has."""
    minor = int(python.split(".")[1])
    platforms = _platform_tags(platform)
    order = [
        *ptags.cpython_tags((3, minor), abis=[f"cp3{minor}"], platforms=platforms),
        *ptags.compatible_tags((3, minor), f"cp3{minor}", platforms),
    ]
    tagged = {f: parse_wheel_filename(f)[3] for f in sorted(filenames)}
    for tag in order:
        for filename, wheel_tags in tagged.items():
            if tag in wheel_tags:
                return filename
    return None


def declared(metadata: CoreMetadata, env: dict[str, str], extras: tuple[str, ...]) -> set[str]:
    """What a wheel's Requires-Dist installs in ``env`` with ``extras`` (via packaging)."""
    out = set()
    for line in metadata.requires_dist:
        requirement = Requirement(line)
        if requirement.marker is None or any(
            requirement.marker.evaluate({**env, "extra": e}) for e in ("", *extras)
        ):
            out.add(canonicalize_name(requirement.name))
    return out


# -- the module alone, on the fixture wheels ----------------------------------------------


def _package_wheels(name: str) -> list[tuple[str, CoreMetadata, str]]:
    from fixtures.builder import metadata_text, wheel_filename

    spec = WHEEL_SCENARIOS[name]
    out = []
    for index in get_wheel_scenario(name)["indexes"]:
        for pkg in index["packages"]:
            if canonicalize_name(pkg["name"]) == spec["package"]:
                metadata = parse_core_metadata(metadata_text(pkg).encode())
                for tag in pkg["tags"]:
                    out.append((wheel_filename(pkg["name"], pkg["version"], tag), metadata, ""))
    return out


@pytest.mark.parametrize("name", list(WHEEL_SCENARIOS))
def test_selection_markers_match_the_installer_pick(name: str) -> None:
    wheels = _package_wheels(name)
    filenames = [f for f, _, _ in wheels]
    selections = wheel_selections(filenames)
    checked = 0
    for platform in PLATFORMS:
        for python in PYTHONS:
            env = _env(platform, python)
            pick = installer_pick(filenames, platform, python)
            chosen = {f for f, m in selections.items() if m.evaluate(env)}
            assert chosen == ({pick} if pick else set()), (platform, python, chosen, pick)
            checked += pick is not None
    assert checked >= 4


@pytest.mark.parametrize("name", list(WHEEL_SCENARIOS))
def test_merged_metadata_declares_what_the_picked_wheel_declares(name: str) -> None:
    wheels = _package_wheels(name)
    by_name = {f: m for f, m, _ in wheels}
    merged = merge_wheel_metadata([(f, m) for f, m, _ in wheels])
    assert merged.disagree
    extras = WHEEL_SCENARIOS[name]["extras"]
    for platform in PLATFORMS:
        for python in PYTHONS:
            env = _env(platform, python)
            pick = installer_pick(list(by_name), platform, python)
            if pick is None:
                continue
            for chosen_extras in {(), tuple(extras)}:
                want = declared(by_name[pick], env, chosen_extras)
                got = set()
                for line in merged.metadata.requires_dist:
                    requirement = Requirement(line)
                    marker = (
                        Marker.parse(str(requirement.marker)) if requirement.marker else Marker.TRUE
                    )
                    if marker.evaluate(env, chosen_extras):
                        got.add(canonicalize_name(requirement.name))
                assert got == want, (platform, python, chosen_extras)


def test_agreeing_wheels_come_back_unchanged() -> None:
    metadata = CoreMetadata("a", "1", ("b>=1", 'c; sys_platform == "win32"'), None, (), (), "2.3")
    wheels = [
        ("a-1-cp311-cp311-manylinux_2_17_x86_64.whl", metadata),
        ("a-1-cp311-cp311-win_amd64.whl", CoreMetadata(**{**metadata.__dict__})),
        ("a-1-py3-none-any.whl", metadata),
    ]
    merged = merge_wheel_metadata(wheels)
    assert merged.metadata is metadata
    assert not merged.disagree


def test_spelling_alone_is_no_disagreement() -> None:
    a = CoreMetadata(
        "a", "1", ("numpy (>=1.0) ; platform_system == 'Linux'", "six"), None, ("X",), (), "2.1"
    )
    b = CoreMetadata(
        "a", "1", ("six", 'numpy>=1.0; sys_platform == "linux"'), None, ("x",), (), "2.3"
    )
    merged = merge_wheel_metadata(
        [("a-1-cp311-cp311-win_amd64.whl", a), ("a-1-cp311-cp311-manylinux_2_17_x86_64.whl", b)]
    )
    assert not merged.disagree
    assert merged.metadata is a


def test_specific_wheels_shadow_generic_ones() -> None:
    files = [
        "p-1-py3-none-any.whl",
        "p-1-cp311-abi3-manylinux_2_17_x86_64.whl",
        "p-1-cp312-cp312-manylinux_2_17_x86_64.whl",
        "p-1-cp311-cp311-macosx_11_0_universal2.whl",
        "p-1-cp311-cp311-macosx_11_0_arm64.whl",
        "p-1-cp311-cp311-win32.whl",
        "p-1-cp311-cp311-win_amd64.whl",
    ]
    selections = wheel_selections(files)
    for platform in PLATFORMS:
        for python in PYTHONS:
            env = _env(platform, python)
            chosen = [f for f, m in selections.items() if m.evaluate(env)]
            assert chosen == [installer_pick(files, platform, python)], (platform, python)
    linux = _env("linux-x86_64", "3.12.3")
    assert selections["p-1-cp312-cp312-manylinux_2_17_x86_64.whl"].evaluate(linux)
    assert selections["p-1-cp311-abi3-manylinux_2_17_x86_64.whl"].evaluate(
        _env("linux-x86_64", "3.13.1")
    )
    assert selections["p-1-cp311-cp311-win_amd64.whl"].evaluate(_env("windows-amd64", "3.11.9"))
    assert selections["p-1-cp311-cp311-macosx_11_0_universal2.whl"].evaluate(
        _env("macos-x86_64", "3.11.9")
    )


def test_free_threaded_wheels_are_not_picked_by_a_regular_python() -> None:
    """A ``cp313t`` wheel needs a free-threaded build, which no marker can select: where it
    is the only platform wheel, the pure wheel is the one installed (as pip and uv do)."""
    files = [
        "p-1-cp313-cp313t-manylinux_2_28_x86_64.whl",
        "p-1-cp312-cp312-manylinux_2_28_x86_64.whl",
        "p-1-py3-none-any.whl",
    ]
    selections = wheel_selections(files)
    assert selections["p-1-cp313-cp313t-manylinux_2_28_x86_64.whl"].is_false()
    for platform in PLATFORMS:
        for python in PYTHONS:
            env = _env(platform, python)
            chosen = [f for f, m in selections.items() if m.evaluate(env)]
            assert chosen == [installer_pick(files, platform, python)], (platform, python)


# -- end to end: current uv, lockfix repair, uv sync on this machine ----------------------

needs_uv = pytest.mark.skipif(not uv_bin(NEW).exists(), reason="real uv binaries missing")


class Case:
    def __init__(self, name: str, root: Path) -> None:
        self.name = name
        self.spec = WHEEL_SCENARIOS[name]
        self.root = root
        self.built = build_scenario(get_wheel_scenario(name), root / "build")
        self.server = IndexServer(self.built).start()
        self.tmp = root / "uv-tmp"
        project = make_wheels_project(name, self.server, root / "uv")
        run_uv(NEW, ["lock"], project, self.tmp)
        self.uv_lock = (project / "uv.lock").read_text()

    def project(self, label: str, text: str) -> Path:
        directory = self.root / label
        if directory.exists():
            shutil.rmtree(directory)
        make_wheels_project(self.name, self.server, directory)
        (directory / "uv.lock").write_text(text)
        return directory

    def lockfix(self, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        return run_lockfix(*args, cwd=cwd, cache=self.root / "cache")

    def wheel_metadata(self) -> dict[str, CoreMetadata]:
        out = {}
        for index in self.built.indexes.values():
            for file in index.files.values():
                if file.kind == "wheel" and file.project == self.spec["package"]:
                    out[file.filename] = parse_core_metadata(file.metadata)
        return out

    def extras(self) -> tuple[str, ...]:
        return tuple(self.spec["extras"])


@pytest.fixture(scope="module", params=list(WHEEL_SCENARIOS))
def case(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    if not uv_bin(NEW).exists():
        pytest.skip("real uv binaries missing")
    case = Case(request.param, tmp_path_factory.mktemp(request.param))
    yield case
    case.server.stop()


@pytest.fixture(scope="module")
def repaired(case: Case) -> str:
    project = case.project("repaired", case.uv_lock)
    result = case.lockfix("repair", "uv.lock", cwd=project)
    assert result.returncode == 0, result.stderr + result.stdout
    return (project / "uv.lock").read_text()


def lock_direct(text: str, package: str, env: dict[str, str], extras: tuple[str, ...]) -> set[str]:
    """The edges of ``package`` the lock fires in ``env`` (markers via lockfix's algebra)."""
    lock = parse_lock(text)
    (locked,) = lock.named(package)
    deps = list(locked.dependencies)
    for extra in extras:
        deps += locked.optional_dependencies.get(extra, [])
    return {d.name for d in deps if Marker.parse(d.marker).evaluate(env, extras)}


def mismatches(case: Case, text: str) -> list[tuple[str, str, set[str], set[str]]]:
    metadata = case.wheel_metadata()
    out = []
    for platform in PLATFORMS:
        for python in PYTHONS:
            if python not in _allowed(text):
                continue
            pick = installer_pick(list(metadata), platform, python)
            if pick is None:
                continue
            env = _env(platform, python)
            want = declared(metadata[pick], env, case.extras())
            got = lock_direct(text, case.spec["package"], env, case.extras())
            if got != want:
                out.append((platform, python, want, got))
    return out


def _allowed(text: str) -> set[str]:
    from packaging.specifiers import SpecifierSet

    spec = SpecifierSet(parse_lock(text).requires_python or "")
    return {p for p in PYTHONS if spec.contains(p)}


@needs_uv
def test_uv_alone_locks_the_wrong_set_somewhere(case: Case) -> None:
    wrong = mismatches(case, case.uv_lock)
    assert wrong, "uv's single-wheel lock unexpectedly matches every wheel"


@needs_uv
def test_repaired_markers_follow_the_installer_pick_everywhere(case: Case, repaired: str) -> None:
    assert mismatches(case, repaired) == []


@needs_uv
def test_check_reports_the_disagreement_as_a_finding(case: Case) -> None:
    project = case.project("check", case.uv_lock)
    result = case.lockfix("check", "uv.lock", "--format", "json", cwd=project)
    assert result.returncode == 1, result.stdout + result.stderr
    report = json.loads(result.stdout)
    kinds = {(f["package"], f["kind"]) for f in report["findings"]}
    assert (case.spec["package"], "wheels-disagree") in kinds
    message = next(f["message"] for f in report["findings"] if f["kind"] == "wheels-disagree")
    assert message.startswith(f"wheels of {case.spec['package']} ")


@needs_uv
def test_current_uv_accepts_the_repaired_lock_and_installs_the_linux_wheel_deps(
    case: Case, repaired: str
) -> None:
    project = case.project("sync", repaired)
    check = run_uv(NEW, ["lock", "--check"], project, case.tmp, check=False)
    assert check.returncode == 0, check.stderr
    run_uv(NEW, ["sync", "--frozen"], project, case.tmp)
    listing = run_uv(
        NEW,
        ["pip", "list", "--format", "json", "--python", str(project / ".venv")],
        project,
        case.tmp,
    ).stdout
    installed = {canonicalize_name(e["name"]) for e in json.loads(listing)}
    metadata = case.wheel_metadata()
    pick = installer_pick(list(metadata), *HERE)
    assert pick is not None and "linux" in pick and "x86_64" in pick
    env = _env(*HERE)
    want = declared(metadata[pick], env, case.extras())
    assert want <= installed, sorted(want - installed)
    # exactly what the lock says for this machine, and nothing any other wheel declares
    from semantic import Selection, install

    lock = parse_lock(repaired)
    ids, fired = install(lock, env, Selection(frozenset(), frozenset()))
    assert installed == {i.name for i in ids if i not in {m.id for m in lock.members}}
    pulled_by_others = {t.name for p, t, _ in fired if p.name != case.spec["package"]}
    everything = {
        canonicalize_name(Requirement(line).name)
        for m in metadata.values()
        for line in m.requires_dist
    }
    not_here = everything - want - pulled_by_others
    assert not (not_here & installed), sorted(not_here & installed)


@needs_uv
def test_repair_is_a_no_op_on_the_repaired_lock(case: Case, repaired: str) -> None:
    project = case.project("noop", repaired)
    check = case.lockfix("check", "uv.lock", cwd=project)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "wheels-disagree" in check.stdout  # still said, as a warning
    result = case.lockfix("repair", "uv.lock", cwd=project)
    assert result.returncode == 0, result.stderr
    assert (project / "uv.lock").read_text() == repaired


@needs_uv
def test_single_wheel_view_is_uvs(case: Case) -> None:
    """With per_wheel=False lockfix checks against the first wheel only, as before."""
    import asyncio

    from lockfix.engine import Options, analyze_lock

    project = case.project("single", case.uv_lock)
    lock = parse_lock(case.uv_lock)
    options = Options(cache_dir=case.root / "cache", per_wheel=False)
    analysis = asyncio.run(analyze_lock(lock, project, options))
    assert not any(f.kind == "wheels-disagree" for f in analysis.plan.findings)
    assert any(w.kind == "wheels-disagree" for w in analysis.warnings)
    # here the first locked wheel is also the one uv read: uv's lock passes that view
    result = case.lockfix("check", "uv.lock", "--single-wheel", cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "wheels-disagree" in result.stdout


@needs_uv
def test_member_asking_for_an_extra_only_some_wheels_have(tmp_path: Path) -> None:
    """openmm[cuda12] asked for by the project itself (uv#15876): uv drops the extra from
    the member's edge; lockfix keeps member edges as locked, so it says so (exit 1)."""
    built = build_scenario(get_wheel_scenario("wheels_openmm"), tmp_path / "build")
    with IndexServer(built) as server:
        project = make_wheels_project("wheels_openmm", server, tmp_path / "p")
        pyproject = project / "pyproject.toml"
        pyproject.write_text(
            pyproject.read_text().replace(
                '"mdkit==1.2.0", "openmm==8.3.1"', '"openmm[cuda12]==8.3.1"'
            )
        )
        locked = run_uv(NEW, ["lock"], project, tmp_path / "uv")
        assert "does not have an extra named `cuda12`" in locked.stderr
        result = subprocess.run(
            [*LOCKFIX, "check", "uv.lock", "--format", "json", "--cache-dir", str(tmp_path / "c")],
            cwd=project,
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert result.returncode == 1, result.stdout + result.stderr
    findings = json.loads(result.stdout)["findings"]
    member = [f for f in findings if f["package"] == "debug"]
    assert [f["kind"] for f in member] == ["wheels-disagree"]
    assert "openmm[cuda12]" in member[0]["message"]
