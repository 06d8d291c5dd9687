from __future__ import annotations

import ast
import functools
import itertools
import pickle
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from packaging.markers import Marker as PackagingMarker
from packaging.specifiers import SpecifierSet

from lockfix.markers import (
    InvalidMarker,
    Marker,
    conflict_extra,
    normalize_extra,
    parse_conflict_extra,
)

# shared/ sits beside the checkout (locally and in CI)
REAL_LOCKS = Path(__file__).resolve().parents[3] / "shared" / "real-locks"
LOCK_FILES = sorted(REAL_LOCKS.glob("*/uv.lock"))


def _collect_markers(obj: object, out: set[str]) -> None:
    if isinstance(obj, dict):
        for key, value in obj.items():
            if key == "marker" and isinstance(value, str):
                out.add(value)
            elif key.endswith("-markers") and isinstance(value, list):
                out.update(v for v in value if isinstance(v, str))
            else:
                _collect_markers(value, out)
    elif isinstance(obj, list):
        for item in obj:
            _collect_markers(item, out)


@functools.cache  # read once per process: each lock's round trip and the share over all
def lock_markers(path: Path) -> frozenset[str]:
    out: set[str] = set()
    _collect_markers(tomllib.loads(path.read_text()), out)
    return frozenset(out)


# -- real locks ---------------------------------------------------------------------------------


@pytest.mark.skipif(not LOCK_FILES, reason="real locks not available")
@pytest.mark.parametrize("lock", LOCK_FILES, ids=lambda p: p.parent.name)
def test_real_lock_round_trip(lock: Path) -> None:
    # Only what holds for every marker uv can write: a lock may have few markers or none,
    # and uv writes the FALSE marker (``python_version < '0'``) in resolution-markers.
    strings = lock_markers(lock)
    if not strings:
        pytest.skip("the lock has no markers")
    for text in strings:
        marker = Marker.parse(text)
        printed = str(marker)
        assert Marker.parse(printed) == marker, text
        assert str(Marker.parse(printed)) == printed


@pytest.mark.skipif(not LOCK_FILES, reason="real locks not available")
def test_real_lock_mostly_identical_to_uv() -> None:
    strings = set().union(*(lock_markers(p) for p in LOCK_FILES))
    identical = sum(str(Marker.parse(s)) == s for s in strings)
    assert identical / len(strings) > 0.85


NEMO = REAL_LOCKS / "NVIDIA-NeMo__RL" / "uv.lock"

_WORK_SCRIPT = """
import cProfile, pstats, sys
sys.path[:0] = [{tests!r}]
from test_markers import lock_markers
from lockfix.markers import Marker
strings = lock_markers(__import__("pathlib").Path({lock!r}))
parsing = cProfile.Profile()
parsing.enable()
for s in strings:
    Marker.parse(s)
parsing.disable()
printing = cProfile.Profile()
printing.enable()
texts = {{s: str(Marker.parse(s)) for s in sorted(strings, reverse=True)}}
printing.disable()
calls = [pstats.Stats(p).total_calls for p in (parsing, printing)]
print(len(strings), sum(map(len, strings)), *calls)
print(repr(texts))
"""


@pytest.mark.skipif(not NEMO.exists(), reason="real locks not available")
def test_nemo_parse_and_print_work_in_a_cold_process() -> None:
    """The work of parsing and printing a real lock's markers, counted in Python function
    calls (the same on any machine, under any load), stays near what it was when this was
    written: 2.3 calls per character of marker text for parsing, 8.7 for printing. (The
    memo of the decision diagrams' AND/OR, turned off, costs parsing 3.4.)"""
    script = _WORK_SCRIPT.format(tests=str(Path(__file__).parent), lock=str(NEMO))
    first, second = subprocess.run(
        [sys.executable, "-c", script], check=True, capture_output=True, text=True
    ).stdout.splitlines()
    count, characters, parse_calls, print_calls = (int(x) for x in first.split())
    assert count > 100
    assert parse_calls < 3 * characters, (parse_calls, characters)
    assert print_calls < 12 * characters, (print_calls, characters)
    # Printing depends only on meaning, not on what else the process computed before.
    texts = ast.literal_eval(second)
    assert texts == {s: str(Marker.parse(s)) for s in texts}


def test_parse_is_cached() -> None:
    text = "sys_platform == 'linux' and extra == 'x'"
    assert Marker.parse(text) is Marker.parse(text)


CONFLICT_MARKER = (
    "(platform_machine == 'x86_64' and sys_platform == 'linux' and extra != 'group-5-debug-cpu'"
    " and extra != 'group-5-debug-cu126') or (extra == 'group-5-debug-cpu' and"
    " extra == 'group-5-debug-cu126')"
)

OTHER_PLATFORM = (
    "(sys_platform != 'darwin' and sys_platform != 'linux' and sys_platform != 'win32')"
)
# uv writes `== 'linux'` where `!= 'darwin'` would mean the same beside the second clause.
LINUX_NOT_ARM_OR_OTHER = (
    "(platform_machine != 'aarch64' and sys_platform == 'linux')"
    " or (sys_platform != 'darwin' and sys_platform != 'linux')"
)
CAMEL_MARKER = (
    "(python_full_version == '3.12.*' and platform_machine != 'aarch64'"
    " and sys_platform == 'linux') or (python_full_version == '3.12.*'"
    " and sys_platform != 'darwin' and sys_platform != 'linux' and sys_platform != 'win32')"
)

# -- specific behaviour ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "printed"),
    [
        ("", ""),
        ("  ", ""),
        ("python_version == '3.10'", "python_full_version == '3.10.*'"),
        ("python_version != '3.10'", "python_full_version != '3.10.*'"),
        ("python_version > '3.7'", "python_full_version >= '3.8'"),
        ("python_version <= '3.7'", "python_full_version < '3.8'"),
        ("python_version >= '3.8'", "python_full_version >= '3.8'"),
        ("python_version < '3.7.8'", "python_full_version < '3.8'"),
        ("python_version == '3.7.8'", "python_version < '0'"),
        ("python_version < '0'", "python_version < '0'"),
        ("python_version != '3.7.8'", ""),
        ("python_version ~= '3.9'", "python_full_version >= '3.9' and python_full_version < '4'"),
        ("python_version == '3.*'", "python_full_version >= '3' and python_full_version < '4'"),
        ("python_full_version == '3.11.3'", "python_full_version == '3.11.3'"),
        ("python_full_version != '3.11.3'", "python_full_version != '3.11.3'"),
        ("python_full_version == '3.12.*'", "python_full_version == '3.12.*'"),
        ("python_full_version < '3.11.3'", "python_full_version < '3.11.3'"),
        ("python_full_version > '3.11.3'", "python_full_version > '3.11.3'"),
        ("python_full_version <= '3.11'", "python_full_version <= '3.11'"),
        (
            "python_full_version ~= '3.11.2'",
            "python_full_version >= '3.11.2' and python_full_version < '3.12'",
        ),
        ("python_full_version >= '3.13.0rc1'", "python_full_version >= '3.13'"),
        (
            'platform_system == "Linux" and platform_machine == "x86_64"',
            "platform_machine == 'x86_64' and sys_platform == 'linux'",
        ),
        ("platform_system == 'FreeBSD'", "platform_system == 'FreeBSD'"),
        ("platform_system != 'Windows'", "sys_platform != 'win32'"),
        ("'linux' == sys_platform", "sys_platform == 'linux'"),
        ("'3.9' < python_version", "python_full_version >= '3.10'"),
        (
            "sys_platform == 'linux' or sys_platform == 'darwin'",
            "sys_platform == 'darwin' or sys_platform == 'linux'",
        ),
        (
            "sys_platform != 'win32' and sys_platform != 'darwin'",
            "sys_platform != 'darwin' and sys_platform != 'win32'",
        ),
        ("extra == 'Foo_Bar.baz'", "extra == 'foo-bar-baz'"),
        ("extra == 'a' and extra == 'b'", "extra == 'a' and extra == 'b'"),
        ("'arm' in platform_version", "'arm' in platform_version"),
        ("'arm' not in platform_version", "'arm' not in platform_version"),
        ("platform_machine in 'x86_64 aarch64'", "platform_machine in 'x86_64 aarch64'"),
        ("platform_release >= '5.10'", "platform_release >= '5.10'"),
        ("platform_release > '5.10'", "platform_release > '5.10'"),
        ("sys_platform < 'linux'", "python_version < '0'"),
        ("sys_platform >= 'linux'", "sys_platform == 'linux'"),
        ("os.name == 'nt'", "os_name == 'nt'"),
        (
            "python_version in '3.8 3.9'",
            "python_full_version >= '3.8' and python_full_version < '3.10'",
        ),
        ('sys_platform == "it\'s"', 'sys_platform == "it\'s"'),
        (
            "(python_version >= '3.9' and sys_platform == 'linux') or python_version >= '3.10'",
            "python_full_version >= '3.10' or"
            " (python_full_version >= '3.9' and sys_platform == 'linux')",
        ),
        (
            CONFLICT_MARKER,
            CONFLICT_MARKER,
        ),
        (
            "(platform_machine != 'aarch64' and sys_platform == 'win32') or " + OTHER_PLATFORM,
            "(platform_machine != 'aarch64' and sys_platform == 'win32') or " + OTHER_PLATFORM,
        ),
        (
            CAMEL_MARKER,
            CAMEL_MARKER,
        ),
        (LINUX_NOT_ARM_OR_OTHER, LINUX_NOT_ARM_OR_OTHER),
    ],
)
def test_printing(text: str, printed: str) -> None:
    marker = Marker.parse(text)
    assert str(marker) == printed
    assert Marker.parse(printed) == marker


def test_true_false() -> None:
    assert Marker.parse("").is_true()
    assert Marker.TRUE.is_true() and not Marker.TRUE.is_false()
    assert Marker.FALSE.is_false() and not Marker.FALSE.is_true()
    assert str(Marker.TRUE) == ""
    assert Marker.parse(str(Marker.FALSE)) == Marker.FALSE
    linux = Marker.parse("sys_platform == 'linux'")
    assert (linux | ~linux).is_true()
    assert (linux & ~linux).is_false()
    assert linux & Marker.TRUE == linux
    assert (linux | Marker.TRUE).is_true()


def test_equality_is_semantic() -> None:
    a = Marker.parse("sys_platform == 'linux' and python_version >= '3.9'")
    b = Marker.parse("python_full_version >= '3.9' and 'linux' == sys_platform")
    assert a == b and hash(a) == hash(b)
    assert len({a, b}) == 1
    assert ~Marker.parse("extra == 'a' or extra == 'b'") == Marker.parse(
        "extra != 'a' and extra != 'b'"
    )
    assert Marker.parse("platform_system == 'Windows'") == Marker.parse("sys_platform == 'win32'")
    assert Marker.parse("python_version > '3.7'") == Marker.parse("python_full_version >= '3.8'")
    assert Marker.parse("python_version == '3.10'") == Marker.parse(
        "python_full_version >= '3.10' and python_full_version < '3.11'"
    )
    assert Marker.parse("python_full_version == '3.10.0'") == Marker.parse(
        "python_full_version == '3.10'"
    )
    assert Marker.parse("extra == 'Foo.Bar'") == Marker.parse("extra == 'foo-bar'")
    assert Marker.parse("sys_platform == 'linux'") != Marker.parse("sys_platform == 'darwin'")
    assert Marker.parse("sys_platform == 'linux'") != "sys_platform == 'linux'"


def test_immutable_and_picklable() -> None:
    marker = Marker.parse("sys_platform == 'linux' and extra == 'x'")
    with pytest.raises(AttributeError):
        marker.foo = 1  # type: ignore[attr-defined]
    assert pickle.loads(pickle.dumps(marker)) == marker


def test_simplify_python_cases() -> None:
    assert Marker.parse("python_version >= '3.8'").simplify_python(">=3.9").is_true()
    assert Marker.parse("python_version < '3.9'").simplify_python(">=3.9").is_false()
    assert str(Marker.parse("python_version < '3.12'").simplify_python(">=3.9")) == (
        "python_full_version < '3.12'"
    )
    assert str(
        Marker.parse("python_full_version >= '3.10'").simplify_python(SpecifierSet(">=3.9,<3.12"))
    ) == ("python_full_version >= '3.10'")
    both = Marker.parse("python_version >= '3.8' and sys_platform == 'linux'")
    assert str(both.simplify_python(">=3.9")) == "sys_platform == 'linux'"
    assert (
        Marker.parse("python_full_version == '3.12.*'").simplify_python(">=3.12.1,<3.13").is_true()
    )


def test_simplify_under() -> None:
    parent = Marker.parse("python_full_version < '3.11'")
    child = Marker.parse("python_version < '3.13'")
    assert child.simplify_under(parent).is_true()
    linux = Marker.parse("sys_platform == 'linux'")
    env = Marker.parse("sys_platform == 'linux' or sys_platform == 'darwin'")
    assert linux.simplify_under(env) == linux
    assert Marker.parse("sys_platform != 'win32'").simplify_under(env).is_true()
    m = Marker.parse("sys_platform == 'linux' and extra == 'cpu'")
    assert str(m.simplify_under(linux)) == "extra == 'cpu'"
    assert m.simplify_under(Marker.FALSE).is_false()
    assert m.simplify_under(Marker.TRUE) == m


def test_extras_operations() -> None:
    m = Marker.parse(
        "(sys_platform == 'linux' and extra == 'cpu') or (extra == 'gpu' and extra != 'cpu')"
    )
    assert m.extras() == frozenset({"cpu", "gpu"})
    assert str(m.without_extras()) == ""
    assert Marker.parse("sys_platform == 'linux' and extra == 'cpu'").without_extras() == (
        Marker.parse("sys_platform == 'linux'")
    )
    assert m.only_extras() == Marker.parse("extra == 'cpu' or extra == 'gpu'")
    assert m.restrict_extras(active=["cpu"], inactive=[]) == Marker.parse("sys_platform == 'linux'")
    assert m.restrict_extras(active=["GPU"], inactive=["cpu"]).is_true()
    assert m.restrict_extras(active=[], inactive=["cpu", "gpu"]).is_false()
    assert Marker.parse("sys_platform == 'linux'").extras() == frozenset()


def test_restrict_extras_reads_names_as_the_marker_does() -> None:
    m = Marker.parse("(sys_platform == 'linux' and extra == 'foo-bar') or extra == 'gpu'")
    linux = Marker.parse("sys_platform == 'linux'")
    # any spelling of a mentioned extra; names the marker does not mention change nothing
    assert m.restrict_extras(active=["Foo_Bar"], inactive=["GPU", "cpu", "x"]) == linux
    assert m.restrict_extras(active=["foo.bar"], inactive=[f"e{i}" for i in range(500)]) == (
        linux | Marker.parse("extra == 'gpu'")
    )
    assert m.restrict_extras(inactive=["cpu", "x"]) == m
    # an extra given as both active and inactive is active
    assert m.restrict_extras(active=["gpu"], inactive=["gpu", "foo-bar"]).is_true()
    assert m.restrict_extras(active=["Foo-Bar"], inactive=["FOO_BAR", "gpu"]) == linux
    # the extras of each marker, not of another one seen before it
    for name in ("foo-bar", "foo-baz", "foo-bar", "gpu"):
        assert Marker.parse(f"extra == '{name}'").extras() == frozenset({name})
    assert (m & Marker.parse("extra == 'cpu'")).extras() == frozenset({"foo-bar", "gpu", "cpu"})
    assert m.restrict_extras(active=["gpu"]).extras() == frozenset()
    assert m.restrict_extras(inactive=["gpu"]).extras() == frozenset({"foo-bar"})


def test_implies() -> None:
    assert Marker.parse("python_version >= '3.10'").implies(Marker.parse("python_version > '3.8'"))
    assert not Marker.parse("python_version >= '3.8'").implies(
        Marker.parse("python_version >= '3.10'")
    )
    assert Marker.FALSE.implies(Marker.parse("extra == 'x'"))
    assert Marker.parse("extra == 'x'").implies(Marker.TRUE)
    assert Marker.parse("extra == 'a' and extra == 'b'").implies(Marker.parse("extra == 'a'"))


def test_evaluate() -> None:
    m = Marker.parse("python_version >= '3.10' and sys_platform == 'linux' and extra == 'Cpu'")
    env = {"python_full_version": "3.11.4", "sys_platform": "linux"}
    assert m.evaluate(env, ["cpu"])
    assert m.evaluate(env, ["CPU"])
    assert not m.evaluate(env)
    assert not m.evaluate({"python_version": "3.9", "sys_platform": "linux"}, ["cpu"])
    assert Marker.parse("python_version >= '3.13'").evaluate({"python_full_version": "3.13.0rc1"})
    assert Marker.parse("python_full_version < '3.12'").evaluate({"python_full_version": "3.11.4+"})
    with pytest.raises(KeyError):
        Marker.parse("os_name == 'nt'").evaluate({})
    assert Marker.parse("'arm' in platform_machine").evaluate({"platform_machine": "armv7l"})
    assert Marker.parse("platform_release >= '5.10'").evaluate({"platform_release": "5.15.0"})
    assert not Marker.parse("platform_release >= '5.10'").evaluate({"platform_release": "5.9"})
    assert Marker.parse("extra == 'a' and extra == 'b'").evaluate({}, ["a", "b"])


@pytest.mark.parametrize(
    "text",
    [
        "sys_platform ==",
        "sys_platform == 'linux' and",
        "(sys_platform == 'linux'",
        "sys_platform == 'linux')",
        "sys_platform = 'linux'",
        "foo == 'bar'",
        "'a' == 'b'",
        "sys_platform == os_name",
        "sys_platform == 'linux' sys_platform == 'darwin'",
        "python_version >= 'abc'",
        "python_version >= '3.*'",
        "extra > 'a'",
        "'a' in extra",
        "sys_platform ~= '1.0'",
        "sys_platform == 'linux",
        "not sys_platform == 'linux'",
    ],
)
def test_invalid(text: str) -> None:
    with pytest.raises(InvalidMarker) as info:
        Marker.parse(text)
    assert isinstance(info.value, ValueError)
    assert repr(text) in str(info.value)


def test_conflict_extras() -> None:
    assert conflict_extra("group", "debug", "cpu") == "group-5-debug-cpu"
    assert conflict_extra("extra", "project", "cu118") == "extra-7-project-cu118"
    assert conflict_extra("extra", "Nemo_RL", "vllm") == "extra-7-nemo-rl-vllm"
    assert conflict_extra("project", "demo", None) == "project-4-demo"
    assert parse_conflict_extra("group-5-debug-cpu") == ("group", "debug", "cpu")
    assert parse_conflict_extra("extra-7-nemo-rl-vllm") == ("extra", "nemo-rl", "vllm")
    assert parse_conflict_extra("extra-8-nemo-gym-vllm") == ("extra", "nemo-gym", "vllm")
    assert parse_conflict_extra("project-4-demo") == ("project", "demo", None)
    assert parse_conflict_extra("extra-11-pydantic-ai-mcp-tasks") == (
        "extra",
        "pydantic-ai",
        "mcp-tasks",
    )
    for bad in ["cpu", "group-5-debug", "group-9-debug-cpu", "project-4-demo-x", "extra-0--x"]:
        assert parse_conflict_extra(bad) is None, bad
    with pytest.raises(ValueError):
        conflict_extra("project", "demo", "x")
    assert normalize_extra("Foo__Bar.-baz") == "foo-bar-baz"


# -- property tests against brute force ----------------------------------------------------------

PY_FULL = [
    "3.7.9", "3.8.0", "3.8.10", "3.9.0", "3.9.5", "3.10.0", "3.10.12", "3.11.0", "3.11.3",
    "3.11.4", "3.11.5", "3.12.0", "3.12.3", "3.13.0", "3.13.1", "3.14.0", "3.14.2", "3.15.1",
]  # fmt: skip
PLATFORMS = [
    ("linux", "Linux", "posix"),
    ("darwin", "Darwin", "posix"),
    ("win32", "Windows", "nt"),
    ("freebsd13", "FreeBSD", "posix"),
    ("cygwin", "CYGWIN_NT-10.0", "posix"),
]
MACHINES = ["x86_64", "aarch64", "arm64", "ppc64le"]
IMPLEMENTATIONS = [("cpython", "CPython"), ("pypy", "PyPy"), ("graalpy", "GraalVM")]
RELEASES = ["5.15.0", "6.1", "5.4.2"]
EXTRAS = ["cpu", "cu126", "group-5-debug-cpu", "extra-7-project-cu118", "foo-bar"]


def make_env(python: str, platform: int, machine: str, impl: int, release: str) -> dict[str, str]:
    sys_platform, system, os_name = PLATFORMS[platform]
    impl_name, py_impl = IMPLEMENTATIONS[impl]
    return {
        "python_full_version": python,
        "python_version": ".".join(python.split(".")[:2]),
        "sys_platform": sys_platform,
        "platform_system": system,
        "os_name": os_name,
        "platform_machine": machine,
        "implementation_name": impl_name,
        "platform_python_implementation": py_impl,
        "implementation_version": python,
        "platform_release": release,
        "platform_version": "#1 SMP PREEMPT_DYNAMIC",
    }


envs = st.builds(
    make_env,
    st.sampled_from(PY_FULL),
    st.integers(0, len(PLATFORMS) - 1),
    st.sampled_from(MACHINES),
    st.integers(0, len(IMPLEMENTATIONS) - 1),
    st.sampled_from(RELEASES),
)
extra_sets = st.frozensets(st.sampled_from(EXTRAS))

CMP = ["==", "!=", "<", "<=", ">", ">="]


def _leaves() -> list[str]:
    out = [
        f"python_version {op} '{v}'"
        for op in [*CMP, "~="]
        for v in PY_VERSIONS
        if not (op == "~=" and v == "3")
    ]
    out += [
        f"python_version {op} '{v}'" for op in ["==", "!="] for v in ["3.11.*", "3.*", "3.9.0.*"]
    ]
    out += [
        f"python_full_version {op} '{v}'"
        for op in CMP
        for v in ["3.11.4", "3.12.0", "3.10", "3.13.1", "3.9.5"]
    ]
    out += [
        f"python_full_version {op} '{v}'"
        for op in ["==", "!="]
        for v in ["3.12.*", "3.11.*", "3.11.4.*", "3.*"]
    ]
    out += ["python_full_version ~= '3.11.2'", "python_full_version ~= '3.10'"]
    out += [f"sys_platform {op} '{v}'" for op in ["==", "!="] for v in ["linux", "darwin", "win32"]]
    out += ['sys_platform == "freebsd13"', "'linux' == sys_platform", "'win32' != sys_platform"]
    out += [
        f"platform_system {op} '{v}'"
        for op in ["==", "!="]
        for v in ["Linux", "Darwin", "Windows", "FreeBSD"]
    ]
    out += [
        f"platform_machine {op} '{v}'"
        for op in ["==", "!="]
        for v in ["x86_64", "aarch64", "arm64"]
    ]
    out += [
        f"{key} {op} '{v}'"
        for key in ["implementation_name", "platform_python_implementation"]
        for op in ["==", "!="]
        for v in ["cpython", "CPython", "pypy", "PyPy"]
    ]
    out += [f"os_name {op} '{v}'" for op in ["==", "!="] for v in ["nt", "posix"]]
    out += [
        f"extra {op} '{v}'"
        for op in ["==", "!="]
        for v in [*EXTRAS, "Foo_Bar", "GROUP-5-debug_cpu"]
    ]
    out += [f"'{v}' == extra" for v in EXTRAS[:2]]
    out += [f"'3.10' {op} python_version" for op in CMP]
    out += [f"'{v}' {op} platform_machine" for v in ["64", "arm"] for op in ["in", "not in"]]
    out += [f"platform_machine {op} 'x86_64 aarch64'" for op in ["in", "not in"]]
    out += [
        f"platform_release {op} '{v}'" for op in ["<", "<=", ">", ">="] for v in ["5.10", "6.1"]
    ]
    out += [f"python_version {op} '3.9 3.11'" for op in ["in", "not in"]]
    return out


PY_VERSIONS = ["3.8", "3.9", "3.10", "3.11", "3.12", "3.13", "3.14", "3.10.2", "3"]
LEAVES = _leaves()
leaves = st.sampled_from(LEAVES)


def _combine(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.builds(
        "({}) {} ({})".format, children, st.sampled_from(["and", "or"]), children
    ) | st.builds("{} {} {}".format, children, st.sampled_from(["and", "or"]), children)


exprs = st.recursive(leaves, _combine, max_leaves=8)


def _sample() -> list[tuple[dict[str, str], frozenset[str]]]:
    subsets = [frozenset(c) for r in range(3) for c in itertools.combinations(EXTRAS, r)]
    out = []
    for i, python in enumerate(PY_FULL):
        for platform in range(len(PLATFORMS)):
            k = i * len(PLATFORMS) + platform
            env = make_env(
                python,
                platform,
                MACHINES[k % len(MACHINES)],
                k % len(IMPLEMENTATIONS),
                RELEASES[k % len(RELEASES)],
            )
            out.append((env, subsets[k % len(subsets)]))
    return out


SAMPLE = _sample()


def oracle(text: str, env: dict[str, str], extras: frozenset[str]) -> bool:
    """packaging's evaluation, with uv's platform_system -> sys_platform equivalence."""
    return _packaging_marker(text).evaluate({**env, "extra": extras})  # type: ignore[dict-item]


@functools.lru_cache(maxsize=4096)
def _packaging_marker(text: str) -> PackagingMarker:
    return PackagingMarker(text)


PROPS = settings(max_examples=300, deadline=None)


@pytest.mark.parametrize("text", LEAVES)
def test_leaf_matches_packaging(text: str) -> None:
    marker = Marker.parse(text)
    printed = str(marker)
    assert Marker.parse(printed) == marker
    for env, extras in SAMPLE:
        expected = oracle(text, env, extras)
        assert marker.evaluate(env, extras) == expected, (env, extras)
        if printed:
            assert oracle(printed, env, extras) == expected, (printed, env, extras)


@PROPS
@given(exprs, envs, extra_sets)
def test_parse_matches_packaging(text: str, env: dict[str, str], extras: frozenset[str]) -> None:
    marker = Marker.parse(text)
    printed = str(marker)
    assert Marker.parse(printed) == marker
    for env_, extras_ in [(env, extras), *SAMPLE]:
        expected = oracle(text, env_, extras_)
        assert marker.evaluate(env_, extras_) == expected
        if printed:
            assert oracle(printed, env_, extras_) == expected


@PROPS
@given(exprs, exprs)
def test_connectives(a: str, b: str) -> None:
    ma, mb = Marker.parse(a), Marker.parse(b)
    under = ma.simplify_under(mb)
    implies = ma.implies(mb)
    for env, extras in SAMPLE:
        va, vb = oracle(a, env, extras), oracle(b, env, extras)
        assert (ma & mb).evaluate(env, extras) == (va and vb)
        assert (ma | mb).evaluate(env, extras) == (va or vb)
        assert (~ma).evaluate(env, extras) == (not va)
        if implies and va:
            assert vb
        if vb:
            assert under.evaluate(env, extras) == va
    assert under & mb == ma & mb
    assert under.is_false() == (ma & mb).is_false()
    assert under.is_true() == (mb.implies(ma) and not mb.is_false())
    assert under.is_false() or len(str(under)) <= len(str(ma))
    assert Marker.parse(str(ma & mb)) == ma & mb
    assert Marker.parse(str(ma | mb)) == ma | mb
    assert ~(ma & mb) == ~ma | ~mb
    assert ~(ma | mb) == ~ma & ~mb
    assert ma & mb == mb & ma
    assert Marker.parse(f"({a}) and ({b})") == ma & mb
    assert Marker.parse(f"({a}) or ({b})") == ma | mb
    assert ma.implies(ma | mb) and (ma & mb).implies(ma)


@PROPS
@given(
    exprs,
    st.sampled_from([">=3.9", ">=3.10,<3.13", ">=3.8,!=3.11.*", "~=3.11.1", ">3.10"]),
)
def test_simplify_python(text: str, requires: str) -> None:
    marker = Marker.parse(text)
    simplified = marker.simplify_python(requires)
    assert len(str(simplified)) <= len(str(marker))
    assert Marker.parse(str(simplified)) == simplified
    spec = SpecifierSet(requires)
    for env, extras in SAMPLE:
        if env["python_full_version"] in spec:
            assert simplified.evaluate(env, extras) == oracle(text, env, extras)


@PROPS
@given(exprs, envs, extra_sets, extra_sets)
def test_extra_quantification(
    text: str, env: dict[str, str], extras: frozenset[str], fixed: frozenset[str]
) -> None:
    marker = Marker.parse(text)
    mentioned = sorted(marker.extras())
    assert set(mentioned) <= {normalize_extra(e) for e in [*EXTRAS, "Foo_Bar", "GROUP-5-debug_cpu"]}
    subsets = [
        frozenset(c)
        for r in range(len(mentioned) + 1)
        for c in itertools.combinations(mentioned, r)
    ]
    exists = any(oracle(text, env, s) for s in subsets)
    assert marker.without_extras().evaluate(env) == exists
    assert marker.without_extras().extras() == frozenset()
    only = marker.only_extras()
    assert only.evaluate(env, extras) == only.evaluate({}, extras)  # needs no environment
    # exactly the extras with which some environment takes the marker
    fixed_here = marker.restrict_extras(extras & set(mentioned), set(mentioned) - extras)
    assert only.evaluate({}, extras) == (not fixed_here.is_false())
    if any(oracle(text, sample, extras) for sample, _ in SAMPLE):
        assert only.evaluate({}, extras)
    assert marker.implies(only)
    if marker.evaluate(env, extras):
        assert only.evaluate({}, extras)
    active = sorted(fixed)[: len(fixed) // 2]
    inactive = sorted(fixed)[len(fixed) // 2 :]
    restricted = marker.restrict_extras(active, inactive)
    effective = (extras - set(inactive)) | set(active)
    assert restricted.evaluate(env, extras) == oracle(text, env, frozenset(effective))
    assert not restricted.extras() & fixed


# Exhaustive checks: a vocabulary without opaque atoms, and one representative environment per
# cell of every variable, so equality and implication can be decided by brute force.
EX_PY = [
    "3.7.5", "3.8.0", "3.8.5", "3.9.0", "3.9.5", "3.10.0", "3.10.5", "3.11.0", "3.11.3", "3.11.4",
    "3.11.5", "3.12.0", "3.12.5", "3.13.0", "3.13.5", "3.14.0", "3.14.5",
]  # fmt: skip
EX_PLATFORMS = ["linux", "darwin", "win32", "cygwin"]
EX_MACHINES = ["x86_64", "aarch64", "ppc64le"]
EX_EXTRAS = ["cpu", "group-5-debug-cpu", "extra-7-project-cu118"]

ex_leaves = st.one_of(
    st.builds(
        "python_version {} '{}'".format,
        st.sampled_from(CMP),
        st.sampled_from(["3.8", "3.10", "3.12", "3.13"]),
    ),
    st.builds(
        "python_full_version {} '{}'".format,
        st.sampled_from(CMP),
        st.sampled_from(["3.11.4", "3.12.0", "3.10"]),
    ),
    st.builds("python_full_version {} '3.12.*'".format, st.sampled_from(["==", "!="])),
    st.builds(
        "sys_platform {} '{}'".format,
        st.sampled_from(["==", "!="]),
        st.sampled_from(["linux", "darwin", "win32"]),
    ),
    st.builds(
        "platform_system {} '{}'".format,
        st.sampled_from(["==", "!="]),
        st.sampled_from(["Linux", "Windows"]),
    ),
    st.builds(
        "platform_machine {} '{}'".format,
        st.sampled_from(["==", "!="]),
        st.sampled_from(["x86_64", "aarch64"]),
    ),
    st.builds("extra {} '{}'".format, st.sampled_from(["==", "!="]), st.sampled_from(EX_EXTRAS)),
)
ex_exprs = st.recursive(ex_leaves, _combine, max_leaves=6)


def exhaustive() -> Iterator[tuple[dict[str, str], frozenset[str]]]:
    for py, platform, machine in itertools.product(EX_PY, EX_PLATFORMS, EX_MACHINES):
        env = {"python_full_version": py, "sys_platform": platform, "platform_machine": machine}
        for r in range(len(EX_EXTRAS) + 1):
            for extras in itertools.combinations(EX_EXTRAS, r):
                yield env, frozenset(extras)


EXHAUSTIVE = list(exhaustive())


def truth_table(marker: Marker) -> tuple[bool, ...]:
    return tuple(marker.evaluate(env, extras) for env, extras in EXHAUSTIVE)


@settings(max_examples=200, deadline=None)
@given(ex_exprs, ex_exprs)
def test_exhaustive_equality_and_implication(a: str, b: str) -> None:
    ma, mb = Marker.parse(a), Marker.parse(b)
    ta, tb = truth_table(ma), truth_table(mb)
    assert (ma == mb) == (ta == tb)
    assert ma.implies(mb) == all(y for x, y in zip(ta, tb, strict=True) if x)
    assert ma.is_false() == (not any(ta))
    assert ma.is_true() == all(ta)
    assert truth_table(Marker.parse(str(ma))) == ta


@settings(max_examples=100, deadline=None)
@given(ex_leaves, ex_leaves, ex_leaves)
def test_de_morgan_and_commutativity(a: str, b: str, c: str) -> None:
    assert Marker.parse(f"{a} and {b}") == Marker.parse(f"{b} and {a}")
    assert Marker.parse(f"{a} or {b} and {c}") == Marker.parse(f"({c} and {b}) or {a}")
    assert ~Marker.parse(f"{a} or {b}") == ~Marker.parse(a) & ~Marker.parse(b)
    assert Marker.parse(f"({a} or {b}) and {c}") == Marker.parse(f"({a} and {c}) or ({b} and {c})")


def test_release_only_versions() -> None:
    # As in uv, pre/post/dev/local parts of versions are dropped (packaging would differ).
    assert Marker.parse("python_full_version >= '3.13.0rc1'") == Marker.parse(
        "python_full_version >= '3.13'"
    )
    assert Marker.parse("python_full_version < '3.13'").evaluate({"python_full_version": "3.12.9"})
    assert not Marker.parse("python_full_version < '3.13'").evaluate(
        {"python_full_version": "3.13.0b1"}
    )
