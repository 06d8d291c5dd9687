"""Stored package facts (lockfix.facts): reused only for the same block and the same page
copy, and a check answers the same with them as without them."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from hashlib import sha256
from pathlib import Path

import pytest

from fixtures.lock_scenarios import SHAPES, build_registry, drop_edge
from fixtures.server import IndexServer
from fixtures.uvrun import run_uv, uv_bin
from lockfix.facts import DISABLE_VARIABLE, FACTS_DATABASE, FactsStore
from lockfix.lock.lockfile import Lock, LockError, parse_lock

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
    shutil.rmtree(cache / "verdicts-v1", ignore_errors=True)


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


@pytest.mark.parametrize("path", [p for p in REAL_LOCKS if p.exists()], ids=str)
def test_stored_block_documents_read_as_the_whole_text_does(path: Path, tmp_path: Path) -> None:
    text = path.read_text()
    plain = parse_lock(text)
    store = FactsStore(tmp_path)
    assert _same_lock(parse_lock(text, store), plain)
    store.close()
    again = FactsStore(tmp_path)
    assert len(again.documents([sha256(b.encode()).hexdigest() for b in plain.blocks[1:]])) > 0
    assert _same_lock(parse_lock(text, again), plain)


def test_a_changed_block_is_decoded_afresh_and_corrupt_documents_are_ignored(
    project, tmp_path: Path
) -> None:
    directory, _, _ = project
    text = (directory / "uv.lock").read_text()
    store = FactsStore(tmp_path)
    parse_lock(text, store)
    store.close()
    with sqlite3.connect(tmp_path / FACTS_DATABASE) as db:
        keys = [row[0] for row in db.execute("SELECT key FROM blocks")]
        assert keys
        # a document that decodes but is not one package table, and one that does not decode
        db.execute("UPDATE blocks SET doc = ? WHERE key = ?", ('{"package": []}', keys[0]))
        db.execute("UPDATE blocks SET doc = ? WHERE key != ?", ("{", keys[0]))
    assert _same_lock(parse_lock(text, FactsStore(tmp_path)), parse_lock(text))
    changed = re.sub(r'(name = "delta"\nversion = ")([^"]+)"', r'\g<1>9.9.9"', text, count=1)
    assert changed != text
    lock = parse_lock(changed, FactsStore(tmp_path))
    assert _same_lock(lock, parse_lock(changed))
    assert any(p.name == "delta" and p.version == "9.9.9" for p in lock.packages)


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
