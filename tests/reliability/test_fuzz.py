"""Fuzzing the lock reader and writer with hypothesis.

- Generated small uv-shaped locks (registry packages, edges with markers and extras,
  optional-dependency tables, sdists and wheels; LF or CRLF) survive the round trip: parse,
  then apply a plan that rewrites every package's dependency tables with the edges it
  already has — the writer's full path — and the text is byte for byte the same. The empty
  plan is the identity too.
- Random mutations of the real fixture locks (fixtures/locks/*/reference.uv.lock) either
  parse or raise LockError (which the CLI turns into one clear line, exit 2): never
  another exception.
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lockfix.analysis.findings import Plan
from lockfix.lock.edits import MAIN, PackagePlan
from lockfix.lock.lockfile import LockError, parse_lock
from lockfix.lock.writer import apply_plan, render_array, render_dependency, toml_string

REPO = Path(__file__).resolve().parents[2]
REFERENCE_LOCKS = sorted((REPO / "fixtures" / "locks").glob("*/reference.uv.lock"))
INDEX = "https://pypi.org/simple"
MARKERS = [
    "",
    "sys_platform == 'linux'",
    "platform_machine == 'x86_64' and sys_platform == 'linux'",
    "python_full_version < '3.12'",
    "extra == 'group-5-debug-cpu'",
    "sys_platform != 'win32' or python_full_version >= '3.13'",
]
NAMES = [f"pkg-{c}" for c in "abcdefghij"]
EXTRAS = ["cli", "gpu", "test"]


def empty_plan(**changes) -> Plan:  # type: ignore[no-untyped-def]
    plan = Plan()
    for key, value in changes.items():
        setattr(plan, key, value)
    return plan


@st.composite
def uv_locks(draw: st.DrawFn) -> str:
    names = sorted(draw(st.sets(st.sampled_from(NAMES), min_size=1, max_size=6)))
    lines = ["version = 1\n", "revision = 3\n", 'requires-python = ">=3.11"\n']
    for name in names:
        version = f"{draw(st.integers(0, 30))}.{draw(st.integers(0, 9))}"
        block = [
            "\n[[package]]\n",
            f'name = "{name}"\n',
            f'version = "{version}"\n',
            f'source = {{ registry = "{INDEX}" }}\n',
        ]

        def edges() -> list[str]:
            targets = draw(st.lists(st.sampled_from(names), unique=True, max_size=3))
            rendered = []
            for target in sorted(targets):
                marker = draw(st.sampled_from(MARKERS))
                extra = draw(st.lists(st.sampled_from(EXTRAS), unique=True, max_size=1))
                text = f"name = {toml_string(target)}"
                if extra:
                    text += ", extra = [" + ", ".join(toml_string(e) for e in extra) + "]"
                if marker:
                    text += f", marker = {toml_string(marker)}"
                rendered.append("{ " + text + " }")
            return rendered

        main = edges()
        if main:
            block.append(render_array("dependencies", main))
        url = f"https://files.example/{name}-{version}"
        digest = "0" * 64
        if draw(st.booleans()):
            block.append(
                f'sdist = {{ url = "{url}.tar.gz", hash = "sha256:{digest}", size = 10 }}\n'
            )
        wheels = [
            f'{{ url = "{url}-py3-none-any.whl", hash = "sha256:{digest}", size = {n} }}'
            for n in range(draw(st.integers(0, 2)))
        ]
        if wheels:
            block.append(render_array("wheels", wheels))
        extras = {e: edges() for e in draw(st.sets(st.sampled_from(EXTRAS), max_size=2))}
        extras = {e: deps for e, deps in extras.items() if deps}
        if extras:
            block.append("\n[package.optional-dependencies]\n")
            block += [render_array(e, extras[e]) for e in sorted(extras)]
        lines += block
    text = "".join(lines)
    return text.replace("\n", "\r\n") if draw(st.booleans()) else text


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(uv_locks())
def test_round_trip_is_byte_identical(text: str) -> None:
    lock = parse_lock(text)
    assert apply_plan(lock, empty_plan()) == text
    edits = {}
    for package in lock.packages:
        tables = {MAIN: list(package.dependencies)} if package.dependencies else {}
        for extra, deps in package.optional_dependencies.items():
            tables[("extra", extra)] = list(deps)
        if tables:
            edits[package.id] = PackagePlan(tables=tables)
    if edits:
        assert apply_plan(lock, empty_plan(edits=edits)) == text
    for package in lock.packages:
        for dep in package.dependencies:
            assert render_dependency(dep) in text


MUTATION_TOKENS = [
    "[[package]]",
    "[package.optional-dependencies]",
    "version = 2",
    "revision = -1",
    "name = 3",
    "source = {}",
    "source = 1",
    "source = { registry = 1 }",
    "dependencies = 5",
    "dependencies = [1]",
    "dependencies = [{ name = 1 }]",
    'dependencies = [{ name = "x", extra = "a" }]',
    'dependencies = [{ name = "x", marker = 1 }]',
    "wheels = 3",
    "wheels = [1]",
    "sdist = 1",
    "sdist = { url = 1 }",
    "optional-dependencies = 1",
    "[package.optional-dependencies]\nx = 1",
    "[package.dev-dependencies]\nx = [1]",
    "resolution-markers = 1",
    "conflicts = [[1]]",
    "conflicts = [[{ package = 1 }]]",
    "[manifest]\nmembers = 1",
    '"',
    "{",
    "]",
    "= =",
    "\x00",
    "\ufeff",
]


@st.composite
def mutated(draw: st.DrawFn) -> str:
    text = REFERENCE_LOCKS[draw(st.integers(0, len(REFERENCE_LOCKS) - 1))].read_text()
    lines = text.splitlines(keepends=True)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["delete", "duplicate", "swap", "token", "char", "cut"]))
        if not lines:
            break
        i = draw(st.integers(0, len(lines) - 1))
        if kind == "delete":
            del lines[i]
        elif kind == "duplicate":
            lines.insert(i, lines[i])
        elif kind == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif kind == "token":
            lines.insert(i, draw(st.sampled_from(MUTATION_TOKENS)) + "\n")
        elif kind == "char" and lines[i]:
            k = draw(st.integers(0, len(lines[i]) - 1))
            c = draw(st.characters(codec="utf-8", exclude_characters="\r"))
            lines[i] = lines[i][:k] + c + lines[i][k + 1 :]
        elif kind == "cut":
            lines = lines[:i]
    return "".join(lines)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_locks_parse_or_raise_lock_error(text: str) -> None:
    try:
        lock = parse_lock(text)
    except LockError as error:
        assert str(error)  # a message the CLI can print
        return
    # what parses can be written back unchanged
    assert apply_plan(lock, empty_plan()) == text
