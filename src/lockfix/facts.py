"""What a check learned about one locked package, stored so that an unchanged package costs
a lookup the next time.

A check of a registry package reads its index page, the core metadata of each locked
file, merges it (:func:`lockfix.analysis.wheels.merge_wheel_metadata`) and audits the locked files
against the page. The outcome depends only on what the lock says of the package's
identity and files (name, version, source, each file's URL, hash, size and upload time),
the page as the index served it, and a few options; not on its edges or resolution
markers. :func:`facts_key` hashes exactly those; the page enters by its cache stamp
(:meth:`lockfix.index.cache.PageCache.stamp`), which changes whenever the page is fetched or
revalidated. Only a complete outcome is stored: every file's metadata read, no finding
against the locked files, nothing unverified. Everything else is checked afresh each
time.

The same database keeps the package read from each ``[[package]]`` block by the sha256 of
its text (:func:`lockfix.lock.lockfile.parse_lock`), so that only changed blocks are decoded,
and the requirements the planner lowered from each metadata
(:func:`lockfix.analysis.lowering.lower_requirements`), by :func:`lowered_key`: the
digest of the metadata's name, Requires-Dist and Provides-Extra (stored with the metadata
in its package's facts, so that a recalled package does not digest them again), the
manifest's excludes and overrides, and the override rule. A package answered from its
facts takes them instead of reading its Requires-Dist lines again.

The entries are rows of SQLite tables in ``facts-v1.sqlite`` under the cache root, all
written in one transaction when the run ends. An entry that does not decode is a miss; a
damaged database file is set aside and started afresh; a database another process keeps
locked is left alone for the run.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet

from lockfix import __version__
from lockfix._sqlite import select_in
from lockfix.analysis.lowering import Lowered, LoweredRequirement, ManifestRules
from lockfix.dist.metadata import CoreMetadata
from lockfix.index.cache import BUSY_TIMEOUT, _damaged
from lockfix.markers import InvalidMarker, Marker

FACTS_DATABASE = "facts-v1.sqlite"
# Part of every key: a change to what is stored, or to how the engine computes it, must
# come with a new value here (so that entries written by other code are never read).
FORMAT = "lockfix-facts-2"
# The same for stored lowered requirements: a change to lower_requirements' output (or to
# the marker algebra it uses) must come with a new value here.
LOWERED_FORMAT = "lockfix-lowered-2"
DISABLE_VARIABLE = "LOCKFIX_PACKAGE_FACTS"  # "0": neither read nor write stored facts


def enabled() -> bool:
    return os.environ.get(DISABLE_VARIABLE, "").strip() != "0"


def facts_key(locked: str, page_stamp: str, *, per_wheel: bool, flat: bool) -> str:
    """The key of a package's facts: what the lock says of it (``locked``: the digest of its
    id and files, :attr:`lockfix.lock.lockfile.Package.locked_digest`), its page's stamp,
    the options."""
    options = _KEY_OPTIONS[per_wheel, flat]
    text = f"{FORMAT}\0{__version__}\0{options}{page_stamp}\0{locked}"
    return hashlib.sha256(text.encode()).hexdigest()


# the options' part of a facts_key text, by (per_wheel, flat)
_KEY_OPTIONS = {
    (per_wheel, flat): f"{per_wheel:d}\0{flat:d}\0"
    for per_wheel in (False, True)
    for flat in (False, True)
}


def lowered_key(metadata: CoreMetadata, rules: ManifestRules, legacy: bool) -> str:
    """The key of ``metadata``'s lowered requirements under ``rules`` (made by
    :meth:`ManifestRules.from_manifest`) and the override rule (``legacy``): the metadata
    enters by :attr:`CoreMetadata.requirements_digest` (what lowering reads of it), after
    the digest of the rest, the same for every package of a run."""
    return digest_lowered_key(metadata.requirements_digest, rules, legacy)


def digest_lowered_key(digest: str, rules: ManifestRules, legacy: bool) -> str:
    """:func:`lowered_key` of a metadata whose requirements digest is ``digest``."""
    return _lowered_prefix(LOWERED_FORMAT, __version__, rules.fingerprint, legacy) + digest


@functools.lru_cache(maxsize=16)
def _lowered_prefix(form: str, version: str, fingerprint: str, legacy: bool) -> str:
    # The fingerprint (JSON text, without NUL) is the one part of any length: it goes last.
    text = f"{form}\0{version}\0{legacy:d}\0{fingerprint}"
    return hashlib.sha256(text.encode()).hexdigest()[:32] + ":"


def encode_lowered(tables: Lowered) -> dict[str, Any] | None:
    """The stored form of lowered requirements; None when a specifier or marker would not
    read back as the same value."""
    out = []
    for (kind, name), requirements in tables.items():
        rows = []
        for r in requirements:
            specifier, marker = str(r.specifier), str(r.marker)
            try:
                exact = SpecifierSet(specifier) == r.specifier and Marker.parse(marker) == r.marker
            except (InvalidSpecifier, InvalidMarker):
                exact = False
            if not exact:
                return None
            rows.append([r.name, list(r.extras), specifier, marker, r.text])
        out.append([kind, name, rows])
    return {"tables": out}


def decode_lowered(
    doc: dict[str, Any],
    specifiers: dict[str, SpecifierSet] | None = None,
    markers: dict[str, Marker] | None = None,
) -> Lowered:
    """The tables :func:`encode_lowered` stored. Raises ValueError, TypeError, KeyError
    (or InvalidSpecifier, InvalidMarker) on what it did not write. ``specifiers``,
    ``markers``: those read so far, by their text (shared between calls; none is ever
    modified)."""
    if specifiers is None:
        specifiers = {}
    if markers is None:
        markers = {}
    tables: Lowered = {}
    for kind, name, rows in doc["tables"]:
        if not (kind is None or isinstance(kind, str)) or not (
            name is None or isinstance(name, str)
        ):
            raise TypeError("not a table")
        requirements = tables.setdefault((kind, name), [])
        for target, extras, specifier, marker, text in rows:
            if not (isinstance(target, str) and isinstance(text, str) and isinstance(extras, list)):
                raise TypeError("not a requirement")
            parsed = specifiers.get(specifier)
            if parsed is None:
                parsed = specifiers[specifier] = SpecifierSet(specifier)
            when = markers.get(marker)
            if when is None:
                when = markers[marker] = Marker.parse(marker)
            requirements.append(
                LoweredRequirement(
                    target, tuple(map(str, extras)) if extras else (), parsed, when, text
                )
            )
    return tables


def decode_lowered_docs(docs: Mapping[str, dict[str, Any]]) -> Iterator[tuple[str, Lowered]]:
    """The tables of each doc (by its key) that decodes, the others left out; a specifier
    or marker text common to several docs is read once."""
    specifiers: dict[str, SpecifierSet] = {}
    markers: dict[str, Marker] = {}
    for key, doc in docs.items():
        try:
            tables = decode_lowered(doc, specifiers, markers)
        except (KeyError, TypeError, ValueError):  # InvalidSpecifier, InvalidMarker too
            continue
        yield key, tables


class LoweredByDigest:
    """The lowered requirements a :class:`FactsStore` keeps, by the requirements digest of
    the metadata they were lowered from, under one manifest's rules and override rule
    (``legacy``)."""

    __slots__ = ("legacy", "rules", "store")

    def __init__(self, store: FactsStore, rules: ManifestRules, legacy: bool = False) -> None:
        self.store = store
        self.rules = rules
        self.legacy = legacy

    def get(self, digest: str) -> Lowered | None:
        key = digest_lowered_key(digest, self.rules, self.legacy)
        return next((tables for _, tables in decode_lowered_docs(self.store.lowered([key]))), None)

    def put(self, digest: str, tables: Lowered) -> None:
        """Keep ``tables``, unless a specifier or marker would not read back the same."""
        doc = encode_lowered(tables)
        if doc is not None:
            self.store.put_lowered(digest_lowered_key(digest, self.rules, self.legacy), doc)

    def __repr__(self) -> str:
        return f"<LoweredByDigest of {self.store!r}>"


class FactsStore:
    """Stored package facts by :func:`facts_key`; see the module docstring."""

    def __init__(self, root: Path | str) -> None:
        self.database = Path(root) / FACTS_DATABASE
        self._db: sqlite3.Connection | None = None
        self._pending: dict[str, str] = {}
        self._pending_records: dict[str, bytes] = {}
        self._pending_lowered: dict[str, str] = {}
        self._unusable = False

    def _connect(self, create: bool) -> sqlite3.Connection | None:
        if self._db is not None:
            return self._db
        if self._unusable or (not create and not self.database.exists()):
            return None
        for attempt in range(2):
            db = None
            try:
                self.database.parent.mkdir(parents=True, exist_ok=True)
                db = sqlite3.connect(self.database, timeout=BUSY_TIMEOUT)
                for table in ("facts", "lowered"):
                    db.execute(
                        f"CREATE TABLE IF NOT EXISTS {table} "
                        "(key TEXT PRIMARY KEY, doc TEXT NOT NULL) WITHOUT ROWID"
                    )
                db.execute(
                    "CREATE TABLE IF NOT EXISTS packages "
                    "(key TEXT PRIMARY KEY, record BLOB NOT NULL) WITHOUT ROWID"
                )
            except sqlite3.DatabaseError as error:
                if db is not None:
                    db.close()
                if attempt or not _damaged(error):
                    self._unusable = True
                    return None
                with contextlib.suppress(OSError):  # not a database: set it aside
                    self.database.replace(self.database.with_suffix(".damaged"))
                continue
            except (sqlite3.Error, OSError):
                self._unusable = True
                return None
            self._db = db
            return db
        return None

    def _failed(self) -> None:
        self._unusable = True
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = None

    def get_many(self, keys: Iterable[str], table: str = "facts") -> dict[str, dict[str, Any]]:
        """The decodable entries among ``keys``."""
        wanted = list(dict.fromkeys(keys))
        db = self._connect(create=False)
        if db is None or not wanted:
            return {}
        rows: list[tuple[str, str]] = []
        try:
            query = f"SELECT key, doc FROM {table} WHERE key IN ({{marks}})"
            rows.extend(select_in(db, query, wanted))
        except sqlite3.Error:
            self._failed()
            return {}
        found: dict[str, dict[str, Any]] = {}
        for key, text in rows:
            try:
                doc = json.loads(text)
            except (ValueError, TypeError):
                continue  # corrupt: a miss; it will be rewritten
            if isinstance(doc, dict):
                found[key] = doc
        return found

    def put(self, key: str, doc: dict[str, Any]) -> None:
        self._pending[key] = json.dumps(doc, separators=(",", ":"))

    # lockfile.BlockRecords: the packages read from lock blocks, by the key of their text
    def records(self, keys: list[str]) -> dict[str, bytes]:
        db = self._connect(create=False)
        if db is None or not keys:
            return {}
        found: dict[str, bytes] = {}
        try:
            query = "SELECT key, record FROM packages WHERE key IN ({marks})"
            found.update(row for row in select_in(db, query, keys) if isinstance(row[1], bytes))
        except sqlite3.Error:
            self._failed()
            return {}
        return found

    def put_record(self, key: str, record: bytes) -> None:
        self._pending_records[key] = record

    @property
    def new_records(self) -> int:
        """How many records are to be written: blocks this store had not seen."""
        return len(self._pending_records)

    # lowered requirements, by lowered_key
    def lowered(self, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        return self.get_many(keys, "lowered")

    def put_lowered(self, key: str, doc: dict[str, Any]) -> None:
        self._pending_lowered[key] = json.dumps(doc, separators=(",", ":"))

    def close(self) -> None:
        """Write the entries stored in this run (one transaction) and close the database."""
        pending, self._pending = self._pending, {}
        records, self._pending_records = self._pending_records, {}
        lowered, self._pending_lowered = self._pending_lowered, {}
        if pending or records or lowered:
            db = self._connect(create=True)
            if db is not None:
                try:
                    with db:
                        db.executemany(
                            "INSERT OR REPLACE INTO facts VALUES (?, ?)", pending.items()
                        )
                        db.executemany(
                            "INSERT OR REPLACE INTO packages VALUES (?, ?)", records.items()
                        )
                        db.executemany(
                            "INSERT OR REPLACE INTO lowered VALUES (?, ?)", lowered.items()
                        )
                except sqlite3.Error:
                    self._failed()
        if self._db is not None:
            self._db.close()
            self._db = None


def encode_metadata(metadata: CoreMetadata | None) -> dict[str, Any] | None:
    return None if metadata is None else metadata.to_json(digest=True)


def decode_metadata(doc: Any) -> CoreMetadata | None:
    return None if doc is None else CoreMetadata.from_json(doc)
