"""The stored index pages (lockfix.index.cache.PageCache): the stamp of a stored copy, read
from the page file or from what an earlier run read of it, names that copy and no other."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lockfix.index.cache import METADATA_DATABASE, CachedPage, MetadataCache, PageCache

URL = "https://index.example/simple/demo/"


def page(body: bytes, fetched_at: float = 1_800_000_000.0) -> CachedPage:
    return CachedPage(URL, URL, "text/html", body, fetched_at=fetched_at, max_age=600.0)


def page_file(root: Path) -> Path:
    key = hashlib.sha256(URL.encode()).hexdigest()
    return root / "pages-v2" / key[:2] / key


def settle(path: Path, seconds_ago: float = 60.0) -> None:
    """Give the file a modification time long enough ago for its stamp to be remembered."""
    when = time.time_ns() - int(seconds_ago * 1e9)
    os.utime(path, ns=(when, when))


def unreadable_in_place(path: Path) -> None:
    """Make the page file unreadable as a page, keeping its size and modification time."""
    status = path.stat()
    path.write_bytes(path.read_bytes().replace(b'"url"', b'"xyz"'))
    os.utime(path, ns=(status.st_atime_ns, status.st_mtime_ns))


def remembered(root: Path) -> int:
    if not (root / METADATA_DATABASE).exists():
        return 0
    with sqlite3.connect(root / METADATA_DATABASE) as db:
        return int(db.execute("SELECT count(*) FROM page_stamps").fetchone()[0])


def store(root: Path, body: bytes, fetched_at: float = 1_800_000_000.0) -> str:
    cache = MetadataCache(root)
    stamp = cache.pages.put(page(body, fetched_at))
    cache.close()
    assert stamp is not None
    return stamp


@pytest.fixture(autouse=True, params=[False, True], ids=["one by one", "preloaded"])
def preloaded(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each test twice: stamps looked up one page at a time, and preloaded for the run."""
    global PRELOAD
    PRELOAD = request.param
    yield
    PRELOAD = False


PRELOAD = False


def stamp_in_new_run(root: Path) -> tuple[str, float, float] | None:
    cache = MetadataCache(root)
    try:
        if PRELOAD:
            cache.pages.preload([URL])
        return cache.pages.stamp(URL)
    finally:
        cache.close()


def test_preloaded_stamps_answer_without_asking_the_database_again(tmp_path: Path) -> None:
    stamp = store(tmp_path, b"<html>one</html>")
    settle(page_file(tmp_path))
    assert stamp_in_new_run(tmp_path) == (stamp, 1_800_000_000.0, 600.0)
    cache = MetadataCache(tmp_path)
    try:
        cache.pages.preload([URL, "https://index.example/simple/other/"])
        with sqlite3.connect(tmp_path / METADATA_DATABASE) as db:
            db.execute("DELETE FROM page_stamps")
        unreadable_in_place(page_file(tmp_path))
        assert cache.pages.stamp(URL) == (stamp, 1_800_000_000.0, 600.0)
    finally:
        cache.close()


def test_a_settled_page_s_stamp_is_remembered_and_read_back(tmp_path: Path) -> None:
    stamp = store(tmp_path, b"<html>one</html>")
    settle(page_file(tmp_path))
    assert stamp_in_new_run(tmp_path) == (stamp, 1_800_000_000.0, 600.0)
    assert remembered(tmp_path) == 1
    # the next run answers from what the first one read: the file is only looked up
    unreadable_in_place(page_file(tmp_path))
    assert stamp_in_new_run(tmp_path) == (stamp, 1_800_000_000.0, 600.0)


def test_a_page_replaced_on_disk_gets_the_stamp_of_the_new_copy(tmp_path: Path) -> None:
    old = store(tmp_path, b"<html>one</html>")
    settle(page_file(tmp_path))
    assert stamp_in_new_run(tmp_path) == (old, 1_800_000_000.0, 600.0)
    assert remembered(tmp_path) == 1
    # the same size of file, written by a run (or another lockfix) that remembers nothing
    PageCache(tmp_path / "pages-v2").put(page(b"<html>two</html>", 1_800_000_001.0))
    found = stamp_in_new_run(tmp_path)
    assert found is not None and found[0] != old and found[1] == 1_800_000_001.0
    # and once settled, the new copy's stamp is what is remembered
    settle(page_file(tmp_path), 30.0)
    again = stamp_in_new_run(tmp_path)
    assert again == found
    assert stamp_in_new_run(tmp_path) == found


def test_a_page_replaced_after_the_stamps_were_loaded_gets_the_new_copy_s(tmp_path: Path) -> None:
    old = store(tmp_path, b"<html>one</html>")
    settle(page_file(tmp_path))
    assert stamp_in_new_run(tmp_path) == (old, 1_800_000_000.0, 600.0)
    cache = MetadataCache(tmp_path)
    try:
        cache.pages.preload([URL])
        assert cache.pages.stamp(URL) == (old, 1_800_000_000.0, 600.0)
        # replaced by another process while this run goes on
        PageCache(tmp_path / "pages-v2").put(page(b"<html>two</html>", 1_800_000_001.0))
        found = cache.pages.stamp(URL)
        assert found is not None and found[0] != old and found[1] == 1_800_000_001.0
    finally:
        cache.close()


def test_a_page_written_just_now_is_not_remembered(tmp_path: Path) -> None:
    stamp = store(tmp_path, b"<html>one</html>")
    assert stamp_in_new_run(tmp_path) == (stamp, 1_800_000_000.0, 600.0)
    assert remembered(tmp_path) == 0


def test_a_missing_page_has_no_stamp_even_when_remembered(tmp_path: Path) -> None:
    store(tmp_path, b"<html>one</html>")
    settle(page_file(tmp_path))
    assert stamp_in_new_run(tmp_path) is not None
    page_file(tmp_path).unlink()
    assert stamp_in_new_run(tmp_path) is None


def test_a_remembered_stamp_that_does_not_decode_is_read_from_the_file(tmp_path: Path) -> None:
    stamp = store(tmp_path, b"<html>one</html>")
    settle(page_file(tmp_path))
    assert stamp_in_new_run(tmp_path) is not None
    with sqlite3.connect(tmp_path / METADATA_DATABASE) as db:
        db.execute("UPDATE page_stamps SET stamp = 7, fetched_at = 'x'")
    assert stamp_in_new_run(tmp_path) == (stamp, 1_800_000_000.0, 600.0)
