"""The index client of a run: project pages and core metadata of files, from remote
indexes (over one :class:`lockfix.index.session.Session`) and from folders on disk.

:class:`IndexClient` only routes; each job has its own module: ``session`` (the HTTP
session: offline mode, redirects and credentials, proxies, timeouts, retries), ``pages``
(index pages and their cache policy), ``metadata_chain`` (PEP 658, then range reads, then
the whole file), ``local`` (indexes on disk), ``cache`` (what is stored between runs).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from lockfix.dist.metadata import CoreMetadata, MetadataUnavailable
from lockfix.dist.simple import IndexFile, ProjectPage, parse_page
from lockfix.errors import (
    FileUnavailable,
    HashMismatch,
    IndexAuthError,
    IndexClientError,
    IndexRequestError,
    OfflineCacheMiss,
    ProjectNotFound,
)
from lockfix.index.auth import CredentialProvider
from lockfix.index.cache import MetadataCache
from lockfix.index.local import LocalSource, is_remote, looks_flat, project_page_url
from lockfix.index.metadata_chain import DEFAULT_MAX_DOWNLOAD, MetadataChain
from lockfix.index.pages import PagePolicy, PageSource
from lockfix.index.ranges import DEFAULT_RANGE_SUFFIX
from lockfix.index.session import RequestStats, Session, TLSSettingsError, env_number
from lockfix.settings import page_ttl

if TYPE_CHECKING:
    import asyncio

__all__ = [
    "CredentialProvider",
    "FileUnavailable",
    "HashMismatch",
    "IndexAuthError",
    "IndexClient",
    "IndexClientError",
    "IndexRequestError",
    "MetadataCache",
    "MetadataUnavailable",
    "OfflineCacheMiss",
    "ProjectNotFound",
    "RequestStats",
    "TLSSettingsError",
]

T = TypeVar("T")


class Memo:
    """Work of the run by key, in flight or done: asked for twice, done once."""

    def __init__(self) -> None:
        self.futures: dict[tuple[Any, ...], asyncio.Future[Any]] = {}
        self.done: dict[tuple[Any, ...], Any] = {}  # answered from the caches, no work

    async def once(self, key: tuple[Any, ...], factory: Callable[[], Awaitable[T]]) -> T:
        if key in self.done:
            return self.done[key]
        import asyncio

        fut = self.futures.get(key)
        if fut is None:
            fut = asyncio.ensure_future(factory())
            self.futures[key] = fut
        return await asyncio.shield(fut)

    async def cancel(self) -> None:
        """Cancel and await the work still in flight (a run interrupted by Ctrl-C, or given
        up after an error): otherwise it fails on a closed session and asyncio prints "Task
        exception was never retrieved". Work started meanwhile (by siblings of a failed
        task) is cancelled too: repeat until nothing is left running."""
        import asyncio

        while pending := [f for f in self.futures.values() if not f.done()]:
            for future in pending:
                future.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        for future in self.futures.values():
            if not future.cancelled():
                future.exception()  # retrieved: failures were reported where awaited


class IndexClient:
    """One per run. Use as ``async with IndexClient(...) as client:``."""

    def __init__(
        self,
        *,
        cache: MetadataCache | None = None,
        concurrency: int | None = None,
        timeout: float | None = None,
        retries: int | None = None,
        offline: bool = False,
        credentials: CredentialProvider | None = None,
        base_dir: Path | None = None,
        max_download_size: int = DEFAULT_MAX_DOWNLOAD,
        range_suffix: int = DEFAULT_RANGE_SUFFIX,
        retry_wait: float = 0.5,
    ) -> None:
        self.cache = cache
        self.concurrency = int(concurrency or env_number("UV_CONCURRENT_DOWNLOADS", int, 50))
        self.timeout = float(
            timeout if timeout is not None else env_number("UV_HTTP_TIMEOUT", float, 30.0)
        )
        self.retries = int(
            retries if retries is not None else env_number("UV_HTTP_RETRIES", int, 3)
        )
        self.offline = offline
        self.credentials = credentials if credentials is not None else CredentialProvider()
        self.stats = RequestStats()
        self.memo = Memo()
        self.session = Session(
            stats=self.stats,
            credentials=self.credentials,
            offline=offline,
            timeout=self.timeout,
            retries=self.retries,
            retry_wait=retry_wait,
            slots=self.concurrency,
            connections=self.concurrency * 2,
        )
        self.pages = PageSource(
            self.session,
            cache.pages if cache is not None else None,
            PagePolicy(ttl=page_ttl(), offline=offline),
        )
        self.local = LocalSource(base_dir, self.stats)
        self._simple_roots: dict[str, str | None] = {}  # see _simple_root
        self.metadata = MetadataChain(
            self.session,
            self.local,
            cache,
            self.memo.once,
            range_suffix=range_suffix,
            max_download_size=max_download_size,
        )

    # what the run relies on: until when every index page used stays fresh (a verdict on
    # the lock can be reused until then; 0 = something was not cacheable)

    @property
    def fresh_until(self) -> float:
        return self.pages.fresh_until

    @fresh_until.setter
    def fresh_until(self, when: float) -> None:
        self.pages.fresh_until = when

    @property
    def served_stamps(self) -> dict[str, str]:
        return self.pages.served_stamps

    # lifecycle: the session is built by the first request; a run answered from the
    # caches never needs it

    async def __aenter__(self) -> IndexClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.memo.cancel()
        await self.session.aclose()
        self.close()

    def close(self) -> None:
        """Release the caches: all a run that sent no request needs (:meth:`aclose` also
        ends the network side); safe to call twice."""
        if self.cache is not None:
            self.cache.close()

    # project pages

    async def project_page(self, index_url: str, name: str, *, flat: bool = False) -> ProjectPage:
        """The files of project ``name`` on an index (``flat=True`` for find-links pages;
        URLs ending in ``.html`` are always treated as flat).

        ``index_url`` may be http(s), ``file://``, or a local directory path (relative paths are
        resolved against ``base_dir``)."""
        if not is_remote(index_url):
            self.pages.relied_on(0)  # a folder can change at any time
            import asyncio

            return await self.memo.once(
                ("local-page", index_url, name, flat),
                lambda: asyncio.to_thread(self.local.page, index_url, name, flat),
            )
        clean = self.credentials.register_index(index_url)
        if flat or looks_flat(clean):
            data, ctype, final_url = await self.memo.once(
                ("flat", clean), lambda: self.pages.flat_page(clean)
            )
            page = parse_page(data, ctype, final_url, name, flat=True)
            if not page.files:
                raise ProjectNotFound(name, clean)
            return page
        return await self.memo.once(
            ("page", clean, name), lambda: self.pages.project_page(clean, name)
        )

    def cached_page(
        self, index_url: str, name: str, *, flat: bool = False
    ) -> tuple[ProjectPage, Callable[[], None]] | None:
        """The page :meth:`project_page` would answer from the page cache without a request,
        and the function to call to rely on it: it counts and records the page as
        :meth:`project_page` does (which then answers it again, as it answers a page twice).
        Nothing is recorded until then. None: the page needs a request, or is on a flat
        or local index."""
        root = self._simple_root(index_url)
        if root is None or flat:
            return None
        key = ("page", root, name)
        if key in self.memo.done:
            return self.memo.done[key], lambda: None
        url = project_page_url(root, name)
        entry = self.pages.stored(url)
        if entry is None:
            return None
        try:
            page = parse_page(entry.body, entry.content_type, entry.final_url, name)
        except IndexClientError:
            return None  # raised by project_page, which records the page first

        def take() -> None:
            self.pages.answer_stored(url, entry)
            self.memo.done[key] = page

        return page, take

    def _simple_root(self, index_url: str) -> str | None:
        """The index URL without credentials, when it is a remote Simple API root (not a
        local or flat index); None otherwise. Known once per URL that carries no
        credentials (for those, registering the index again changes nothing)."""
        if index_url in self._simple_roots:
            return self._simple_roots[index_url]
        root = None
        if is_remote(index_url):
            clean = self.credentials.register_index(index_url)
            root = None if looks_flat(clean) else clean
            if clean != index_url:
                return root  # credentials registered: each call registers them as before
        self._simple_roots[index_url] = root
        return root

    def preload_page_stamps(self, pages: list[tuple[str, str, bool]]) -> None:
        """Prepare :meth:`page_stamp` of these (index URL, name, flat) pages at once."""
        urls = []
        for index_url, name, flat in pages:
            root = self._simple_root(index_url)
            if root is not None and not flat:
                urls.append(project_page_url(root, name))
        self.pages.preload(urls)

    def page_stamp(
        self, index_url: str, name: str, *, flat: bool = False
    ) -> tuple[str, float] | None:
        """(stamp, fresh until) of the cached project page that :meth:`project_page` would
        answer from without a request (:meth:`lockfix.index.cache.PageCache.stamp`), or None: no
        such entry, a flat or local index, or no cache. Whoever relies on the page without
        reading it calls :meth:`reuse_page`."""
        root = self._simple_root(index_url)
        if root is None or flat:
            return None
        return self.pages.stamp(project_page_url(root, name))

    def served_stamp(self, index_url: str, name: str) -> str | None:
        """The stamp of the stored copy of the project page :meth:`project_page` answered
        from in this run, None if it was not stored (no cache, a flat or local index)."""
        if not is_remote(index_url):
            return None
        clean = self.credentials.register_index(index_url)
        return self.pages.served_stamps.get(project_page_url(clean, name))

    def reuse_page(self, fresh_until: float) -> None:
        """Count a cached page used by its :meth:`page_stamp` as :meth:`project_page` would."""
        self.stats.page_cache_hits += 1
        self.pages.relied_on(fresh_until)

    # metadata

    async def file_metadata(
        self, index_url: str, file: IndexFile, expected_hashes: Mapping[str, str] | None = None
    ) -> CoreMetadata:
        """Core metadata of ``file`` (listed on ``index_url``): see
        :meth:`lockfix.index.metadata_chain.MetadataChain.metadata`."""
        if is_remote(index_url):
            # The page may never have been fetched (file known only from the lock).
            index_url = self.credentials.register_index(index_url)
        return await self.metadata.metadata(index_url, file, expected_hashes)

    def cached_metadata(
        self, index_url: str, file: IndexFile, expected_hashes: Mapping[str, str] | None = None
    ) -> Callable[[], CoreMetadata] | None:
        """What :meth:`file_metadata` would answer from the metadata cache without a
        request, as a function that answers it (see
        :meth:`lockfix.index.metadata_chain.MetadataChain.cached`); None: it needs more, or
        ``index_url`` is local."""
        if not is_remote(index_url):
            return None
        index_url = self.credentials.register_index(index_url)
        return self.metadata.cached(index_url, file, expected_hashes)
