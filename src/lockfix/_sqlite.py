"""Reading many rows of lockfix's SQLite caches by key."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any

# keys per statement: SQLite bounds the parameters of one (999 before 3.32)
_CHUNK = 500


def select_in(db: sqlite3.Connection, query: str, keys: Sequence[str]) -> Iterator[Any]:
    """The rows of ``query`` for ``keys``, whose ``{marks}`` stands for the placeholders of
    an ``IN`` list, a statement per :data:`_CHUNK` keys. Raises :class:`sqlite3.Error` as
    the rows are read."""
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start : start + _CHUNK]
        yield from db.execute(query.format(marks=",".join("?" * len(chunk))), chunk)
