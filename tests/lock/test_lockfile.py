"""The lock model and writer on real locks and on broken input, without any network."""

from __future__ import annotations

import functools
import os
import pickle
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from packaging.utils import parse_wheel_filename
from packaging.version import Version

from lockfix.analysis.findings import Plan
from lockfix.dist.simple import IndexFile
from lockfix.lock.edits import MAIN, PackagePlan
from lockfix.lock.lockfile import (
    Artifact,
    Lock,
    LockError,
    PackageId,
    Source,
    parse_lock,
    split_blocks,
)
from lockfix.lock.writer import apply_plan, format_upload_time, replace_lock_artifacts

REPO = Path(__file__).resolve().parents[2]
REAL_LOCKS = sorted((REPO.parent / "shared" / "real-locks").glob("*/uv.lock"))
FIXTURE_LOCKS = sorted((REPO / "fixtures" / "locks").glob("*/*.uv.lock"))
ALL_LOCKS = REAL_LOCKS + FIXTURE_LOCKS


@pytest.fixture(scope="module")
def parsed() -> Callable[[Path], Lock]:
    """``parse_lock`` of a lock file, each file parsed once for the tests of this module that
    read every real lock (and let go at its end)."""
    return functools.cache(lambda path: parse_lock(path.read_text()))


def _empty_plan() -> Plan:
    return Plan()


@pytest.mark.parametrize("path", ALL_LOCKS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_edge_of_a_real_lock_resolves(path: Path, parsed: Callable[[Path], Lock]) -> None:
    text = path.read_text()
    lock = parsed(path)
    assert "".join(lock.blocks) == text
    assert all(p.block > 0 for p in lock.packages)
    assert lock.members
    edges = 0
    for package in lock.packages:
        for _, _, dep in package.edges():
            assert lock.resolve(dep, package).name == dep.name
            edges += 1
    assert edges > 0


@pytest.mark.parametrize("path", ALL_LOCKS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_a_plan_that_changes_nothing_writes_the_same_bytes(
    path: Path, parsed: Callable[[Path], Lock]
) -> None:
    lock = parsed(path)
    assert apply_plan(lock, _empty_plan()) == lock.text == path.read_text()


def test_packages_are_found_by_any_spelling_of_their_name() -> None:
    lock = parse_lock((REPO / "fixtures" / "bench" / "real" / "uv.lock").read_text())
    wanted = [p.id for p in lock.packages if p.name == "typing-extensions"]
    assert len(wanted) == 1
    spellings = ("typing-extensions", "typing_extensions", "Typing.Extensions", "TYPING_EXTENSIONS")
    for spelling in spellings:
        assert [p.id for p in lock.named(spelling)] == wanted
        assert lock.package(wanted[0]) is not None
    assert lock.named("typing-extension") == []  # one byte less: another name
    assert lock.named("typing-extensionz") == []


def test_workspace_members_come_from_the_manifest() -> None:
    path = REPO.parent / "shared" / "real-locks" / "pydantic__pydantic-ai" / "uv.lock"
    if not path.exists():
        pytest.skip("shared real locks not present")
    lock = parse_lock(path.read_text())
    assert {m.name for m in lock.members} == {
        "clai",
        "pydantic-ai",
        "pydantic-ai-examples",
        "pydantic-ai-slim",
        "pydantic-evals",
        "pydantic-graph",
    }
    assert len(lock.conflicts) == 2


def test_split_blocks_is_lossless_with_crlf() -> None:
    text = FIXTURE_LOCKS[0].read_text().replace("\n", "\r\n")
    assert "".join(split_blocks(text)) == text
    assert parse_lock(text).newline == "\r\n"


def _split_as_lines(text: str) -> list[str]:
    """What split_blocks promises, from str.splitlines and str.strip themselves."""
    blocks, start, position = [], 0, 0
    for line in text.splitlines(keepends=True):
        if line.rstrip("\r\n").strip() == "[[package]]":
            blocks.append(text[start:position])
            start = position
        position += len(line)
    return [*blocks, text[start:]]


_PIECES = ["[[package]]", "[[package]] ", "x[[package]]", "[[package]]]", "a = 1", " ", "\t"]
_PIECES += ["\n", "\r\n", "\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x1f", "\x85", "\u2028"]
_PIECES += ["\u3000"]


@given(st.lists(st.sampled_from(_PIECES), max_size=12))
def test_split_blocks_cuts_at_header_lines_as_splitlines_and_strip_see_them(
    pieces: list[str],
) -> None:
    text = "".join(pieces)
    assert split_blocks(text) == _split_as_lines(text)


@pytest.mark.parametrize("odd", _PIECES[4:])
def test_split_blocks_with_each_line_break_and_white_space(odd: str) -> None:
    for text in (
        f"a = 1\n{odd}[[package]]\nb = 2\n",
        f"a = 1\n[[package]]{odd}\nb = 2\n",
        f"a = 1{odd}[[package]]{odd}b = 2{odd}[[package]]",
    ):
        assert split_blocks(text) == _split_as_lines(text)


def test_split_blocks_of_real_locks() -> None:
    for path in ALL_LOCKS:
        text = path.read_text()
        assert split_blocks(text) == _split_as_lines(text)


GOOD = FIXTURE_LOCKS[0].read_text() if FIXTURE_LOCKS else ""
TORCH_GROUPS = REPO / "fixtures" / "locks" / "torch_groups" / "reference.uv.lock"


def _stray_line_breaks(text: str, newline: str, other: str) -> str:
    """``text`` with ``newline`` line breaks, except ``other`` on the header's first line,
    on jinja2's name line (a block before the edited one) and on the last line."""
    lines = text.splitlines()
    stray = {0, lines.index('name = "jinja2"'), len(lines) - 1}
    return "".join(line + (other if i in stray else newline) for i, line in enumerate(lines))


@pytest.mark.parametrize(("newline", "other"), [("\n", "\r\n"), ("\r\n", "\n")])
def test_a_stray_line_break_style_changes_only_the_rewritten_block(
    newline: str, other: str
) -> None:
    text = _stray_line_breaks(TORCH_GROUPS.read_text(), newline, other)
    lock = parse_lock(text)
    assert lock.newline == newline
    cusolver = next(p for p in lock.packages if p.name == "nvidia-cusolver-cu12")
    kept = list(cusolver.dependencies[1:])
    plan = Plan(edits={cusolver.id: PackagePlan(tables={MAIN: kept})})
    new = parse_lock(apply_plan(lock, plan))
    assert len(new.blocks) == len(lock.blocks)
    for index, (old_block, new_block) in enumerate(zip(lock.blocks, new.blocks, strict=True)):
        if index == cusolver.block:
            assert new_block != old_block
            assert new_block.count("\n") == new_block.count(newline), repr(new_block)
        else:
            assert new_block == old_block, index  # every byte, the stray line break too
    assert list(next(p for p in new.packages if p.id == cusolver.id).dependencies) == kept


@pytest.mark.parametrize(("newline", "other"), [("\n", "\r\n"), ("\r\n", "\n")])
def test_replaced_artifacts_change_only_their_block(newline: str, other: str) -> None:
    text = _stray_line_breaks(TORCH_GROUPS.read_text(), newline, other)
    lock = parse_lock(text)
    filelock = next(p for p in lock.packages if p.name == "filelock")
    wheel = IndexFile(
        "filelock-3.18.0-py3-none-any.whl",
        "http://127.0.0.1:8765/pypi/files/filelock-3.18.0-py3-none-any.whl",
        {"sha256": "1" * 64},
        size=10,
    )
    new = parse_lock(replace_lock_artifacts(text, {filelock.id: [wheel]}))
    for index, (old_block, new_block) in enumerate(zip(lock.blocks, new.blocks, strict=True)):
        if index == filelock.block:
            assert "1" * 64 in new_block
            assert new_block.count("\n") == new_block.count(newline), repr(new_block)
        else:
            assert new_block == old_block, index


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version = 1\n[[package]\n", "not valid TOML"),
        ('name = "x"\n', "no top-level `version`"),
        (GOOD.replace("version = 1\n", "version = 2\n", 1), "unsupported lock version 2"),
        ("\ufeff" + GOOD, "byte-order mark"),
        (GOOD + GOOD[GOOD.index("[[package]]") :], "appears twice"),
        (
            GOOD.replace('{ name = "filelock"', '{ name = "no-such-package"', 1),
            "has no locked package",
        ),
        (GOOD.replace('source = { registry = "', 'source = { wormhole = "', 1), "unknown source"),
    ],
    ids=["not-toml", "not-a-lock", "version-2", "bom", "duplicate", "dangling", "bad-source"],
)
def test_bad_locks_are_refused_with_a_reason(text: str, message: str) -> None:
    with pytest.raises(LockError, match=message):
        parse_lock(text)


@pytest.mark.parametrize(
    ("given", "written"),
    [
        ("2025-06-04T12:00:00.860767Z", "2025-06-04T12:00:00.86Z"),
        ("2025-06-04T12:00:00.000Z", "2025-06-04T12:00:00Z"),
        ("2025-06-04T12:00:00+00:00", "2025-06-04T12:00:00Z"),
        ("2025-06-04T12:00:00.1234Z", "2025-06-04T12:00:00.123Z"),
    ],
)
def test_upload_times_are_written_as_uv_writes_them(given: str, written: str) -> None:
    assert format_upload_time(given) == written


@pytest.mark.parametrize(
    ("table", "name"),
    [
        (
            {
                "url": "https://download.pytorch.org/whl/cu126/torch-2.7.1%2Bcu126-cp312-cp312-win_amd64.whl"
            },
            "torch-2.7.1+cu126-cp312-cp312-win_amd64.whl",
        ),
        ({"url": "http://h/files/a%20b-1.0.tar.gz?x=%2B#sha256=00"}, "a b-1.0.tar.gz"),
        ({"url": "http://h/torch-2.7.1+cpu-py3-none-any.whl"}, "torch-2.7.1+cpu-py3-none-any.whl"),
        ({"path": "wheels/odd%2Bname-1.0-py3-none-any.whl"}, "odd%2Bname-1.0-py3-none-any.whl"),
        (
            {"filename": "x%2B-1.0-py3-none-any.whl", "url": "http://h/y"},
            "x%2B-1.0-py3-none-any.whl",
        ),
    ],
    ids=["percent-encoded-url", "query-and-fragment", "plain-plus", "path-as-is", "filename"],
)
def test_a_file_url_names_its_file_percent_decoded(table: dict[str, str], name: str) -> None:
    assert Artifact.from_toml(table).name == name


@pytest.mark.parametrize(
    "path",
    [p for p in REAL_LOCKS if "%2B" in p.read_text()],
    ids=lambda p: p.parent.name,
)
def test_percent_encoded_wheel_urls_of_real_locks_name_their_version(
    path: Path, parsed: Callable[[Path], Lock]
) -> None:
    """uv reads a wheel's name from its URL percent-decoded and refuses a lock whose wheel
    versions are not the package's: so must these locks' names decode to their versions."""
    lock = parsed(path)
    encoded = 0
    for package in lock.packages:
        for wheel in package.wheels:
            if wheel.url is None or "%" not in wheel.url:
                continue
            encoded += 1
            _, version, _, _ = parse_wheel_filename(wheel.name)
            assert Version(package.version or "") in (version, Version(version.public)), wheel.name
    assert encoded > 0


def test_a_check_that_writes_nothing_does_not_load_tomlkit() -> None:
    """tomlkit renders the strings of rewritten blocks; loading it is left to the writer's
    first use, so the modules a check imports do not pull it in."""
    code = (
        "import sys\n"
        "import lockfix.cli.main, lockfix.cli.report, lockfix.engine, lockfix.lock.writer\n"
        "assert 'tomlkit' not in sys.modules, 'tomlkit loaded'\n"
        "from lockfix.lock.writer import toml_string\n"
        "assert toml_string('a\"b') == '\"a\\\\\"b\"', toml_string('a\"b')\n"
        "assert 'tomlkit' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_package_id_keeps_its_hash_to_its_own_process() -> None:
    """An id remembers its hash; a pickled one (the second process's results) is hashed
    anew where it is read, since each process hashes strings with its own seed."""
    lock = parse_lock((REPO / "fixtures" / "bench" / "real" / "uv.lock").read_text())
    ids = [p.id for p in lock.packages]
    rebuilt = [PackageId(i.name, i.version, Source(*_source_row(i.source))) for i in ids]
    assert [hash(i) for i in ids] == [hash(i) for i in rebuilt]
    assert all(lock.package(i) is p for i, p in zip(rebuilt, lock.packages, strict=True))
    code = (
        "import pickle, sys\n"
        "from lockfix.lock.lockfile import PackageId, Source\n"
        "ids = pickle.loads(sys.stdin.buffer.read())\n"
        "fresh = {PackageId(i.name, i.version, Source(i.source.kind, i.source.location, "
        "i.source.subdirectory)): n for n, i in enumerate(ids)}\n"
        "assert [fresh.get(i) for i in ids] == list(range(len(ids))), 'an id not found'\n"
    )
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        data = pickle.dumps(ids, protocol=pickle.HIGHEST_PROTOCOL)
        subprocess.run([sys.executable, "-c", code], input=data, env=env, check=True)


def _source_row(source: Source) -> tuple[str, str, str | None]:
    return (source.kind, source.location, source.subdirectory)
