"""A check whose packages the stored facts and the caches answer runs without an event loop
(asyncio is never imported), and answers, counts and stores exactly what the network path
does; a package the caches cannot answer whole goes to the network path untouched."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from fixtures.lock_scenarios import SHAPES, build_registry
from fixtures.server import IndexServer
from fixtures.uvrun import run_uv, uv_bin
from lockfix import engine
from lockfix.facts import FACTS_DATABASE
from lockfix.index.cache import METADATA_DATABASE, origin_key
from lockfix.index.http import IndexClient
from lockfix.index.local import project_page_url
from lockfix.lock.lockfile import Package, parse_lock
from lockfix.settings import Settings

pytestmark = pytest.mark.skipif(not uv_bin("0.13.9").exists(), reason="uv missing")

# wheelwrap → wheely (a wheel per Python version and platform) → gamma
SHAPE = "wheels-python"
CHANGED = "wheely"

# The command line, reporting after the analysis which of the network path's modules it
# loaded.
_CHECK = """
import sys
import lockfix.cli.checking as checking
analyze = checking.analyze
def reporting(*args, **kwargs):
    analysis = analyze(*args, **kwargs)
    loaded = [m for m in ("asyncio", "ssl", "concurrent.futures") if m in sys.modules]
    print("network modules:", ",".join(loaded) or "none", file=sys.stderr, flush=True)
    return analysis
checking.analyze = reporting
sys.argv = ["lockfix", *sys.argv[1:]]
from lockfix.cli._entry import main
main()
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, IndexServer]]:
    root = tmp_path_factory.mktemp("cached")
    built = build_registry(root / "build")
    with IndexServer(built) as server:
        directory = SHAPES[SHAPE].write(
            root / "project", server.index_url("reg"), server.flat_url("reg"), built.root
        )
        run_uv("0.13.9", ["lock"], directory, root / "uv-tmp")
        yield directory, server


def check(directory: Path, cache: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = ["check", "uv.lock", "--cache-dir", str(cache), "--format", "json", *args]
    return subprocess.run(
        [sys.executable, "-c", _CHECK, *command],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "LOCKFIX_PROCESSES": "1"},
    )


def warm(directory: Path, cache: Path) -> subprocess.CompletedProcess[str]:
    """A first check (over the network) that fills the caches and stores the facts."""
    first = check(directory, cache)
    assert first.returncode == 0, first.stderr
    assert "network modules: asyncio" in first.stderr
    shutil.rmtree(cache / "verdicts-v1")
    shutil.rmtree(cache / "summaries-v1")  # (lockfix.carryover): the next check reads the lock
    return first


def named(db: Path, table: str, name: str, key: str = "key") -> dict[str, str]:
    """The rows of ``table`` (key → doc) that hold ``name``'s metadata."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute(f"SELECT {key}, doc FROM {table}").fetchall()
    return {
        k: doc for k, doc in rows if (json.loads(doc).get("metadata") or {}).get("name") == name
    }


def delete(db: Path, table: str, keys: list[str], key: str = "key") -> None:
    with sqlite3.connect(db) as conn:
        conn.executemany(f"DELETE FROM {table} WHERE {key} = ?", [(k,) for k in keys])


def forget_facts(cache: Path, name: str) -> dict[str, str]:
    """Delete the stored facts of package ``name`` (as if its block had changed)."""
    facts = named(cache / FACTS_DATABASE, "facts", name)
    assert len(facts) == 1
    delete(cache / FACTS_DATABASE, "facts", list(facts))
    return facts


def changed_package(directory: Path) -> Package:
    lock = parse_lock((directory / "uv.lock").read_text())
    return next(p for p in lock.packages if p.name == CHANGED)


def test_a_check_the_caches_answer_never_imports_asyncio(project, tmp_path: Path) -> None:
    directory, server = project
    cache = tmp_path / "cache"
    first = warm(directory, cache)
    stored = forget_facts(cache, CHANGED)
    server.reset_log()
    again = check(directory, cache)
    assert again.returncode == 0, again.stderr
    assert "network modules: none" in again.stderr
    assert again.stdout == first.stdout
    assert server.requests == []
    # checked in full (not recalled), and its facts stored again as the network path did
    assert named(cache / FACTS_DATABASE, "facts", CHANGED) == stored


def test_a_package_the_caches_cannot_answer_whole_goes_to_the_network_once(
    project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory, server = project
    cache = tmp_path / "cache"
    warm(directory, cache)
    forget_facts(cache, CHANGED)
    package = changed_package(directory)
    wheels = list(package.wheels)
    assert len(wheels) > 2
    # The metadata of its last wheel is missing (under the key of what its index served and
    # under the key its PEP 658 hash proves); the other wheels' entries are still there, so
    # the cache-only attempt finds them before it gives up.
    index_url = package.source.location
    kept = {origin_key(index_url, w.url or "", w.hashes["sha256"]) for w in wheels[:-1]}
    metadata = named(cache / METADATA_DATABASE, "metadata", CHANGED, key="sha256")
    assert kept < metadata.keys()
    delete(cache / METADATA_DATABASE, "metadata", list(metadata.keys() - kept), key="sha256")
    clients: list[IndexClient] = []
    make_client = engine._client

    def recorded(*args: object) -> IndexClient:
        client = make_client(*args)  # type: ignore[arg-type]
        clients.append(client)
        return client

    monkeypatch.setattr(engine, "_client", recorded)
    server.reset_log()
    lock = parse_lock((directory / "uv.lock").read_text())
    analysis = engine.analyze_lock(lock, directory, Settings(cache_dir=cache))
    assert analysis.plan.findings == [] and analysis.plan.unverified == {}
    assert analysis.plan.verified == len(lock.packages) - 1  # all but the project itself
    # the one request the network path makes for it: that wheel's PEP 658 metadata
    missing = urlsplit(wheels[-1].url or "").path
    assert [r.path for r in server.requests] == [f"{missing}.metadata"]
    (client,) = clients
    stats = client.stats
    assert stats.requests == stats.metadata_pep658 == analysis.requests == 1
    # counted once each: the pages of the packages recalled (2) and of the one checked
    assert stats.page_cache_hits == 3
    assert stats.metadata_cache_hits == len(wheels) - 1


def test_offline_with_a_page_missing_leaves_its_package_unverified(project, tmp_path: Path) -> None:
    directory, _ = project
    cache = tmp_path / "cache"
    warm(directory, cache)
    package = changed_package(directory)
    url = project_page_url(package.source.location, CHANGED)
    key = hashlib.sha256(url.encode()).hexdigest()
    (cache / "pages-v2" / key[:2] / key).unlink()
    result = check(directory, cache, "--offline")
    assert result.returncode == 3, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["findings"] == [] and report["verified"] == 2
    (unverified,) = report["unverified"]
    assert unverified["package"] == CHANGED
    assert "offline: project page of 'wheely' is not in the cache" in unverified["reason"]
    assert f"could not verify uv.lock: 1 package(s) could not be verified ({CHANGED}" in (
        result.stderr
    )
