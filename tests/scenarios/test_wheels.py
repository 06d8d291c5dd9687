"""Wheels that disagree: one version whose wheels declare different dependencies.

The installer's pick is computed here independently of ``lockfix.analysis.wheels``, from
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
from fixtures.scenarios import (
    OPENMM_CUDA,
    WHEEL_SCENARIOS,
    get_wheel_scenario,
    make_wheels_project,
    reference_wheel_scenario,
)
from fixtures.server import IndexServer
from fixtures.uvrun import base_python, run_uv, uv_bin
from lockfix.analysis.lowering import lower_requirements
from lockfix.analysis.wheels import merge_wheel_metadata, wheel_selections
from lockfix.dist.metadata import CoreMetadata, parse_core_metadata
from lockfix.lock.lockfile import parse_lock
from lockfix.markers import Marker
from tests.helpers import run_lockfix
from tests.semantic import Selection, environments, install, selections

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
    if name == "wheels_torch_nightly" and not reads_nightly_markers():
        pytest.skip(NIGHTLY_SKIP)
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
    same = metadata.with_requirements(metadata.requires_dist, metadata.provides_extra)
    assert same == metadata and same is not metadata
    wheels = [
        ("a-1-cp311-cp311-manylinux_2_17_x86_64.whl", metadata),
        ("a-1-cp311-cp311-win_amd64.whl", same),
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


def _tagged_wheel(directory: Path, tag: str) -> str:
    """A minimal installable wheel ``pick-1.0-<tag>.whl`` whose module names its tag."""
    import base64
    import hashlib
    import zipfile

    filename = f"pick-1.0-{tag}.whl"
    files = {
        "pick/__init__.py": f"TAG = {tag!r}\n",
        "pick-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: pick\nVersion: 1.0\n",
        "pick-1.0.dist-info/WHEEL": (
            f"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: false\nTag: {tag}\n"
        ),
    }
    record = ""
    for name, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record += f"{name},sha256={digest.decode()},{len(text)}\n"
    files["pick-1.0.dist-info/RECORD"] = record + "pick-1.0.dist-info/RECORD,,\n"
    with zipfile.ZipFile(directory / filename, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return filename


# uv's --python-platform for each cell's platform; uv is told a glibc and a macOS as recent
# as lockfix assumes.
UV_PLATFORMS = {
    ("linux", "x86_64"): "x86_64-manylinux_2_40",
    ("linux", "aarch64"): "aarch64-manylinux_2_40",
    ("darwin", "arm64"): "aarch64-apple-darwin",
    ("darwin", "x86_64"): "x86_64-apple-darwin",
    ("win32", "AMD64"): "x86_64-pc-windows-msvc",
    ("win32", "ARM64"): "aarch64-pc-windows-msvc",
}
PICK_TAGS = (
    "cp312-cp312-manylinux_2_17_x86_64",
    "cp312-abi3-manylinux_2_28_x86_64",
    "cp311-abi3-manylinux_2_34_x86_64",
    "py3-none-manylinux_2_5_x86_64",
    "cp313-cp313-musllinux_1_2_x86_64",
    "cp311-cp311-manylinux2014_aarch64",
    "cp310-abi3-manylinux_2_31_aarch64",
    "cp312-cp312-macosx_14_0_arm64",
    "cp311-abi3-macosx_11_0_arm64",
    "cp312-cp312-macosx_10_9_universal2",
    "cp313-cp313-macosx_10_13_x86_64",
    "cp39-abi3-macosx_10_9_x86_64",
    "cp312-none-win_amd64",
    "cp39-abi3-win_amd64",
    "cp313-cp313-win32",
    "cp311-cp311-win_arm64",
    "py3-none-any",
    "cp312-none-any",
    "py311-none-any",
)


@pytest.mark.uv
@pytest.mark.skipif(not uv_bin(NEW).exists(), reason="real uv binaries missing")
def test_installer_choice_is_the_wheel_uv_installs(tmp_path: Path) -> None:
    """For each platform and Python, the order in which uv 0.13.9 installs the wheels (the
    one it installs, then the one it installs once that is gone, …) is lockfix's order,
    down to where uv installs none; there lockfix falls back to a musllinux or 32-bit
    Windows wheel (markers cannot tell those systems apart) and nothing else."""
    from lockfix.analysis.wheels import Cell, installer_choice

    every = sorted(_tagged_wheel(tmp_path, tag) for tag in PICK_TAGS)
    python = base_python()
    for (system, machine), uv_platform in UV_PLATFORMS.items():
        for minor in (10, 11, 12, 13, 14):
            left = list(every)
            while left:
                offer = tmp_path / "offer"
                shutil.rmtree(offer, ignore_errors=True)
                offer.mkdir()
                for filename in left:
                    (offer / filename).hardlink_to(tmp_path / filename)
                target = tmp_path / "target"
                shutil.rmtree(target, ignore_errors=True)
                installed = run_uv(
                    NEW,
                    [
                        "pip",
                        "install",
                        "--offline",
                        "--no-index",
                        "--find-links",
                        str(offer),
                        "--target",
                        str(target),
                        "--python",
                        python,
                        "--python-platform",
                        uv_platform,
                        "--python-version",
                        f"3.{minor}",
                        "pick",
                    ],
                    tmp_path,
                    tmp_path / "uv",
                    check=False,
                    MACOSX_DEPLOYMENT_TARGET="15.0",
                )
                ours = installer_choice(left, Cell((system, machine), (3, minor), "CPython"))
                where = (uv_platform, minor, left)
                if installed.returncode != 0:
                    assert ours is None or "musllinux" in ours or "win32" in ours, where
                    break
                text = (target / "pick" / "__init__.py").read_text()
                uv_pick = f"pick-1.0-{text.split(chr(39))[1]}.whl"
                assert ours == uv_pick, where
                left.remove(uv_pick)


# -- end to end: current uv, lockfix repair, uv sync on this machine ----------------------
#
# The truth for one environment is walked from the scenario's own wheels: from the
# project's requirements, each package's wheel is the one the installer picks there
# (``installer_pick``) and its Requires-Dist (with the extras asked for) says what comes
# next. None when some package on the way has no wheel for that environment.

needs_uv = pytest.mark.skipif(not uv_bin(NEW).exists(), reason="real uv binaries missing")
WHERE = {  # the export of each lock is evaluated here
    "linux-x86_64": "3.12.3",
    "macos-arm64": "3.12.3",
    "windows-amd64": "3.12.3",
}


NIGHTLY_SKIP = 'lockfix cannot read python_version != "3.13t" yet (marker fidelity)'


def reads_nightly_markers() -> bool:
    """Whether lockfix reads ``python_version != "3.13t"`` (torch nightlies) in a wheel's
    Requires-Dist, as uv does (it ignores the comparison)."""
    line = 'pytorch-triton; platform_machine == "x86_64" and python_version != "3.13t"'
    with_line = CoreMetadata("t", "1", (line,), None, (), (), "2.3")
    without = CoreMetadata("t", "1", (), None, (), (), "2.3")
    try:
        merged = merge_wheel_metadata(
            [
                ("t-1-cp311-cp311-manylinux_2_28_x86_64.whl", with_line),
                ("t-1-py3-none-any.whl", without),
            ]
        )
        lower_requirements(merged.metadata)
    except ValueError:
        return False
    return True


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
        self._wheels: dict[str, dict[str, CoreMetadata]] | None = None

    def project(self, label: str, text: str) -> Path:
        directory = self.root / label
        if directory.exists():
            shutil.rmtree(directory)
        make_wheels_project(self.name, self.server, directory)
        (directory / "uv.lock").write_text(text)
        return directory

    def lockfix(self, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        return run_lockfix(*args, cwd=cwd, cache=self.root / "cache")

    def wheels(self) -> dict[str, dict[str, CoreMetadata]]:
        """name → {wheel filename → its metadata}, over every index of the scenario."""
        if self._wheels is None:
            self._wheels = {}
            for index in self.built.indexes.values():
                for file in index.files.values():
                    if file.kind == "wheel":
                        metadata = parse_core_metadata(file.metadata)
                        self._wheels.setdefault(file.project, {})[file.filename] = metadata
        return self._wheels

    def wheel_metadata(self) -> dict[str, CoreMetadata]:
        return self.wheels()[self.spec["package"]]

    def extras(self) -> tuple[str, ...]:
        return tuple(self.spec["extras"])

    def truth(self, platform: str, python: str) -> set[str] | None:
        """What an installer puts in this environment, package by package from the wheel it
        picks (None: some package has no wheel here)."""
        env = _env(platform, python)
        wheels = self.wheels()
        installed: set[str] = set()
        todo = [(Requirement(line), "") for line in self.spec["dependencies"]]
        seen: set[tuple[str, str]] = set()
        while todo:
            requirement, extra = todo.pop()
            if requirement.marker is not None and not requirement.marker.evaluate(
                {**env, "extra": extra}
            ):
                continue
            name = canonicalize_name(requirement.name)
            pick = installer_pick(list(wheels[name]), platform, python)
            if pick is None:
                return None
            installed.add(name)
            metadata = wheels[name][pick]
            for wanted in ("", *sorted(canonicalize_name(e) for e in requirement.extras)):
                if (name, wanted) in seen:
                    continue
                seen.add((name, wanted))
                todo += [(Requirement(line), wanted) for line in metadata.requires_dist]
        return installed

    def reference(self) -> str:
        """uv's lock of the same project when every wheel of the package declares the merged
        metadata written by hand, with this case's index URL put back."""
        built = build_scenario(reference_wheel_scenario(self.name), self.root / "reference-build")
        with IndexServer(built) as server:
            project = make_wheels_project(self.name, server, self.root / "reference")
            run_uv(NEW, ["lock"], project, self.root / "reference-tmp")
            text = (project / "uv.lock").read_text()
            return text.replace(server.url.rstrip("/"), self.server.url.rstrip("/"))

    def export(self, text: str) -> list[Requirement]:
        """``uv export --frozen`` of a lock: one requirement per package, with its marker."""
        project = self.project("export", text)
        out = run_uv(NEW, ["export", "--frozen", "--no-hashes"], project, self.tmp).stdout
        lines = [line for line in out.splitlines() if line.strip()]
        return [Requirement(line) for line in lines if not line.lstrip().startswith(("#", "-"))]


@pytest.fixture(scope="module", params=list(WHEEL_SCENARIOS))
def case(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    if not uv_bin(NEW).exists():
        pytest.skip("real uv binaries missing")
    if request.param == "wheels_torch_nightly" and not reads_nightly_markers():
        pytest.skip(NIGHTLY_SKIP)
    case = Case(request.param, tmp_path_factory.mktemp(request.param))
    yield case
    case.server.stop()


@pytest.fixture(scope="module")
def repaired(case: Case) -> str:
    project = case.project("repaired", case.uv_lock)
    result = case.lockfix("repair", "uv.lock", cwd=project)
    assert result.returncode == 0, result.stderr + result.stdout
    return (project / "uv.lock").read_text()


@pytest.fixture(scope="module")
def reference(case: Case) -> str:
    return case.reference()


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


def installs(case: Case, text: str) -> list[tuple[str, str, set[str], set[str]]]:
    """(platform, python, truth, what the lock installs) wherever the truth is known."""
    lock = parse_lock(text)
    members = {m.id for m in lock.members}
    out = []
    for platform in PLATFORMS:
        for python in sorted(_allowed(text)):
            truth = case.truth(platform, python)
            if truth is None:
                continue
            ids, _ = install(lock, _env(platform, python), Selection(frozenset(), frozenset()))
            out.append((platform, python, truth, {i.name for i in ids if i not in members}))
    return out


def _allowed(text: str) -> set[str]:
    from packaging.specifiers import SpecifierSet

    spec = SpecifierSet(parse_lock(text).requires_python or "")
    return {p for p in PYTHONS if spec.contains(p)}


@needs_uv
def test_uv_alone_locks_the_wrong_set_somewhere(case: Case) -> None:
    wrong = mismatches(case, case.uv_lock)
    assert wrong, "uv's single-wheel lock unexpectedly matches every wheel"
    found = installs(case, case.uv_lock)
    assert any(truth != got for _, _, truth, got in found)
    short = [(p, v, truth - got) for p, v, truth, got in found if truth - got]
    if case.spec["harm"] == "less":
        assert short, "uv's lock was expected to miss what some wheel needs"
    else:  # it only installs more than needed
        assert short == []


@needs_uv
def test_check_ranks_the_disagreement_by_harm(case: Case) -> None:
    project = case.project("check", case.uv_lock)
    result = case.lockfix("check", "uv.lock", "--format", "json", cwd=project)
    report = json.loads(result.stdout)
    package = case.spec["package"]
    if case.spec["harm"] == "less":
        assert result.returncode == 1, result.stdout + result.stderr
        (entry,) = [
            f
            for f in report["findings"]
            if f["package"] == package and f["kind"] == "wheels-disagree"
        ]
        assert entry["harm"] == "less"
        assert "installs less than a picked wheel needs" in entry["message"]
    else:
        assert result.returncode == 0, result.stdout + result.stderr
        assert report["findings"] == []
        (entry,) = [w for w in report["warnings"] if w["kind"] == "wheels-disagree"]
        assert entry["package"] == package and entry["harm"] == "more"
        assert "installs more than the picked wheel needs" in entry["message"]
    assert entry["message"].startswith(f"wheels of {package} ")
    text = case.lockfix("check", "uv.lock", cwd=project).stdout
    assert f"installs {entry['harm']} than" in text


@needs_uv
def test_repaired_markers_follow_the_installer_pick_everywhere(case: Case, repaired: str) -> None:
    if case.spec["harm"] == "more":
        assert repaired == case.uv_lock  # only more than needed: kept as locked
        assert all(want <= got for _, _, want, got in mismatches(case, repaired))
    else:
        assert mismatches(case, repaired) == []


@needs_uv
def test_repaired_lock_installs_what_the_picked_wheels_need(case: Case, repaired: str) -> None:
    found = installs(case, repaired)
    assert len({p for p, _, _, _ in found}) >= 2
    if case.spec["harm"] == "more":
        assert all(truth <= got for _, _, truth, got in found)
    else:
        assert [(p, v) for p, v, truth, got in found if truth != got] == []


@needs_uv
def test_repaired_lock_means_what_uv_locks_from_the_merged_metadata(
    case: Case, repaired: str, reference: str
) -> None:
    """The reference: uv 0.13.9's lock of the same project when every wheel of the package
    declares the merged metadata (written by hand in the scenario), index URL put back.
    Compared by meaning wherever the package has a wheel."""
    ours, theirs = parse_lock(repaired), parse_lock(reference)
    packages_ours, packages_theirs = {p.id for p in ours.packages}, {p.id for p in theirs.packages}
    if case.spec["harm"] == "more":
        assert packages_ours >= packages_theirs
    else:
        assert packages_ours == packages_theirs
    compared = 0
    for env in environments(theirs):
        platform = next(
            k
            for k, v in PLATFORMS.items()
            if (v[0], v[1]) == (env["sys_platform"], env["platform_machine"])
        )
        if case.truth(platform, env["python_full_version"]) is None:
            continue
        compared += 1
        nothing = Selection(frozenset(), frozenset())
        (ids_ours, fired_ours), (ids_theirs, fired_theirs) = (
            install(ours, env, nothing),
            install(theirs, env, nothing),
        )
        if case.spec["harm"] == "more":
            assert ids_theirs <= ids_ours, (platform, env["python_full_version"])
        else:
            assert ids_ours == ids_theirs, (platform, env["python_full_version"])
            assert fired_ours == fired_theirs, (platform, env["python_full_version"])
    assert compared >= 3


@needs_uv
def test_export_per_platform_shows_the_right_set(case: Case, repaired: str) -> None:
    """``uv export --frozen``, its markers evaluated by packaging for each platform."""
    exported = case.export(repaired)
    checked = 0
    for platform, python in WHERE.items():
        truth = case.truth(platform, python)
        if truth is None:
            continue
        checked += 1
        env = _env(platform, python)
        got = {
            canonicalize_name(r.name)
            for r in exported
            if r.marker is None or r.marker.evaluate(env)
        }
        if case.spec["harm"] == "more":
            assert truth <= got, (platform, sorted(truth - got))
        else:
            assert got == truth, (platform, sorted(got ^ truth))
    assert checked >= 2


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
    truth = case.truth(*HERE)
    assert truth is not None
    if case.spec["harm"] == "more":
        assert truth <= installed, sorted(truth - installed)
    else:
        assert installed == truth, sorted(installed ^ truth)
    # exactly what the lock says for this machine
    lock = parse_lock(repaired)
    ids, _ = install(lock, _env(*HERE), Selection(frozenset(), frozenset()))
    assert installed == {i.name for i in ids if i not in {m.id for m in lock.members}}


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
    from lockfix.engine import analyze_lock
    from lockfix.settings import Settings

    project = case.project("single", case.uv_lock)
    lock = parse_lock(case.uv_lock)
    settings = Settings(cache_dir=case.root / "cache", per_wheel=False)
    analysis = analyze_lock(lock, project, settings)
    assert not any(f.kind == "wheels-disagree" for f in analysis.plan.findings)
    assert any(w.kind == "wheels-disagree" for w in analysis.warnings)
    # here the first locked wheel is also the one uv read: uv's lock passes that view
    result = case.lockfix("check", "uv.lock", "--single-wheel", cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "wheels-disagree" in result.stdout


@needs_uv
def test_member_edge_gets_the_extra_only_some_wheels_define(tmp_path: Path) -> None:
    """openmm[cuda12] asked for by the project itself (uv#15876): uv reads a macOS wheel,
    warns, and drops the extra from the member's edge; repair puts it back, and openmm's
    cuda12 table with the markers of the wheels that define it."""
    case = Case("wheels_openmm", tmp_path)
    try:
        project = case.project("check", case.uv_lock)
        result = case.lockfix("check", "uv.lock", "--format", "json", cwd=project)
        assert result.returncode == 1, result.stdout + result.stderr
        findings = json.loads(result.stdout)["findings"]
        member = [f for f in findings if f["package"] == "debug"]
        assert [(f["kind"], f["target"], f["harm"]) for f in member] == [
            ("missing-extra", "openmm", "less")
        ]
        assert "openmm[cuda12]" in member[0]["message"]
        assert case.lockfix("repair", "uv.lock", cwd=project).returncode == 0
        lock = parse_lock((project / "uv.lock").read_text())
        (debug,) = lock.members
        assert [(d.name, d.extras, d.marker) for d in debug.dependencies] == [
            ("openmm", ("cuda12",), "")
        ]
        (openmm,) = lock.named("openmm")
        assert set(openmm.optional_dependencies) == {"cuda12"}
        (edge,) = openmm.optional_dependencies["cuda12"]
        marker = Marker.parse(edge.marker)
        assert edge.name == "openmm-cuda-12"
        assert marker.evaluate(_env("linux-x86_64", "3.12.3"))
        assert marker.evaluate(_env("windows-amd64", "3.12.3"))
        assert not marker.evaluate(_env("macos-arm64", "3.12.3"))
        assert not marker.evaluate(_env("macos-x86_64", "3.12.3"))
        # the seven packages cuda12 brings, by uv's export: Linux x86_64 and Windows only
        seven = {"openmm-cuda-12", "nvidia-nvjitlink-cu12"} | {n for n, _, _ in OPENMM_CUDA}
        assert len(seven) == 7
        exported = case.export((project / "uv.lock").read_text())
        for platform, wanted in (
            ("linux-x86_64", seven),
            ("windows-amd64", seven),
            ("macos-arm64", set()),
            ("macos-x86_64", set()),
        ):
            env = _env(platform, "3.12.3")
            got = {
                canonicalize_name(r.name)
                for r in exported
                if r.marker is None or r.marker.evaluate(env)
            }
            assert got - {"openmm", "numpy"} == wanted, platform
    finally:
        case.server.stop()


MEMBER_TABLES = {
    "group": '[dependency-groups]\ngpu = ["openmm[cuda12]==8.3.1"]\n',
    "extra": '[project.optional-dependencies]\ngpu = ["openmm[cuda12]==8.3.1"]\n',
}


@needs_uv
@pytest.mark.parametrize("kind", list(MEMBER_TABLES))
def test_member_table_edge_gets_the_extra(kind: str, tmp_path: Path) -> None:
    """``openmm[cuda12]`` asked for in a dependency group or an extra of the project, plain
    ``openmm`` in its dependencies: the repaired lock means what uv locks when every openmm
    wheel declares the merged metadata, for every choice of group/extra."""

    def write(project: Path, server: IndexServer) -> Path:
        make_wheels_project("wheels_openmm", server, project)
        text = (project / "pyproject.toml").read_text()
        text = text.replace('"openmm[cuda12]==8.3.1"', '"openmm==8.3.1"')
        text = text.replace("\n[tool.uv]\n", f"\n{MEMBER_TABLES[kind]}\n[tool.uv]\n")
        (project / "pyproject.toml").write_text(text)
        return project

    case = Case("wheels_openmm", tmp_path)
    try:
        project = write(tmp_path / "p", case.server)
        run_uv(NEW, ["lock"], project, case.tmp)
        result = case.lockfix("repair", "uv.lock", "--format", "json", cwd=project)
        assert result.returncode == 0, result.stdout + result.stderr
        findings = json.loads(result.stdout)["findings"]
        assert [(f["kind"], f["harm"]) for f in findings if f["package"] == "debug"] == [
            ("missing-extra", "less")
        ]
        repaired = (project / "uv.lock").read_text()
        (debug,) = parse_lock(repaired).members
        table = debug.dev_dependencies if kind == "group" else debug.optional_dependencies
        assert [(d.name, d.extras) for d in table["gpu"]] == [("openmm", ("cuda12",))]
        assert [(d.name, d.extras) for d in debug.dependencies] == [("openmm", ())]
        check = run_uv(NEW, ["lock", "--check"], project, case.tmp, check=False)
        assert check.returncode == 0, check.stderr
        assert case.lockfix("check", "uv.lock", cwd=project).returncode == 0

        built = build_scenario(reference_wheel_scenario("wheels_openmm"), tmp_path / "rb")
        with IndexServer(built) as server:
            reference = write(tmp_path / "reference", server)
            run_uv(NEW, ["lock"], reference, tmp_path / "rtmp")
            theirs = (reference / "uv.lock").read_text().replace(server.url, case.server.url)
        ours_lock, theirs_lock = parse_lock(repaired), parse_lock(theirs)
        assert {p.id for p in ours_lock.packages} == {p.id for p in theirs_lock.packages}
        # the member's block as uv writes it, byte for byte
        (ours_member,), (theirs_member,) = ours_lock.members, theirs_lock.members
        assert ours_lock.blocks[ours_member.block] == theirs_lock.blocks[theirs_member.block]
        compared = 0
        for selection in selections(theirs_lock):
            for env in environments(theirs_lock):
                platform = next(
                    k
                    for k, v in PLATFORMS.items()
                    if (v[0], v[1]) == (env["sys_platform"], env["platform_machine"])
                )
                if case.truth(platform, env["python_full_version"]) is None:
                    continue  # no openmm wheel here
                compared += 1
                assert install(ours_lock, env, selection) == install(theirs_lock, env, selection), (
                    platform,
                    env["python_full_version"],
                    selection.describe(),
                )
        assert compared >= 6

        flag = "--group" if kind == "group" else "--extra"
        run_uv(NEW, ["sync", "--frozen", flag, "gpu"], project, case.tmp)
        listing = run_uv(
            NEW,
            ["pip", "list", "--format", "json", "--python", str(project / ".venv")],
            project,
            case.tmp,
        ).stdout
        installed = {canonicalize_name(e["name"]) for e in json.loads(listing)}
        assert installed == case.truth(*HERE)
    finally:
        case.server.stop()
