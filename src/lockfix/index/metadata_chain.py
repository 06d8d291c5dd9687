"""Core metadata of a file listed on an index: from the metadata cache, else the cheapest
way that works, in order:

1. the PEP 658 ``.metadata`` file the page lists (given up on for the rest of the run on an
   index where it is missing or wrong);
2. range reads of a wheel's zip (:mod:`lockfix.index.ranges`; given up on per origin);
3. the whole file, streamed to a spooled temporary file, its hashes checked.

Local files are read from disk (:class:`lockfix.index.local.LocalSource`). What is learnt
is stored under the keys that prove it (:mod:`lockfix.index.cache`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from lockfix.dist.metadata import (
    MAX_METADATA_SIZE,
    CoreMetadata,
    MetadataError,
    MetadataUnavailable,
    check_matches_file,
    check_sdist_metadata,
    parse_core_metadata,
)
from lockfix.dist.simple import IndexFile
from lockfix.errors import HashMismatch, IndexClientError, IndexRequestError, OfflineCacheMiss
from lockfix.index.archives import hashers, merge_hashes, parse_archive, verify
from lockfix.index.cache import MetadataCache, origin_key, pep658_key
from lockfix.index.local import LocalSource, is_remote
from lockfix.index.ranges import RangeReader
from lockfix.index.session import (
    NOT_FOUND,
    MalformedResponse,
    Response,
    Session,
    TooLarge,
    raise_for_status,
)
from lockfix.urls import redact, split_credentials

if TYPE_CHECKING:
    import asyncio

log = logging.getLogger(__name__)
T = TypeVar("T")
Once = Callable[[tuple[Any, ...], Callable[[], Awaitable[Any]]], Awaitable[Any]]

DEFAULT_MAX_DOWNLOAD = 2 * 1024**3
_SPOOL_IN_MEMORY = 1024 * 1024  # per download in flight; the rest goes to a temp file
_SHA256_HEX = re.compile(r"^[0-9a-fA-F]{64}$")


class _IndexCaps:
    __slots__ = ("pep658",)

    def __init__(self) -> None:
        self.pep658 = True


def listed_sha256(file: IndexFile) -> str | None:
    """The sha256 the index page lists for the file's PEP 658 metadata, if any."""
    listed = file.core_metadata
    if isinstance(listed, Mapping):
        digest = {str(k).lower(): v for k, v in listed.items()}.get("sha256")
        if isinstance(digest, str) and _SHA256_HEX.match(digest):
            return digest.lower()
    return None


def _pep658_memo(index_key: str, file: IndexFile) -> tuple[Any, ...]:
    """Memo key of a file's PEP 658 metadata: files whose listed metadata sha256 is equal
    have byte-identical metadata (most wheels of a release), so it is fetched once."""
    digest = listed_sha256(file)
    if digest:
        return ("pep658", index_key, file.is_wheel, digest)
    return ("pep658-file", file.url)


def _check(md: CoreMetadata, file: IndexFile) -> CoreMetadata:
    pv = file.project_version
    project, version = pv if pv is not None else (None, None)
    try:
        check_matches_file(md, project, version)
    except MetadataError as e:
        raise IndexRequestError(f"{file.filename}: {e}", file.url) from None
    return md


def _project(file: IndexFile) -> str | None:
    pv = file.project_version
    return pv[0] if pv is not None else None


class MetadataChain:
    """The fallback sequence above, for one run. ``once`` memoises work by key (in flight
    or done) across the run, so a file asked for twice is fetched once."""

    def __init__(
        self,
        session: Session,
        local: LocalSource,
        cache: MetadataCache | None,
        once: Once,
        *,
        range_suffix: int,
        max_download_size: int = DEFAULT_MAX_DOWNLOAD,
    ) -> None:
        self.session, self.local, self.cache, self.once = session, local, cache, once
        self.ranges = RangeReader(session, range_suffix)
        self.max_download_size = max_download_size
        self._caps: dict[str, _IndexCaps] = {}
        self._reading: asyncio.Semaphore | None = None  # see _files

    @property
    def _files(self) -> asyncio.Semaphore:
        """Files whose metadata is being read (all their requests): a range read holds the
        zip's tail between requests, so files must not pile up waiting for their next one."""
        if self._reading is None:
            import asyncio

            self._reading = asyncio.Semaphore(self.session.slots_total)
        return self._reading

    async def metadata(
        self, index_url: str, file: IndexFile, expected_hashes: Mapping[str, str] | None
    ) -> CoreMetadata:
        """Core metadata of ``file`` (listed on ``index_url``, without credentials).

        ``expected_hashes`` (e.g. from the lock) are checked against the index's hashes and
        against downloaded bytes. Raises :class:`MetadataUnavailable` for sdists whose
        dependencies are dynamic, :class:`HashMismatch`, :class:`IndexRequestError`."""
        hashes, served, proved = self._keys(index_url, file, expected_hashes)
        stored = self._stored(served, proved)
        if stored is not None:
            return self._answer(file, served, *stored)
        memo = ("metadata", index_url, served or file.url)
        return await self.once(
            memo, lambda: self._fetch_and_store(index_url, file, hashes, served, proved)
        )

    def cached(
        self, index_url: str, file: IndexFile, expected_hashes: Mapping[str, str] | None
    ) -> Callable[[], CoreMetadata] | None:
        """What :meth:`metadata` would answer from the cache, without a request: a function
        that answers it (returns or raises as :meth:`metadata`, with the same effects: the
        hit counted, a proved entry stored under its served key); None when it would need
        more than the cache. Nothing is counted or stored until that function is called."""
        try:
            _, served, proved = self._keys(index_url, file, expected_hashes)
        except IndexClientError:
            return None  # raised by metadata() before any request
        stored = self._stored(served, proved)
        if stored is None:
            return None
        return lambda: self._answer(file, served, *stored)

    @staticmethod
    def _keys(
        index_url: str, file: IndexFile, expected_hashes: Mapping[str, str] | None
    ) -> tuple[dict[str, str], str | None, str | None]:
        """The file's hashes, and the cache keys of its metadata: what this index served for
        this file, then what the page's PEP 658 hash proves (see lockfix.index.cache), never
        what another index served under the same file hash."""
        try:
            urlsplit(file.url)
        except ValueError as e:  # a link an index page (or the lock) gives
            raise IndexRequestError(f"{file.filename}: invalid URL ({e})", file.url) from None
        hashes = merge_hashes(file, expected_hashes)
        sha256 = hashes.get("sha256")
        served = origin_key(index_url, file.url, sha256) if sha256 else None
        digest = listed_sha256(file)
        proved = pep658_key(digest, file.is_wheel) if digest else None
        return hashes, served, proved

    def _stored(
        self, served: str | None, proved: str | None
    ) -> tuple[CoreMetadata | MetadataUnavailable, bool] | None:
        """The cache's entry under ``served``, else ``proved`` (and whether it is the
        latter); None: neither is stored. Reads only."""
        if self.cache is None:
            return None
        for key in (served, proved):
            cached = self.cache.get(key) if key is not None else None
            if cached is not None:
                return cached, key is proved
        return None

    def _answer(
        self,
        file: IndexFile,
        served: str | None,
        cached: CoreMetadata | MetadataUnavailable,
        by_proof: bool,
    ) -> CoreMetadata:
        """A cache entry as the answer: counted, checked, and (found under the proved key)
        stored under the served key too."""
        self.session.stats.metadata_cache_hits += 1
        if isinstance(cached, MetadataUnavailable):
            raise cached
        _check(cached, file)
        if by_proof and served is not None and self.cache is not None:
            self.cache.put(served, cached)
        return cached

    async def _fetch_and_store(
        self,
        index_url: str,
        file: IndexFile,
        hashes: dict[str, str],
        served: str | None,
        proved: str | None,
    ) -> CoreMetadata:
        try:
            md, by_hash = await self._fetch(index_url, file, hashes)
        except MetadataUnavailable as e:
            if self.cache is not None and served is not None:
                self.cache.put_unavailable(served, str(e))
            raise
        if self.cache is not None:
            if served is not None:
                self.cache.put(served, md)
            if by_hash and proved is not None:
                self.cache.put(proved, md)
        return md

    async def _fetch(
        self, index_url: str, file: IndexFile, hashes: dict[str, str]
    ) -> tuple[CoreMetadata, bool]:
        """The metadata, and whether it is PEP 658 metadata checked against the sha256 the
        page listed for it."""
        project = _project(file)
        if not is_remote(file.url):
            import asyncio

            md = await asyncio.to_thread(self.local.metadata, file, hashes, project)
            return md, False
        if self.session.offline:
            raise OfflineCacheMiss(
                f"offline: metadata of {file.filename} is not in the cache", file.url
            )
        index_key = split_credentials(index_url)[0]
        caps = self._caps.setdefault(index_key, _IndexCaps())
        if file.core_metadata and caps.pep658:
            md = await self.once(_pep658_memo(index_key, file), lambda: self._pep658(file, caps))
            if md is not None:
                return _check(md, file), listed_sha256(file) is not None
        async with self._files:
            if file.is_wheel and self.ranges.usable(file.url):
                whole = lambda response: self._consume(response, file, hashes)  # noqa: E731
                ranged = await self.ranges.metadata(file, project, whole)
                if ranged is not None:
                    return _check(ranged, file), False
            return _check(await self._download(file, hashes), file), False

    async def _pep658_bytes(self, url: str, caps: _IndexCaps) -> bytes | None:
        """One attempt at a ``.metadata`` file; None: not there (or unusable)."""
        async with self.session.slots:
            if not caps.pep658:  # disabled by another file while this one waited
                return None
            try:
                headers = {"Accept-Encoding": "gzip, identity"}
                response = await self.session.open(url, headers, kind="metadata_pep658")
            except MalformedResponse:
                # e.g. a body longer than its Content-Length: as unusable as a wrong hash
                return None
            try:
                if response.status_code in NOT_FOUND:
                    return None
                raise_for_status(response.status_code, response.headers, "PEP 658 metadata", url)
                return await response.read(MAX_METADATA_SIZE)
            finally:
                await response.aclose()

    async def _pep658(self, file: IndexFile, caps: _IndexCaps) -> CoreMetadata | None:
        """The PEP 658 metadata of ``file``; None (and PEP 658 given up on this index) when
        it is missing, too large, fails its listed hash or does not parse."""
        url = file.metadata_url
        try:
            data = await self.session.with_retries(
                url, f"metadata of {file.filename}", lambda: self._pep658_bytes(url, caps)
            )
        except TooLarge:
            data = None
        if data is None:
            if caps.pep658:
                log.info(
                    "PEP 658 metadata unavailable at %s; not trying it again on this index",
                    redact(url),
                )
                caps.pep658 = False
            return None
        if isinstance(file.core_metadata, Mapping):
            fed = hashers(file.core_metadata)
            for h in fed.values():
                h.update(data)
            try:
                verify(url, file.core_metadata, fed)
            except HashMismatch as e:
                log.warning("%s; falling back, not using PEP 658 on this index again", e)
                caps.pep658 = False
                return None
        try:
            md = parse_core_metadata(data)
        except MetadataError:
            caps.pep658 = False
            return None
        return md if file.is_wheel else check_sdist_metadata(md)

    async def _download(self, file: IndexFile, hashes: Mapping[str, str]) -> CoreMetadata:
        async def attempt() -> CoreMetadata:
            async with self.session.slots:
                response = await self.session.open(
                    file.url, {"Accept-Encoding": "identity"}, kind="full_download"
                )
                try:
                    raise_for_status(response.status_code, response.headers, "download", file.url)
                    return await self._consume(response, file, hashes)
                finally:
                    await response.aclose()

        return await self.session.with_retries(file.url, f"download of {file.filename}", attempt)

    async def _consume(
        self, response: Response, file: IndexFile, hashes: Mapping[str, str]
    ) -> CoreMetadata:
        """Stream a whole file to a spooled temp file, verify hashes, read its metadata."""
        limit = self.max_download_size
        length = response.headers.get("content-length")
        if length and length.isdigit() and int(length) > limit:
            raise IndexRequestError(
                f"{file.filename} is {length} bytes, over the download limit of {limit}", file.url
            )
        fed = hashers(hashes)
        import tempfile  # only where a whole file is downloaded

        with tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY) as spool:
            size = 0
            async for chunk in response.chunks():
                size += len(chunk)
                if size > limit:
                    raise IndexRequestError(
                        f"{file.filename} exceeds the download limit of {limit} bytes", file.url
                    )
                for h in fed.values():
                    h.update(chunk)
                spool.write(chunk)
            verify(file.url, hashes, fed)
            spool.seek(0)
            import asyncio

            return await asyncio.to_thread(
                parse_archive, spool, file.filename, _project(file), file.url
            )
