"""On-disk cache: parsed core metadata keyed by what proves it, and HTTP-cached index pages.

Layout under the cache root::

    metadata-v2.sqlite               parsed CoreMetadata (or an "unavailable" verdict) by key,
                                     and the stamps of stored pages (PageCache.stamp)
    pages-v2/<aa>/<sha256(url)>      one index page: a JSON header line, then the body
    verdicts-v1/<aa>/<key>.json      clean `check` reports, while their pages stay fresh
    summaries-v1/<aa>/<key>.bin      the last clean lock of each path (lockfix.carryover)
    uv-version-v1.json               `uv --version` of each uv binary seen (path, size, mtime)

Metadata is kept under what proves it (:func:`pep658_key`, :func:`origin_key`), never under
the file's sha256 alone: an index can serve any metadata for a real file, and what one index
served must not answer for another. Either key names immutable content, so a metadata entry
never needs revalidation. A page
entry keeps the validators (ETag, Last-Modified), when it was fetched and for how long it is
fresh; it is replaced, never appended to, on every refetch or revalidation.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import os
import re
import sqlite3
import time
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from lockfix._files import replace_file
from lockfix._sqlite import select_in
from lockfix.dist.metadata import CoreMetadata, MetadataUnavailable
from lockfix.urls import origin

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
METADATA_DATABASE = "metadata-v2.sqlite"
# How long a statement waits for another process's transaction on the database before this
# run goes on without the metadata cache (a run's write is one short transaction).
BUSY_TIMEOUT = 5.0
_SQLITE_CORRUPT, _SQLITE_NOTADB = 11, 26  # primary result codes of a damaged file


def _damaged(error: sqlite3.DatabaseError) -> bool:
    """Whether ``error`` says the file is not a usable database, rather than busy, locked
    by another process, read-only or out of space."""
    code = getattr(error, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF in (_SQLITE_CORRUPT, _SQLITE_NOTADB)
    message = str(error)
    return "not a database" in message or "malformed" in message


def default_cache_dir() -> Path:
    import platformdirs  # only where no cache folder is given

    return platformdirs.user_cache_path("lockfix")


def pep658_key(metadata_sha256: str, wheel: bool) -> str:
    """The key of PEP 658 metadata whose bytes had the sha256 its index page gave: that hash
    proves them, whichever index served them."""
    kind = "wheel" if wheel else "sdist"
    return hashlib.sha256(f"pep658\0{kind}\0{metadata_sha256.lower()}".encode()).hexdigest()


def origin_key(index_url: str, file_url: str, sha256: str) -> str:
    """The key of metadata read any other way (range reads, a download, PEP 658 without a
    hash): only who served it vouches for it, so the index (its URL without credentials),
    the origin the file came from and the file's sha256."""
    scheme, host, port = origin(file_url)
    text = f"origin\0{index_url.rstrip('/')}\0{scheme}://{host}:{port}\0{sha256.lower()}"
    return hashlib.sha256(text.encode()).hexdigest()


def _stamp_row(
    size: object, mtime_ns: object, stamp: object, fetched_at: object, max_age: object
) -> PageStamp | None:
    """A page_stamps row as read, None unless every column has its type."""
    if not (
        isinstance(size, int)
        and isinstance(mtime_ns, int)
        and isinstance(stamp, str)
        and isinstance(fetched_at, float)
        and isinstance(max_age, float)
    ):
        return None
    return PageStamp(size, mtime_ns, stamp, fetched_at, max_age)


class MetadataCache:
    """Parsed core metadata by key (a sha256 hex digest), in one SQLite file, plus the page
    cache.

    A cold run stores thousands of small entries: as one file each, they would cost an inode
    allocation apiece to write and a syscall apiece to read back. In SQLite they are rows of
    one table, written in one transaction when the run's client closes (:meth:`flush`; until
    then they are answered from memory) and read by primary key. SQLite's locking keeps
    concurrent runs consistent; a damaged database file is set aside and started afresh. A
    database another process keeps locked for longer than :data:`BUSY_TIMEOUT` is left
    alone: the run goes on without it."""

    def __init__(self, root: Path | str | None = None) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()
        self.database = self.root / METADATA_DATABASE
        self.pages = PageCache(self.root / "pages-v2", self)
        self._db: sqlite3.Connection | None = None
        self._pending: dict[str, str] = {}
        self._pending_stamps: dict[str, PageStamp] = {}
        # rows read by load_page_stamps (None: no usable row), by page key
        self._loaded_stamps: dict[str, PageStamp | None] = {}
        self._exit_hook = False
        self._busy = False  # another process held the database too long: not used this run

    def _connect(self, create: bool) -> sqlite3.Connection | None:
        if self._db is not None:
            return self._db
        if self._busy or (not create and not self.database.exists()):
            return None
        for attempt in range(2):
            db = None
            try:
                self.root.mkdir(parents=True, exist_ok=True)
                db = sqlite3.connect(self.database, timeout=BUSY_TIMEOUT, check_same_thread=False)
                db.execute(
                    "CREATE TABLE IF NOT EXISTS metadata "
                    "(sha256 TEXT PRIMARY KEY, doc TEXT NOT NULL) WITHOUT ROWID"
                )
                db.execute(
                    "CREATE TABLE IF NOT EXISTS page_stamps (key TEXT PRIMARY KEY, "
                    "size INTEGER, mtime_ns INTEGER, stamp TEXT, fetched_at REAL, max_age REAL) "
                    "WITHOUT ROWID"
                )
            except sqlite3.DatabaseError as error:
                if db is not None:
                    db.close()
                if attempt or not _damaged(error):
                    self._given_up(error)
                    return None
                with contextlib.suppress(OSError):  # not a database: set it aside
                    self.database.replace(self.database.with_suffix(".damaged"))
                continue
            except (sqlite3.Error, OSError):
                return None
            self._db = db
            return db
        return None

    def _given_up(self, error: sqlite3.Error) -> None:
        """After a statement failed: a database that stayed locked is not tried again in
        this run (every statement would wait :data:`BUSY_TIMEOUT` again)."""
        if isinstance(error, sqlite3.OperationalError) and not _damaged(error):
            self._busy = True
            if self._db is not None:
                with contextlib.suppress(sqlite3.Error):
                    self._db.close()
                self._db = None

    def flush(self) -> None:
        """Write the entries stored since the last flush (one transaction)."""
        pending, self._pending = self._pending, {}
        stamps, self._pending_stamps = self._pending_stamps, {}
        if not pending and not stamps:
            return
        db = self._connect(create=True)
        if db is None:
            return  # a cache that cannot be written is a slower run
        try:
            with db:
                db.executemany("INSERT OR REPLACE INTO metadata VALUES (?, ?)", pending.items())
                db.executemany(
                    "INSERT OR REPLACE INTO page_stamps VALUES (?, ?, ?, ?, ?, ?)",
                    ((key, *row) for key, row in stamps.items()),
                )
        except sqlite3.Error as error:
            self._given_up(error)

    def close(self) -> None:
        self.flush()
        if self._db is not None:
            self._db.close()
            self._db = None

    @staticmethod
    def _key(sha256: str) -> str | None:
        key = sha256.lower()
        return key if _SHA256.match(key) else None

    def get(self, sha256: str) -> CoreMetadata | MetadataUnavailable | None:
        """The cached metadata, a cached :class:`MetadataUnavailable` verdict, or None."""
        key = self._key(sha256)
        if key is None:
            return None
        text = self._pending.get(key)
        if text is None:
            db = self._connect(create=False)
            if db is None:
                return None
            try:
                row = db.execute("SELECT doc FROM metadata WHERE sha256 = ?", (key,)).fetchone()
            except sqlite3.Error as error:
                self._given_up(error)
                return None
            if row is None:
                return None
            text = row[0]
        try:
            doc = json.loads(text)
            if doc.get("unavailable") is not None:
                return MetadataUnavailable(str(doc["unavailable"]))
            return CoreMetadata.from_json(doc["metadata"])
        except (ValueError, KeyError, TypeError, AttributeError):
            # Corrupt or from an incompatible version: treat as a miss, it'll be rewritten.
            return None

    def put(self, sha256: str, metadata: CoreMetadata) -> None:
        self._write(sha256, {"metadata": metadata.to_json()})

    def put_unavailable(self, sha256: str, reason: str) -> None:
        self._write(sha256, {"unavailable": reason})

    def _write(self, sha256: str, doc: dict[str, Any]) -> None:
        key = self._key(sha256)
        if key is None:
            return
        self._pending[key] = json.dumps(doc, separators=(",", ":"))
        self._close_at_exit()

    def _close_at_exit(self) -> None:
        if not self._exit_hook:  # a run that never closes its client still keeps them
            atexit.register(self.close)
            self._exit_hook = True

    # PageStamps: what PageCache.stamp read from a page file, by the page's key
    def page_stamp(self, key: str) -> PageStamp | None:
        row = self._pending_stamps.get(key)
        if row is not None:
            return row
        if key in self._loaded_stamps:
            return self._loaded_stamps[key]
        db = self._connect(create=False)
        if db is None:
            return None
        try:
            found = db.execute(
                "SELECT size, mtime_ns, stamp, fetched_at, max_age FROM page_stamps WHERE key = ?",
                (key,),
            ).fetchone()
        except sqlite3.Error as error:
            self._given_up(error)
            return None
        return None if found is None else _stamp_row(*found)

    def load_page_stamps(self, keys: list[str]) -> None:
        """Read the rows of these pages in one query per 500, for :meth:`page_stamp`."""
        db = self._connect(create=False)
        if db is None:
            return
        loaded = dict.fromkeys(keys)
        try:
            query = (
                "SELECT key, size, mtime_ns, stamp, fetched_at, max_age FROM page_stamps "
                "WHERE key IN ({marks})"
            )
            for key, size, mtime_ns, stamp, fetched_at, max_age in select_in(db, query, keys):
                loaded[key] = _stamp_row(size, mtime_ns, stamp, fetched_at, max_age)
        except sqlite3.Error as error:
            self._given_up(error)
            return
        self._loaded_stamps.update(loaded)

    def put_page_stamp(self, key: str, row: PageStamp) -> None:
        self._pending_stamps[key] = row
        self._close_at_exit()

    def stored(self, sha256s: list[str]) -> set[str]:
        """Those of ``sha256s`` (lower-case hex) that have an entry."""
        found = {key for key in sha256s if key in self._pending}
        db = self._connect(create=False)
        if db is None:
            return found
        wanted = [key for key in sha256s if key not in found]
        try:
            query = "SELECT sha256 FROM metadata WHERE sha256 IN ({marks})"
            found.update(row[0] for row in select_in(db, query, wanted))
        except sqlite3.Error as error:
            self._given_up(error)
        return found

    def entries(self) -> int:
        db = self._connect(create=False)
        if db is None:
            return len(self._pending)
        try:
            return int(db.execute("SELECT count(*) FROM metadata").fetchone()[0])
        except sqlite3.Error:
            return 0


class CachedPage:
    """One stored index page and what HTTP said about its freshness."""

    __slots__ = (
        "body",
        "content_type",
        "etag",
        "fetched_at",
        "final_url",
        "last_modified",
        "max_age",
        "stamp",
        "url",
    )

    def __init__(
        self,
        url: str,  # the URL asked for (the cache key)
        final_url: str,  # after redirects: relative links resolve against it
        content_type: str | None,
        body: bytes,
        fetched_at: float,  # time.time() of the last 200 or 304
        max_age: float,  # seconds it stays fresh after fetched_at
        etag: str | None = None,
        last_modified: str | None = None,
        stamp: str | None = None,  # of the stored copy read (PageCache.stamp), set by get
    ) -> None:
        self.url = url
        self.final_url = final_url
        self.content_type = content_type
        self.body = body
        self.fetched_at = fetched_at
        self.max_age = max_age
        self.etag = etag
        self.last_modified = last_modified
        self.stamp = stamp

    def fresh(self, now: float) -> bool:
        return 0 <= now - self.fetched_at < self.max_age


_PAGE_MAGIC = b"lockfix-page-1\n"


def _page_stamp(header: bytes, size: int) -> str:
    return hashlib.sha256(header + b"\n" + str(size).encode()).hexdigest()


class PageStamp(NamedTuple):
    """What :meth:`PageCache.stamp` read from a page file, with the size and modification
    time (ns) of the file it read it from."""

    size: int
    mtime_ns: int
    stamp: str
    fetched_at: float
    max_age: float


class PageStamps(Protocol):
    """Where :meth:`PageCache.stamp` keeps what it read from page files, by page key."""

    def page_stamp(self, key: str) -> PageStamp | None: ...

    def load_page_stamps(self, keys: list[str]) -> None: ...

    def put_page_stamp(self, key: str, row: PageStamp) -> None: ...


# A page file modified less than this long before its header is read is not remembered by
# PageCache.stamp: a later replacement could otherwise share its modification time on a
# file system with coarse timestamps.
_SETTLED_NS = 2_000_000_000


class PageCache:
    """Index pages, one file per URL: ``<root>/<aa>/<sha256(url)>``.

    The file is a magic line, one JSON header line, then the body as served. Each write goes
    to a temporary file renamed over the old entry, so readers never see a partial page.

    ``stamps``: where the stamp and freshness of each page file read are kept with the
    file's size and modification time, so that later runs learn them from a ``stat`` of the
    file; a file whose size or modification time differs is read again."""

    def __init__(self, root: Path, stamps: PageStamps | None = None) -> None:
        self.root = root
        self.stamps = stamps
        self._folder = os.path.join(os.fspath(root), "")  # ends with a separator
        self._keys: dict[str, str] = {}  # URL → key, of the pages preloaded

    def _path(self, url: str) -> Path:
        key = hashlib.sha256(url.encode()).hexdigest()
        return self.root / key[:2] / key

    def get(self, url: str) -> CachedPage | None:
        try:
            data = self._path(url).read_bytes()
        except OSError:
            return None
        if not data.startswith(_PAGE_MAGIC):
            return None
        end = data.find(b"\n", len(_PAGE_MAGIC))
        if end < 0:
            return None
        try:
            head = json.loads(data[len(_PAGE_MAGIC) : end])
            page = CachedPage(
                url=head["url"],
                final_url=head["final_url"],
                content_type=head.get("content_type"),
                body=data[end + 1 :],
                fetched_at=float(head["fetched_at"]),
                max_age=float(head["max_age"]),
                etag=head.get("etag"),
                last_modified=head.get("last_modified"),
                stamp=_page_stamp(data[len(_PAGE_MAGIC) : end], len(data)),
            )
        except (ValueError, KeyError, TypeError):
            return None  # corrupt or from another version: a miss; it'll be rewritten
        return page if page.url == url else None

    def preload(self, urls: list[str]) -> None:
        """Learn what is known of these pages' files at once (each :meth:`stamp` of one of
        them then costs a ``stat``, not a query)."""
        if self.stamps is not None:
            keys = {url: hashlib.sha256(url.encode()).hexdigest() for url in urls}
            self._keys.update(keys)
            self.stamps.load_page_stamps(list(keys.values()))

    def stamp(self, url: str) -> tuple[str, float, float] | None:
        """(stamp, fetched_at, max_age) of the stored page, from its header alone. The stamp
        names this copy of the page: every write (a fetch or a revalidation) changes it."""
        key = self._keys.get(url) or hashlib.sha256(url.encode()).hexdigest()
        path = self._folder + key[:2] + os.sep + key
        known = self.stamps.page_stamp(key) if self.stamps is not None else None
        if known is not None:
            try:
                status = os.stat(path)
            except OSError:
                return None
            if status.st_size == known.size and status.st_mtime_ns == known.mtime_ns:
                return known.stamp, known.fetched_at, known.max_age
        try:
            with open(path, "rb") as f:
                data = f.read(len(_PAGE_MAGIC) + 8192)
                status = os.fstat(f.fileno())
        except OSError:
            return None
        end = data.find(b"\n", len(_PAGE_MAGIC))
        if not data.startswith(_PAGE_MAGIC) or end < 0:
            return None
        header = data[len(_PAGE_MAGIC) : end]
        try:
            head = json.loads(header)
            if head["url"] != url:
                return None
            fetched_at, max_age = float(head["fetched_at"]), float(head["max_age"])
        except (ValueError, KeyError, TypeError):
            return None
        stamp = _page_stamp(header, status.st_size)
        if self.stamps is not None and status.st_mtime_ns < time.time_ns() - _SETTLED_NS:
            row = PageStamp(status.st_size, status.st_mtime_ns, stamp, fetched_at, max_age)
            self.stamps.put_page_stamp(key, row)
        return stamp, fetched_at, max_age

    def put(self, page: CachedPage) -> str | None:
        """Store ``page``; the stamp of the stored copy, None if it could not be written."""
        head = {
            "url": page.url,
            "final_url": page.final_url,
            "content_type": page.content_type,
            "fetched_at": page.fetched_at,
            "max_age": page.max_age,
            "etag": page.etag,
            "last_modified": page.last_modified,
        }
        header = json.dumps(head, separators=(",", ":")).encode()
        data = b"".join((_PAGE_MAGIC, header, b"\n", page.body))
        path = self._path(page.url)
        try:
            try:
                replace_file(path, data, durable=False)
            except FileNotFoundError:  # the first page in its folder
                replace_file(path, data, parents=True, durable=False)
        except OSError:
            return None  # a cache that cannot be written is a slower run
        return _page_stamp(header, len(data))
