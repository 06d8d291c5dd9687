"""Index pages from remote indexes, through the on-disk page cache.

:class:`PagePolicy` is the cache policy alone (no I/O): how long a response stays fresh,
when a stored page answers without a request, what a revalidation sends. :class:`PageSource`
applies it: it reads and writes :class:`lockfix.index.cache.PageCache` and fetches through
the :class:`lockfix.index.session.Session`.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping
from typing import Final

from lockfix.dist.simple import SIMPLE_ACCEPT, ProjectPage, parse_page
from lockfix.errors import IndexRequestError, ProjectNotFound
from lockfix.index.cache import CachedPage, PageCache
from lockfix.index.local import project_page_url
from lockfix.index.session import NOT_FOUND, Response, Session, TooLarge, raise_for_status

MAX_PAGE_SIZE = 128 * 1024 * 1024
_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d+)", re.IGNORECASE)


def page_freshness(headers: Mapping[str, str], default: float) -> float | None:
    """Seconds a page response stays fresh in a private cache; None: do not store it."""
    cc = headers.get("cache-control", "")
    directives = {d.split("=", 1)[0].strip().lower() for d in cc.split(",")}
    if "no-store" in directives:
        return None
    if "no-cache" in directives:
        return 0.0
    age = headers.get("age", "").strip()
    used = float(age) if age.isdigit() else 0.0
    m = _MAX_AGE.search(cc)
    if m:
        return max(0.0, float(m.group(1)) - used)
    expires = headers.get("expires")
    if expires:
        import email.utils  # only for a page that sets no max-age

        try:
            until = email.utils.parsedate_to_datetime(expires).timestamp()
        except (TypeError, ValueError, IndexError):
            return 0.0  # invalid Expires means already expired (RFC 9111 §5.3)
        date = headers.get("date")
        try:
            now = email.utils.parsedate_to_datetime(date).timestamp() if date else time.time()
        except (TypeError, ValueError, IndexError):
            now = time.time()
        return max(0.0, until - now)
    return default


class PagePolicy:
    """When a stored page may answer, for how long, and how it is revalidated.

    ``ttl`` (``LOCKFIX_PAGE_TTL``) is the freshness of a response that says nothing about
    it; 0 revalidates every page. Offline, any stored page answers, and for no time at all
    beyond this run."""

    __slots__ = ("offline", "ttl")
    ttl: Final[float]
    offline: Final[bool]

    def __init__(self, ttl: float, offline: bool = False) -> None:
        self.ttl = ttl
        self.offline = offline

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PagePolicy):
            return NotImplemented
        return self.ttl == other.ttl and self.offline == other.offline

    def __hash__(self) -> int:
        return hash((self.ttl, self.offline))

    def __repr__(self) -> str:
        return f"PagePolicy(ttl={self.ttl!r}, offline={self.offline!r})"

    def answers(self, fetched_at: float, max_age: float, now: float) -> bool:
        """Whether a stored page answers without a request."""
        return self.offline or (self.ttl > 0 and 0 <= now - fetched_at < max_age)

    def fresh_until(self, fetched_at: float, max_age: float) -> float:
        """Until when a page answered from the store may be relied on (0: this run only)."""
        return 0 if self.offline else fetched_at + max_age

    def freshness(self, headers: Mapping[str, str]) -> float | None:
        """Seconds a fetched page stays fresh; None: not to be stored."""
        return page_freshness(headers, self.ttl)

    @staticmethod
    def revalidation(entry: CachedPage | None) -> dict[str, str]:
        """The conditional headers that ask whether ``entry`` is still current."""
        headers = {}
        if entry is not None:
            if entry.etag:
                headers["If-None-Match"] = entry.etag
            if entry.last_modified:
                headers["If-Modified-Since"] = entry.last_modified
        return headers


class PageSource:
    """Project pages and flat pages of remote indexes; tracks until when every page this
    run relied on stays fresh (:attr:`fresh_until`) and which stored copy answered
    (:attr:`served_stamps`)."""

    def __init__(self, session: Session, pages: PageCache | None, policy: PagePolicy) -> None:
        self.session, self.pages, self.policy = session, pages, policy
        self.fresh_until = math.inf  # 0: something was not cacheable
        self.served_stamps: dict[str, str] = {}  # URL → PageCache stamp of what answered

    def relied_on(self, until: float) -> None:
        self.fresh_until = min(self.fresh_until, until)

    async def project_page(self, index_url: str, name: str) -> ProjectPage:
        url = project_page_url(index_url, name)
        data, ctype, final_url = await self.fetch(
            url, SIMPLE_ACCEPT, "project page", f"project page of {name!r}", name
        )
        return parse_page(data, ctype, final_url, name)

    async def flat_page(self, url: str) -> tuple[bytes, str | None, str]:
        return await self.fetch(url, "text/html", "flat index page", "flat index page")

    def preload(self, urls: list[str]) -> None:
        """Prepare :meth:`stamp` of these URLs (one read of what is known of them)."""
        if self.pages is not None:
            self.pages.preload(urls)

    def stamp(self, url: str) -> tuple[str, float] | None:
        """(stamp, fresh until) of the stored page that would answer ``url`` without a
        request, or None."""
        found = self.pages.stamp(url) if self.pages is not None else None
        if found is None:
            return None
        stamp, fetched_at, max_age = found
        if not self.policy.answers(fetched_at, max_age, time.time()):
            return None
        return stamp, self.policy.fresh_until(fetched_at, max_age)

    def stored(self, url: str) -> CachedPage | None:
        """The stored page that answers ``url`` without a request (:meth:`fetch` then
        answers from it), or None. Reads only: :meth:`answer_stored` takes the answer."""
        entry = self.pages.get(url) if self.pages is not None else None
        return entry if self._answers(entry) else None

    def _answers(self, entry: CachedPage | None) -> bool:
        return entry is not None and self.policy.answers(
            entry.fetched_at, entry.max_age, time.time()
        )

    def answer_stored(self, url: str, entry: CachedPage) -> tuple[bytes, str | None, str]:
        """(body, content type, URL after redirects) of a stored page that answers ``url``
        without a request, counted and relied on."""
        self.session.stats.page_cache_hits += 1
        self.relied_on(self.policy.fresh_until(entry.fetched_at, entry.max_age))
        if entry.stamp is not None:
            self.served_stamps[url] = entry.stamp
        return entry.body, entry.content_type, entry.final_url

    def _served(self, url: str, stamp: str | None) -> None:
        if stamp is None:
            self.served_stamps.pop(url, None)
        else:
            self.served_stamps[url] = stamp

    async def fetch(
        self, url: str, accept: str, what: str, action: str, project: str | None = None
    ) -> tuple[bytes, str | None, str]:
        """(body, content type, URL after redirects) of an index page, through the page cache.

        A stored page the policy lets answer does so without a request; otherwise one is
        sent, conditional on the stored copy's validators, and a 304 reuses its body."""
        entry = self.pages.get(url) if self.pages is not None else None
        if entry is not None and self._answers(entry):
            return self.answer_stored(url, entry)
        headers = {"Accept": accept, **self.policy.revalidation(entry)}

        async def attempt() -> tuple[bytes, str | None, str]:
            async with self.session.slots:
                response = await self.session.open(url, headers, kind="page")
                try:
                    if response.status_code == 304 and entry is not None:
                        return self._revalidated(url, entry, response)
                    if project is not None and response.status_code in NOT_FOUND:
                        raise ProjectNotFound(project, url, response.status_code)
                    raise_for_status(response.status_code, response.headers, what, url)
                    data = await response.read(MAX_PAGE_SIZE)
                finally:
                    await response.aclose()
            return self._fetched(url, data, response)

        try:
            return await self.session.with_retries(url, action, attempt)
        except TooLarge as e:
            raise IndexRequestError(f"{what} too large ({e})", url) from None

    def _revalidated(
        self, url: str, entry: CachedPage, response: Response
    ) -> tuple[bytes, str | None, str]:
        self.session.stats.page_revalidated += 1
        max_age = page_freshness(response.headers, entry.max_age)
        if self.pages is not None and max_age is not None:
            entry.fetched_at, entry.max_age = time.time(), max_age
            entry.etag = response.headers.get("etag") or entry.etag
            self._served(url, self.pages.put(entry))
        self.relied_on(time.time() + (max_age or 0))
        return entry.body, entry.content_type, entry.final_url

    def _fetched(self, url: str, data: bytes, response: Response) -> tuple[bytes, str | None, str]:
        ctype, final_url = response.headers.get("content-type"), response.url
        max_age = self.policy.freshness(response.headers)
        self.relied_on(time.time() + (max_age or 0) if self.pages is not None else 0)
        if self.pages is not None and max_age is not None:
            page = CachedPage(
                url=url,
                final_url=final_url,
                content_type=ctype,
                body=data,
                fetched_at=time.time(),
                max_age=max_age,
                etag=response.headers.get("etag"),
                last_modified=response.headers.get("last-modified"),
            )
            self._served(url, self.pages.put(page))
        return data, ctype, final_url
