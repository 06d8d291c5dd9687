"""lockfix._sqlite.select_in: every row of many keys, past SQLite's parameter bound."""

from __future__ import annotations

import sqlite3

from lockfix._sqlite import select_in


def test_rows_of_more_keys_than_one_statement_takes() -> None:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (key TEXT PRIMARY KEY, value INTEGER)")
    db.executemany("INSERT INTO t VALUES (?, ?)", [(f"k{i}", i) for i in range(2500)])
    keys = [f"k{i}" for i in range(0, 2500, 2)] + ["absent"]
    rows = list(select_in(db, "SELECT key, value FROM t WHERE key IN ({marks})", keys))
    assert sorted(value for _, value in rows) == list(range(0, 2500, 2))
    assert list(select_in(db, "SELECT key FROM t WHERE key IN ({marks})", [])) == []
