"""Stored package facts (lockfix.facts): reused only for the same block and the same page
copy, and a check answers the same with them as without them."""

from __future__ import annotations

import dataclasses
import json
import marshal
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fixtures.lock_scenarios import SHAPES, build_registry, drop_edge
from fixtures.server import IndexServer
from fixtures.uvrun import run_uv, uv_bin
from lockfix import facts
from lockfix.analysis.lowering import ManifestRules, lower_requirements
from lockfix.dist.metadata import REQUIREMENTS_DIGEST, CoreMetadata
from lockfix.facts import (
    DISABLE_VARIABLE,
    FACTS_DATABASE,
    FactsStore,
    decode_lowered,
    decode_metadata,
    encode_lowered,
    encode_metadata,
    lowered_key,
)
from lockfix.lock import lockfile
from lockfix.lock.lockfile import Lock, LockError, _record_keys, parse_lock

pytestmark = pytest.mark.skipif(not uv_bin("0.13.9").exists(), reason="uv missing")


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("facts")
    built = build_registry(root / "build")
    with IndexServer(built) as server:
        directory = SHAPES["platform"].write(
            root / "project", server.index_url("reg"), server.flat_url("reg"), built.root
        )
        run_uv("0.13.9", ["lock"], directory, root / "uv-tmp")
        yield directory, server, built


def check(
    directory: Path, cache: Path, *args: str, facts: bool = True
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, DISABLE_VARIABLE: "1" if facts else "0"}
    return subprocess.run(
        [sys.executable, "-m", "lockfix", "check", "uv.lock", "--cache-dir", str(cache), *args],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def stored(cache: Path) -> int:
    with sqlite3.connect(cache / FACTS_DATABASE) as db:
        return int(db.execute("SELECT count(*) FROM facts").fetchone()[0])


def metadata_requests(server: IndexServer) -> list[str]:
    return [r.path for r in server.requests if r.path.endswith(".metadata")]


def copy_project(source: Path, target: Path, text: str | None = None) -> Path:
    target.mkdir(parents=True)
    shutil.copy2(source / "pyproject.toml", target / "pyproject.toml")
    (target / "uv.lock").write_text(text if text is not None else (source / "uv.lock").read_text())
    return target


def forget_verdicts(cache: Path) -> None:
    """Forget the verdicts, and the summaries they would be carried over from
    (lockfix.carryover): the next check reads the lock and its stored facts."""
    shutil.rmtree(cache / "verdicts-v1", ignore_errors=True)
    shutil.rmtree(cache / "summaries-v1", ignore_errors=True)


def test_unchanged_packages_are_answered_from_their_stored_facts(project, tmp_path: Path) -> None:
    directory, server, _ = project
    cache = tmp_path / "cache"
    first = check(directory, cache, "--format", "json")
    assert first.returncode == 0, first.stderr
    assert stored(cache) > 0
    forget_verdicts(cache)
    # Without the metadata cache, only the stored facts can spare the metadata requests.
    (cache / "metadata-v2.sqlite").unlink()
    server.reset_log()
    second = check(directory, cache, "--format", "json")
    assert second.returncode == 0 and second.stdout == first.stdout
    assert metadata_requests(server) == []
    forget_verdicts(cache)
    server.reset_log()
    third = check(directory, cache, "--format", "json", facts=False)
    assert third.stdout == first.stdout
    assert metadata_requests(server) != []


@pytest.mark.parametrize("output", ["json", "text"])
def test_a_check_answers_the_same_with_stored_facts_as_without(
    project, tmp_path: Path, output: str
) -> None:
    """A lock with findings, whose other packages come from stored facts of the clean lock."""
    directory, _, _ = project
    cache = tmp_path / "cache"
    assert check(directory, cache).returncode == 0
    assert stored(cache) > 0
    text = (directory / "uv.lock").read_text()
    edited = copy_project(directory, tmp_path / "edited", drop_edge(text, "tabular", "numpyish"))
    forget_verdicts(cache)
    with_facts = check(edited, cache, "--format", output)
    forget_verdicts(cache)
    without = check(edited, cache, "--format", output, facts=False)
    assert with_facts.returncode == without.returncode == 1, with_facts.stderr
    assert with_facts.stdout == without.stdout
    assert "numpyish" in with_facts.stdout


def test_a_changed_block_is_not_answered_from_the_facts_of_the_old_one(
    project, tmp_path: Path
) -> None:
    directory, _, _ = project
    cache = tmp_path / "cache"
    assert check(directory, cache).returncode == 0
    text = (directory / "uv.lock").read_text()
    # The same package, one of its locked files now with a size the index does not serve.
    sizes = re.search(r'name = "delta"\n(?:.*\n)*?.*?size = (\d+)', text)
    assert sizes is not None
    start, end = sizes.span(1)
    changed = text[:start] + str(int(sizes.group(1)) + 1) + text[end:]
    edited = copy_project(directory, tmp_path / "edited", changed)
    forget_verdicts(cache)
    result = check(edited, cache, "--format", "json")
    assert result.returncode == 1, result.stdout + result.stderr
    kinds = {f["kind"] for f in json.loads(result.stdout)["findings"]}
    assert "artifact-size-mismatch" in kinds


def test_a_refetched_page_is_not_answered_from_the_facts_of_the_old_copy(
    project, tmp_path: Path
) -> None:
    directory, _, built = project
    cache = tmp_path / "cache"
    first = check(directory, cache, "--format", "json")
    assert first.returncode == 0 and json.loads(first.stdout)["warnings"] == []
    files = built["reg"].projects["delta"].files
    original = list(files)
    files[:] = [dataclasses.replace(f, yanked="broken build") for f in original]
    try:
        # The pages are fetched again (as when they expire), by a run that stores no facts:
        # the facts of the old copy of the delta page are still there.
        shutil.rmtree(cache / "pages-v2")
        forget_verdicts(cache)
        assert check(directory, cache, "--format", "json", facts=False).returncode == 0
        forget_verdicts(cache)
        again = check(directory, cache, "--format", "json")
    finally:
        files[:] = original
    warnings = json.loads(again.stdout)["warnings"]
    assert any(w["kind"] == "artifact-yanked" and w["package"] == "delta" for w in warnings)


def test_corrupt_stored_facts_are_a_miss(project, tmp_path: Path) -> None:
    directory, _, _ = project
    cache = tmp_path / "cache"
    first = check(directory, cache, "--format", "json")
    assert first.returncode == 0
    with sqlite3.connect(cache / FACTS_DATABASE) as db:
        db.execute("UPDATE facts SET doc = '{\"metadata\": 1'")
    forget_verdicts(cache)
    again = check(directory, cache, "--format", "json")
    assert again.returncode == 0 and again.stdout == first.stdout
    (cache / FACTS_DATABASE).write_bytes(b"not a database at all" * 100)
    forget_verdicts(cache)
    third = check(directory, cache, "--format", "json")
    assert third.returncode == 0 and third.stdout == first.stdout


REPO = Path(__file__).resolve().parent.parent
# the real locks next to the project, as test_real_locks reads them, and the benchmark's
REAL_LOCKS = [
    *sorted((REPO.parent / "shared" / "real-locks").glob("*/uv.lock")),
    REPO / "fixtures" / "bench" / "real" / "uv.lock",
]


def _same_lock(a: Lock, b: Lock) -> bool:
    return a.packages == b.packages and a.blocks == b.blocks and a.manifest == b.manifest


def _digests(lock: Lock) -> list[str]:
    return [p.locked_digest for p in lock.packages]


@pytest.mark.parametrize("path", [p for p in REAL_LOCKS if p.exists()], ids=str)
def test_stored_block_packages_read_as_the_whole_text_does(path: Path, tmp_path: Path) -> None:
    text = path.read_text()
    plain = parse_lock(text)
    store = FactsStore(tmp_path)
    first = parse_lock(text, store)
    assert _same_lock(first, plain) and _digests(first) == _digests(plain)
    store.close()
    again = FactsStore(tmp_path)
    assert len(again.records(_record_keys(plain.blocks[1:]))) > 0
    stored = parse_lock(text, again)
    assert _same_lock(stored, plain) and _digests(stored) == _digests(plain)


def test_a_lock_without_packages_reads_with_a_store(tmp_path: Path) -> None:
    text = 'version = 1\nrevision = 3\nrequires-python = ">=3.11"\n'
    lock = parse_lock(text, FactsStore(tmp_path))
    assert lock.packages == [] and lock.block_keys is not None and len(lock.block_keys) == 1


SELECT_RECORD = "SELECT record FROM packages WHERE key = ?"
UPDATE_RECORD = "UPDATE packages SET record = ? WHERE key = ?"


def test_a_changed_block_is_decoded_afresh_and_corrupt_records_are_ignored(
    project, tmp_path: Path
) -> None:
    directory, _, _ = project
    text = (directory / "uv.lock").read_text()
    store = FactsStore(tmp_path)
    parse_lock(text, store)
    store.close()
    with sqlite3.connect(tmp_path / FACTS_DATABASE) as db:
        keys = [row[0] for row in db.execute("SELECT key FROM packages")]
        assert len(keys) > 2
        # a record of another shape, one that does not decode, and text instead of bytes
        db.execute("UPDATE packages SET record = ? WHERE key = ?", (marshal.dumps((1, 2)), keys[0]))
        db.execute("UPDATE packages SET record = ? WHERE key = ?", (b"\xff\x00", keys[1]))
        db.execute("UPDATE packages SET record = ? WHERE key = ?", ("text", keys[2]))
        # one of the right shape whose files are not rows of a file's fields
        for key in keys[3:]:
            record = list(marshal.loads(db.execute(SELECT_RECORD, (key,)).fetchone()[0]))
            if record[8]:
                record[8] = tuple(row[:-1] for row in record[8])
                db.execute(UPDATE_RECORD, (marshal.dumps(tuple(record)), key))
                break
        else:
            raise AssertionError("no record with wheels")
    assert _same_lock(parse_lock(text, FactsStore(tmp_path)), parse_lock(text))
    changed = re.sub(r'(name = "delta"\nversion = ")([^"]+)"', r'\g<1>9.9.9"', text, count=1)
    assert changed != text
    lock = parse_lock(changed, FactsStore(tmp_path))
    assert _same_lock(lock, parse_lock(changed))
    assert any(p.name == "delta" and p.version == "9.9.9" for p in lock.packages)


def test_block_records_are_keyed_by_the_versions_and_the_record_format(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    blocks = ["[[package]]\nname = 'a'\n"]
    key = _record_keys(blocks)
    monkeypatch.setattr(lockfile, "__version__", "0.0.0-other")
    assert _record_keys(blocks) != key
    monkeypatch.undo()
    monkeypatch.setattr(lockfile, "RECORD_FORMAT", "another-format")
    assert _record_keys(blocks) != key
    monkeypatch.undo()
    monkeypatch.setattr(lockfile.sys.implementation, "cache_tag", "otherpython-399")
    assert _record_keys(blocks) != key
    monkeypatch.undo()
    assert _record_keys(blocks) == key != _record_keys(["[[package]]\nname = 'b'\n"])


BLOCK = """[[package]]
name = "demo"
version = "1.0"
source = { registry = "https://pypi.org/simple" }
resolution-markers = ["sys_platform == 'linux'"]
dependencies = [{ name = "dep" }]
sdist = { url = "https://files.example/demo-1.0.tar.gz", hash = "sha256:HASH", size = 10, \
upload-time = "2024-01-01T00:00:00Z" }
wheels = [{ url = "https://files.example/demo-1.0-py3-none-any.whl", hash = "sha256:HASH", \
size = 20, upload-time = "2024-01-01T00:00:00Z" }]

[[package]]
name = "dep"
version = "2.0"
source = { registry = "https://pypi.org/simple" }
"""


def test_the_facts_key_changes_with_each_of_its_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    def key() -> str:
        return facts.facts_key("a" * 64, "b" * 64, per_wheel=False, flat=False)

    base = key()
    assert facts.facts_key("c" * 64, "b" * 64, per_wheel=False, flat=False) != base
    assert facts.facts_key("a" * 64, "c" * 64, per_wheel=False, flat=False) != base
    assert facts.facts_key("a" * 64, "b" * 64, per_wheel=True, flat=False) != base
    assert facts.facts_key("a" * 64, "b" * 64, per_wheel=False, flat=True) != base
    monkeypatch.setattr(facts, "FORMAT", "another-format")
    assert key() != base
    monkeypatch.undo()
    monkeypatch.setattr(facts, "__version__", "0.0.0-other")
    assert key() != base
    monkeypatch.undo()
    assert key() == base


def _demo_digest(text: str, store: FactsStore | None = None) -> str:
    lock = parse_lock('version = 1\nrevision = 3\nrequires-python = ">=3.9"\n\n' + text, store)
    return lock.packages[0].locked_digest


@pytest.mark.parametrize("stored", [False, True])
def test_the_locked_digest_changes_with_the_id_and_every_file_field_only(
    tmp_path: Path, stored: bool
) -> None:
    """What a package's facts are keyed by: its id and every field of every locked file,
    and nothing the planner alone reads (edges, resolution markers)."""

    def digest(text: str) -> str:
        if not stored:
            return _demo_digest(text)
        store = FactsStore(tmp_path)
        _demo_digest(text, store)
        store.close()
        return _demo_digest(text, FactsStore(tmp_path))  # from the stored record

    text = BLOCK.replace("HASH", "a" * 64)
    base = digest(text)
    assert base == _demo_digest(text)
    for old, new in [
        ('name = "demo"', 'name = "demo2"'),
        ('version = "1.0"', 'version = "1.1"'),
        ('https://pypi.org/simple" }\nresolution', 'https://other.example/simple" }\nresolution'),
        ("demo-1.0.tar.gz", "demo-1.0.zip"),
        ("py3-none-any.whl", "py2.py3-none-any.whl"),
        ('hash = "sha256:' + "a" * 64, 'hash = "sha256:' + "b" * 64),
        ("size = 10,", "size = 11,"),
        ("size = 20,", "size = 21,"),
        ('upload-time = "2024-01-01T00:00:00Z" }]', 'upload-time = "2024-01-02T00:00:00Z" }]'),
        ('tar.gz", hash', 'tar.gz", filename = "demo-1.0.tar.gz", hash'),
        ('{ url = "https://files.example/demo-1.0-py3', '{ path = "demo-1.0-py3'),
    ]:
        assert old in text, old
        assert digest(text.replace(old, new, 1)) != base, new
    for old, new in [
        ('dependencies = [{ name = "dep" }]', "dependencies = []"),
        ("[\"sys_platform == 'linux'\"]", "[\"sys_platform == 'darwin'\"]"),
    ]:
        assert old in text, old
        assert digest(text.replace(old, new, 1)) == base, new


LONG_HEADER = 'version = 1\nrevision = 3\nrequires-python = ">=3.9"\n\n'
LONG_WHEELS = "".join(
    f'    {{ url = "https://files.example/long-1.0-cp3{i}-none-any.whl", '
    f'hash = "sha256:{i:064x}", size = {1000 + i}, upload-time = "2024-01-01T00:00:00Z" }},\n'
    for i in range(40)
)
LONG_BLOCK = f"""[[package]]
name = "long"
version = "1.0"
source = {{ registry = "https://pypi.org/simple" }}
resolution-markers = [
    "sys_platform == 'linux'",
]
sdist = {{ url = "https://files.example/long-1.0.tar.gz", hash = "sha256:{"c" * 64}", size = 9 }}
wheels = [
{LONG_WHEELS}]

[package.optional-dependencies]
extra = []
"""
# each: the block as uv would write it, changed so that its pieces might read differently
LONG_CHANGES = {
    "markers changed": ("sys_platform == 'linux'", "sys_platform == 'darwin'"),
    "a wheel changed": ("size = 1007,", "size = 2007,"),
    "wheels in a header's table": (
        "resolution-markers",
        "  [package.metadata]\nresolution-markers",
    ),
    "wheels inside a string": ("sdist = {", 'description = """\nsdist = {'),
    "wheels twice": ("extra = []", "extra = []\n[package.wheels]"),
    "a table both before and after": ("sdist = {", "optional-dependencies = {}\nsdist = {"),
    "after the tail's table": (
        "[package.optional-dependencies]\n",
        "[package.optional-dependencies]\nx = 1\n",
    ),
    "the wheel list left open": ("\n]\n\n[package.opt", "\n\n[package.opt"),
    "no tail": ("\n[package.optional-dependencies]\nextra = []\n", ""),
}


def _read_or_error(text: str, store: FactsStore | None = None) -> Lock | str:
    try:
        return parse_lock(text, store)
    except LockError as error:
        return str(error)


@pytest.mark.parametrize("change", LONG_CHANGES)
@pytest.mark.parametrize("seen", [False, True])
def test_a_changed_block_read_in_pieces_reads_as_the_whole_text_does(
    tmp_path: Path, change: str, seen: bool
) -> None:
    """A block's long wheel list is decoded apart from the rest and stored, so that a block
    changed elsewhere reuses it: only where that reads the same as the whole block."""
    if seen:  # the wheel list of the unchanged block is stored
        store = FactsStore(tmp_path)
        assert _same_lock(
            parse_lock(LONG_HEADER + LONG_BLOCK, store), parse_lock(LONG_HEADER + LONG_BLOCK)
        )
        store.close()
        with sqlite3.connect(tmp_path / FACTS_DATABASE) as db:
            assert db.execute("SELECT count(*) FROM packages").fetchone()[0] == 2
    old, new = LONG_CHANGES[change]
    assert old in LONG_BLOCK
    text = LONG_HEADER + LONG_BLOCK.replace(old, new, 1)
    whole = _read_or_error(text)
    store = FactsStore(tmp_path)
    pieces = _read_or_error(text, store)
    store.close()
    if isinstance(whole, str) or isinstance(pieces, str):
        assert pieces == whole
    else:
        assert _same_lock(pieces, whole)
        assert _digests(pieces) == _digests(whole)
    if change in ("markers changed", "a wheel changed"):
        # the new block, and its wheel list unless the stored one is the same text
        added = 1 if seen and change == "markers changed" else 2
        with sqlite3.connect(tmp_path / FACTS_DATABASE) as db:
            rows = db.execute("SELECT count(*) FROM packages").fetchone()[0]
        assert rows == added + (2 if seen else 0)


# lines that could make a block's pieces read otherwise than the whole block
_ODD_LINES = [
    "[package.metadata]",
    "  [package.metadata]",
    "[package.wheels]",
    "[[package.wheels]]",
    "wheels = []",
    "wheels = [",
    "]",
    "x = [",
    '"""',
    "'''",
    'd = """',
    "metadata = {}",
    "optional-dependencies = {}",
    "# wheels = [",
    "[other]",
    "",
]


# where to add them: around the head's lines and the wheel list's end, or anywhere
_WHERE = st.one_of(st.integers(0, 10), st.integers(47, 54), st.integers(0, 60))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(_WHERE, st.sampled_from(_ODD_LINES)), min_size=1, max_size=3))
def test_a_block_read_in_pieces_reads_as_the_whole_block_whatever_lines_are_added(
    inserts: list[tuple[int, str]],
) -> None:
    lines = LONG_BLOCK.splitlines(keepends=True)
    for at, line in inserts:
        lines.insert(min(at, len(lines)), line + "\n")
    text = LONG_HEADER + "".join(lines)
    whole = _read_or_error(text)
    with tempfile.TemporaryDirectory() as folder:
        store = FactsStore(folder)  # the unchanged block's wheel list stored
        parse_lock(LONG_HEADER + LONG_BLOCK, store)
        store.close()
        for _ in range(2):  # with the stored wheel list, then with what this read stored
            store = FactsStore(folder)
            pieces = _read_or_error(text, store)
            store.close()
            if isinstance(whole, str) or isinstance(pieces, str):
                assert pieces == whole
            else:
                assert _same_lock(pieces, whole)
                assert _digests(pieces) == _digests(whole)


def test_a_lock_whose_blocks_are_not_one_package_each_reads_as_a_whole(tmp_path: Path) -> None:
    text = (REPO / "fixtures" / "bench" / "real" / "uv.lock").read_text()
    # a top-level table after the packages: only the whole text says where it belongs
    odd = text + '\n[options]\nexclude-newer = "2024-01-01T00:00:00Z"\n'
    lock = parse_lock(odd, FactsStore(tmp_path))
    assert lock.options == parse_lock(odd).options != {}
    assert _same_lock(lock, parse_lock(odd))
    # a TOML error inside one block: the same message as for the whole text
    broken = text.replace("source = {", "source = {{", 3)
    with pytest.raises(LockError) as whole:
        parse_lock(broken)
    with pytest.raises(LockError) as pieces:
        parse_lock(broken, FactsStore(tmp_path))
    assert str(pieces.value) == str(whole.value)


# -- stored lowered requirements -------------------------------------------------------------

LINES = (
    "alpha>=1.0",
    "Beta[Fast,slow] (<3,>=2) ; python_version < '3.12' and sys_platform == 'win32'",
    "gamma ; extra == 'cli' or extra == 'all'",
    "delta==1.*; extra == 'all' and platform_release >= '5'",
    "self-pkg[cli] ; extra == 'all'",
    "epsilon>=7.2.0<8.0.0",  # read after uv's repairs
    "zeta ; os_name == 'nt' and extra == 'Docs'",
    "eta ; python_version != '3.13t'",  # a comparison uv leaves out
    "theta @ https://example.invalid/theta.whl",  # a URL requirement: never an edge
)
OVERRIDES = (
    'overrides = [{ name = "gamma", specifier = ">=2" }, '
    '{ name = "alpha", marker = "sys_platform == \'linux\'" }]'
)


def _rules(manifest: str) -> ManifestRules:
    return ManifestRules.from_manifest(tomllib.loads(manifest))


def _meta(*lines: str, extras: tuple[str, ...] = ("cli", "all", "docs")) -> CoreMetadata:
    return CoreMetadata("Self_Pkg", "1.0", lines, None, extras, (), "2.3")


@pytest.mark.parametrize("legacy", [False, True])
@pytest.mark.parametrize("manifest", ["", OVERRIDES, 'excludes = ["delta"]'])
def test_stored_lowered_requirements_read_back_as_lowered(manifest: str, legacy: bool) -> None:
    rules = _rules(manifest)
    lowered = lower_requirements(_meta(*LINES), rules, legacy_overrides=legacy)
    assert len(lowered) > 2
    doc = encode_lowered(lowered)
    assert doc is not None
    back = decode_lowered(json.loads(json.dumps(doc)))
    assert list(back.items()) == list(lowered.items())  # tables and lines in the same order
    for table, requirements in lowered.items():
        for mine, theirs in zip(back[table], requirements, strict=True):
            assert str(mine.marker) == str(theirs.marker)
            assert str(mine.specifier) == str(theirs.specifier)


def test_lowered_requirements_are_keyed_by_everything_that_lowers_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rules = _rules(OVERRIDES)
    key = lowered_key(_meta(*LINES), rules, False)
    store = FactsStore(tmp_path)
    store.put_lowered(key, {"tables": []})
    store.close()
    assert list(FactsStore(tmp_path).lowered([key])) == [key]
    changed_line = (LINES[0].replace("1.0", "1.1"), *LINES[1:])
    others = [
        lowered_key(_meta(*changed_line), rules, False),
        lowered_key(_meta(*LINES[1:]), rules, False),
        lowered_key(_meta(*LINES, extras=("cli", "all")), rules, False),
        lowered_key(_meta(*LINES), _rules(OVERRIDES.replace(">=2", ">=3")), False),
        lowered_key(_meta(*LINES), _rules(OVERRIDES + '\nexcludes = ["eta"]'), False),
        lowered_key(_meta(*LINES), _rules(""), False),
        lowered_key(_meta(*LINES), rules, True),
    ]
    monkeypatch.setattr(facts, "__version__", "0.0.0+another")
    others.append(lowered_key(_meta(*LINES), rules, False))
    monkeypatch.undo()
    monkeypatch.setattr(facts, "LOWERED_FORMAT", "another")
    others.append(lowered_key(_meta(*LINES), rules, False))
    assert len({key, *others}) == len(others) + 1
    assert FactsStore(tmp_path).lowered(others) == {}


def test_stored_metadata_is_keyed_as_the_metadata_read_afresh() -> None:
    rules = _rules(OVERRIDES)
    doc = json.loads(json.dumps(encode_metadata(_meta(*LINES))))
    assert isinstance(doc[REQUIREMENTS_DIGEST], str)
    older = {k: v for k, v in doc.items() if k != REQUIREMENTS_DIGEST}
    for legacy in (False, True):
        fresh = lowered_key(_meta(*LINES), rules, legacy)
        for stored_doc in (doc, older):
            recalled = decode_metadata(stored_doc)
            assert recalled == _meta(*LINES)
            assert lowered_key(recalled, rules, legacy) == fresh
    # The digest is read with the requirements it was stored with, not computed again.
    assert decode_metadata({**doc, REQUIREMENTS_DIGEST: "0" * 64}).requirements_digest == "0" * 64
    # Other requirements give another key, whether read afresh or from a stored doc.
    changed_line = (LINES[0].replace("1.0", "1.1"), *LINES[1:])
    for other in (
        _meta(*changed_line),
        decode_metadata(json.loads(json.dumps(encode_metadata(_meta(*changed_line))))),
        _meta(*LINES).with_requirements(LINES[1:], ("cli", "all", "docs")),
        _meta(*LINES).with_requirements(LINES, ("cli", "all")),
    ):
        assert other is not None
        assert lowered_key(other, rules, False) != lowered_key(_meta(*LINES), rules, False)


def lowered_rows(cache: Path) -> int:
    with sqlite3.connect(cache / FACTS_DATABASE) as db:
        return int(db.execute("SELECT count(*) FROM lowered").fetchone()[0])


def test_stored_lowered_requirements_answer_only_for_the_manifest_they_were_lowered_under(
    project, tmp_path: Path
) -> None:
    directory, _, _ = project
    cache = tmp_path / "cache"
    first = check(directory, cache, "--format", "json")
    assert first.returncode == 0, first.stderr
    assert lowered_rows(cache) > 0
    forget_verdicts(cache)
    assert check(directory, cache, "--format", "json").stdout == first.stdout
    # Stored tables that say "no requirements": a check that reads them finds every locked
    # edge of the recalled packages extra.
    with sqlite3.connect(cache / FACTS_DATABASE) as db:
        db.execute("UPDATE lowered SET doc = ?", ('{"tables":[]}',))
    forget_verdicts(cache)
    poisoned = check(directory, cache, "--format", "json")
    assert poisoned.stdout != first.stdout
    # The same lock with one more manifest override: the stored tables do not answer.
    text = (directory / "uv.lock").read_text()
    manifest = '[manifest]\noverrides = [{ name = "numpyish", specifier = ">=0" }]\n\n'
    at = text.index("[[package]]")
    edited = copy_project(directory, tmp_path / "edited", text[:at] + manifest + text[at:])
    forget_verdicts(cache)
    with_store = check(edited, cache, "--format", "json")
    forget_verdicts(cache)
    without = check(edited, cache, "--format", "json", facts=False)
    assert with_store.returncode == without.returncode, with_store.stderr
    assert with_store.stdout == without.stdout


def lowered_keys(cache: Path) -> set[str]:
    with sqlite3.connect(cache / FACTS_DATABASE) as db:
        return {row[0] for row in db.execute("SELECT key FROM lowered")}


def test_packages_recalled_from_stored_facts_find_the_lowered_requirements_stored_for_them(
    project, tmp_path: Path
) -> None:
    """A changed lock whose packages are all answered from stored facts (their metadata
    with its digest, or from facts stored without one) looks their lowered requirements up
    under the keys the first check stored them by: it lowers and stores nothing new."""
    directory, server, _ = project
    cache = tmp_path / "cache"
    first = check(directory, cache, "--format", "json")
    assert first.returncode == 0, first.stderr
    keys = lowered_keys(cache)
    assert keys
    text = (directory / "uv.lock").read_text()
    edited = copy_project(directory, tmp_path / "edited", text + "# changed\n")
    # Without the metadata cache, only the stored facts can spare the metadata requests.
    (cache / "metadata-v2.sqlite").unlink()
    server.reset_log()
    second = check(edited, cache, "--format", "json")
    assert second.returncode == 0 and second.stdout == first.stdout
    assert metadata_requests(server) == []
    assert lowered_keys(cache) == keys
    # Facts stored without the digest (by older code) answer as well, under the same keys.
    with sqlite3.connect(cache / FACTS_DATABASE) as db:
        for key, doc in list(db.execute("SELECT key, doc FROM facts")):
            data = json.loads(doc)
            assert REQUIREMENTS_DIGEST in data["metadata"]
            del data["metadata"][REQUIREMENTS_DIGEST]
            db.execute("UPDATE facts SET doc = ? WHERE key = ?", (json.dumps(data), key))
    forget_verdicts(cache)
    server.reset_log()
    third = check(edited, cache, "--format", "json")
    assert third.returncode == 0 and third.stdout == first.stdout
    assert metadata_requests(server) == []
    assert lowered_keys(cache) == keys


def test_corrupt_stored_lowered_requirements_are_a_miss(project, tmp_path: Path) -> None:
    directory, _, _ = project
    cache = tmp_path / "cache"
    first = check(directory, cache, "--format", "json")
    assert first.returncode == 0 and lowered_rows(cache) > 0
    with sqlite3.connect(cache / FACTS_DATABASE) as db:
        keys = [row[0] for row in db.execute("SELECT key FROM lowered")]
        bad = ['{"tables": 1}', '{"tables":[["x", null, [[1, [], "", "", ""]]]]}', "{", "[]"]
        for key, doc in zip(keys, bad * len(keys), strict=False):
            db.execute("UPDATE lowered SET doc = ? WHERE key = ?", (doc, key))
    forget_verdicts(cache)
    again = check(directory, cache, "--format", "json")
    assert again.returncode == 0 and again.stdout == first.stdout
