"""Async client for PEP 503/691 indexes: project pages and core metadata of files.

Metadata is fetched the cheapest way that works, remembering per index/host what failed:
PEP 658 ``.metadata`` sidecar → HTTP range reads of the wheel's zip → whole download.
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import logging
import math
import os
import random
import re
import ssl
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar
from urllib.parse import urljoin, urlsplit

import httpx
import stamina

from lockfix import __version__
from lockfix.dist import _zip
from lockfix.dist.metadata import (
    MAX_METADATA_SIZE,
    CoreMetadata,
    MetadataError,
    MetadataUnavailable,
    check_matches_file,
    check_sdist_metadata,
    metadata_from_archive,
    parse_core_metadata,
)
from lockfix.dist.simple import SIMPLE_ACCEPT, IndexFile, ProjectPage, parse_page, parse_simple_html
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
from lockfix.index.cache import CachedPage, MetadataCache, origin_key, pep658_key
from lockfix.index.local import (
    is_remote,
    local_files,
    local_index_path,
    looks_flat,
    path_to_url,
    project_page_url,
    simple_candidates,
)
from lockfix.settings import page_ttl
from lockfix.urls import origin, redact, split_credentials

__all__ = [
    "FileUnavailable",
    "HashMismatch",
    "IndexAuthError",
    "IndexClient",
    "IndexClientError",
    "IndexRequestError",
    "OfflineCacheMiss",
    "ProjectNotFound",
    "RequestStats",
]

log = logging.getLogger(__name__)
if TYPE_CHECKING:
    from lockfix.index._wire import AiohttpTransport, WireResponse

T = TypeVar("T")
# stamina's default hook logs "stamina.retry_scheduled" at WARNING, which reaches stderr
# through logging's last-resort handler on every retry; a retry is not worth a line.
stamina.instrumentation.set_on_retry_hooks([])

MAX_PAGE_SIZE = 128 * 1024 * 1024
MAX_CENTRAL_DIRECTORY = 64 * 1024 * 1024
DEFAULT_MAX_DOWNLOAD = 2 * 1024**3
DEFAULT_RANGE_SUFFIX = 64 * 1024
MAX_RETRY_AFTER = 60.0
MAX_RETRY_WAIT = 30.0  # longest backoff between two attempts
MAX_REDIRECTS = 10
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_NOT_FOUND = frozenset({403, 404, 410})
_SPOOL_IN_MEMORY = 1024 * 1024  # per download in flight; the rest goes to a temp file
# An already-encoded URL without userinfo: sent as it is by the lean path (IndexClient._open).
_PLAIN_URL = re.compile(
    r"https?://[A-Za-z0-9\-._~:\[\]]+(?:[/?][A-Za-z0-9\-._~:/?#\[\]!$&'()*+,;=%]*)?\Z"
)
_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d+)", re.IGNORECASE)
# UV_HTTP_TIMEOUT bounds the wait for each read, as in uv. Each attempt also has a deadline,
# so that a server trickling a byte at a time cannot hold a request for ever: the response
# must begin within UV_HTTP_TIMEOUT, and its body then extends that by a second for every
# MIN_BODY_RATE bytes received. A steady download at that rate or faster never hits it.
MIN_BODY_RATE = 8 * 1024  # bytes per second


class DeadlineExceeded(httpx.ReadTimeout):
    """An attempt ran past its deadline (see MIN_BODY_RATE) while its reads kept coming."""


class _Deadline:
    """The deadline of one attempt: armed when its first request is sent (not while it
    waits for a connection slot), pushed back as body bytes arrive; when it passes, the
    attempt's task is cancelled and :meth:`IndexClient._attempt` raises DeadlineExceeded."""

    __slots__ = (
        "armed",
        "fired",
        "handle",
        "host",
        "loop",
        "me",
        "received",
        "start",
        "task",
        "timeout",
    )

    def __init__(self, timeout: float, host: _Host, me: object) -> None:
        self.timeout = timeout
        self.host, self.me = host, me  # whose attempt this is
        self.received = 0
        self.armed = self.fired = False
        self.handle: asyncio.TimerHandle | None = None
        self.task: asyncio.Task[Any] | None = None
        self.start = 0.0

    def arm(self) -> None:
        self.armed = True
        if not math.isfinite(self.timeout):
            return
        self.loop = asyncio.get_running_loop()
        self.task = asyncio.current_task()
        self.start = self.loop.time()
        self.handle = self.loop.call_at(self.start + self.timeout, self._check)

    def _check(self) -> None:
        when = self.start + self.timeout + self.received / MIN_BODY_RATE
        if self.loop.time() < when:
            self.handle = self.loop.call_at(when, self._check)
            return
        self.fired = True
        assert self.task is not None
        self.task.cancel()

    def disarm(self) -> None:
        if self.handle is not None:
            self.handle.cancel()


_DEADLINE: ContextVar[_Deadline | None] = ContextVar("lockfix_deadline", default=None)


def _received(size: int) -> None:
    deadline = _DEADLINE.get()
    if deadline is not None:
        deadline.received += size


# Failures that say nothing answered at that host: one request's retry budget decides for
# all of its requests (see IndexClient._with_retries).
_HOST_FAILURES = (httpx.ConnectError, httpx.TimeoutException)


@dataclass(slots=True)
class _Host:
    """What this run knows about one origin's health."""

    down: str | None = None  # why it was given up on: its requests then fail at once
    prober: object | None = None  # the request retrying it after a failure; others wait
    probed: asyncio.Event | None = None  # set when that request's retries end
    answers: int = 0  # attempts the host answered (any status)
    answers_then: int = 0  # ``answers`` when the probe began


@dataclass
class RequestStats:
    """Network requests by kind (retries included), and what the caches answered."""

    page: int = 0
    metadata_pep658: int = 0
    range: int = 0
    full_download: int = 0
    retries: int = 0
    page_cache_hits: int = 0  # page served from the HTTP cache without any request
    page_revalidated: int = 0  # page requests answered 304 (counted in `page` too)
    metadata_cache_hits: int = 0
    ranges_ignored: int = 0  # range requests answered with the whole file (200)
    local: int = 0  # file:// / directory reads, no network
    host_down: int = 0  # requests not sent: their host had failed a whole retry budget

    @property
    def requests(self) -> int:
        return self.page + self.metadata_pep658 + self.range + self.full_download

    @property
    def metadata_requests(self) -> int:
        return self.metadata_pep658 + self.range + self.full_download

    def as_dict(self) -> dict[str, int]:
        return {**asdict(self), "requests": self.requests}

    def add(self, counts: Mapping[str, int]) -> None:
        """Add another client's :meth:`as_dict` (a :mod:`lockfix._shard` worker's)."""
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + int(counts.get(name, 0)))


@dataclass
class _IndexCaps:
    pep658: bool = True


class _RetryableStatus(Exception):
    def __init__(self, status: int, url: str, retry_after: float | None) -> None:
        super().__init__(f"HTTP {status}")
        self.status, self.url, self.retry_after = status, url, retry_after


class _TooLarge(Exception):
    pass


class _HostDown(Exception):
    """The request's host already failed a whole retry budget in this run."""


class _Probing(Exception):
    """Another request is finding out whether the request's host answers at all."""


def _uncancel(task: asyncio.Task[Any] | None) -> bool:
    """Take back a cancel this module requested; False if another one is pending too."""
    uncancel = getattr(task, "uncancel", None)  # Python 3.11+
    return uncancel is None or uncancel() == 0


class _Offline(Exception):
    """Raised by the transport when a request would need the network in offline mode."""


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _env_number(name: str, kind: type[float] | type[int], default: float) -> float:
    raw = os.environ.get(name)
    if raw:
        try:
            return kind(raw)
        except ValueError:
            log.warning("ignoring invalid %s=%r", name, raw)
    return default


# --- transport plumbing ---------------------------------------------------------------


class _NetworkTransport(httpx.AsyncBaseTransport):
    """Refuses every request in offline mode; builds the real transport on first use, so a
    run answered from the caches never imports the wire."""

    def __init__(self, make: Callable[[], httpx.AsyncBaseTransport], offline: bool) -> None:
        self.make, self.offline = make, offline
        self.inner: httpx.AsyncBaseTransport | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.offline:
            raise _Offline(str(request.url))
        if self.inner is None:
            self.inner = self.make()
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        if self.inner is not None:
            await self.inner.aclose()


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


class _AsyncClient(httpx.AsyncClient):
    """httpx client whose transports (incl. env proxy mounts) go over aiohttp (`_wire`),
    each wrapped for offline mode. SOCKS proxies, which aiohttp lacks, keep httpx's own."""

    def __init__(self, *, offline: bool, **kwargs: Any) -> None:
        self._offline = offline
        super().__init__(**kwargs)

    def _init_transport(
        self,
        verify: Any = True,
        cert: Any = None,
        trust_env: bool = True,
        http1: bool = True,
        http2: bool = False,
        limits: httpx.Limits = httpx.Limits(),  # noqa: B008
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> httpx.AsyncBaseTransport:
        if transport is not None:
            return _NetworkTransport(lambda: transport, self._offline)
        return self._wire(verify, limits)

    def _init_proxy_transport(
        self,
        proxy: httpx.Proxy,
        verify: Any = True,
        cert: Any = None,
        trust_env: bool = True,
        http1: bool = True,
        http2: bool = False,
        limits: httpx.Limits = httpx.Limits(),  # noqa: B008
    ) -> httpx.AsyncBaseTransport:
        if proxy.url.scheme not in ("http", "https"):
            fallback = super()._init_proxy_transport(
                proxy, verify, cert, trust_env, http1, http2, limits
            )
            return _NetworkTransport(lambda: fallback, self._offline)
        return self._wire(verify, limits, proxy)

    def _wire(
        self, verify: Any, limits: httpx.Limits, proxy: httpx.Proxy | None = None
    ) -> httpx.AsyncBaseTransport:
        def make() -> httpx.AsyncBaseTransport:  # aiohttp is imported on the first request
            from lockfix.index._wire import AiohttpTransport

            return AiohttpTransport(ssl_context=verify, limits=limits, proxy=proxy)

        return _NetworkTransport(make, self._offline)


class TLSSettingsError(Exception):
    """SSL_CERT_FILE, SSL_CERT_DIR or SSL_CLIENT_CERT names nothing usable."""


def _ssl_context() -> ssl.SSLContext:
    try:
        ctx = httpx.create_ssl_context(trust_env=True)  # honours SSL_CERT_FILE / SSL_CERT_DIR
    except OSError as e:  # ssl.SSLError included
        named = [
            f"{v}={os.environ[v]}" for v in ("SSL_CERT_FILE", "SSL_CERT_DIR") if v in os.environ
        ]
        where = " or ".join(named) or "the default trust store"
        raise TLSSettingsError(
            f"cannot load certificates from {where}: {e.strerror or e}"
        ) from None
    client_cert = os.environ.get("SSL_CLIENT_CERT")
    if client_cert:
        try:
            ctx.load_cert_chain(client_cert)
        except OSError as e:
            raise TLSSettingsError(f"SSL_CLIENT_CERT={client_cert}: {e.strerror or e}") from None
    return ctx


# --- hashing helpers -------------------------------------------------------------------


def _hashers(hashes: Mapping[str, str]) -> dict[str, Any]:
    out = {}
    for algo in hashes:
        try:
            out[algo] = hashlib.new(algo)
        except (ValueError, TypeError):
            continue
    return out


def _verify(url: str, hashes: Mapping[str, str], hashers: Mapping[str, Any]) -> None:
    for algo, h in hashers.items():
        actual = h.hexdigest()
        if actual != hashes[algo].lower():
            raise HashMismatch(url, algo, hashes[algo].lower(), actual)


def _merge_hashes(file: IndexFile, expected: Mapping[str, str] | None) -> dict[str, str]:
    merged = {k.lower(): v.lower() for k, v in file.hashes.items()}
    for k, v in (expected or {}).items():
        k, v = k.lower(), v.lower()
        if k in merged and merged[k] != v:
            # The index lists a different file under this name than the one expected.
            raise HashMismatch(file.url, k, v, merged[k])
        merged[k] = v
    return merged


# --- the client ------------------------------------------------------------------------


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
        self.concurrency = int(concurrency or _env_number("UV_CONCURRENT_DOWNLOADS", int, 50))
        self.timeout = float(
            timeout if timeout is not None else _env_number("UV_HTTP_TIMEOUT", float, 30.0)
        )
        self.retries = int(
            retries if retries is not None else _env_number("UV_HTTP_RETRIES", int, 3)
        )
        self.offline = offline
        self.credentials = credentials if credentials is not None else CredentialProvider()
        self.base_dir = base_dir
        self.max_download_size = max_download_size
        self.range_suffix = range_suffix
        self.retry_wait = retry_wait
        # for pages whose response says nothing about freshness; 0: revalidate every page
        self.page_ttl = page_ttl()
        # URL → stamp of the cached copy each page was answered from (PageCache.stamp)
        self.served_stamps: dict[str, str] = {}
        self.stats = RequestStats()
        # until when every index page this run relied on stays fresh (a verdict on the lock
        # can be reused until then); 0 = something was not cacheable
        self.fresh_until = math.inf
        self._caps: dict[str, _IndexCaps] = {}
        self._hosts: dict[tuple[str, str, int | None], _Host] = {}
        self._no_ranges: set[tuple[str, str, int | None]] = set()
        self._memo: dict[tuple[Any, ...], asyncio.Future[Any]] = {}
        self._sem = asyncio.Semaphore(self.concurrency)
        # Files whose metadata is being read (all their requests): a range read holds the zip's
        # tail between requests, so files must not pile up waiting for their next request.
        self._files = asyncio.Semaphore(self.concurrency)
        self._http: httpx.AsyncClient | None = None
        self._user_agent = f"lockfix/{__version__} httpx/{httpx.__version__}"
        self._lean: dict[tuple[str, str, int | None], AiohttpTransport | None] = {}

    # lifecycle

    async def __aenter__(self) -> IndexClient:
        # The HTTP client (and its TLS context: ~20 ms to load the CA bundle) is built by
        # the first request; a run answered from the caches never needs it.
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _open_client(self) -> httpx.AsyncClient:
        if self._http is not None:
            return self._http

        self._http = _AsyncClient(
            offline=self.offline,
            verify=_ssl_context(),
            trust_env=True,
            follow_redirects=False,
            timeout=httpx.Timeout(self.timeout, pool=None),
            limits=httpx.Limits(
                max_connections=self.concurrency * 2, max_keepalive_connections=self.concurrency
            ),
            headers={"User-Agent": self._user_agent},
        )
        return self._http

    async def aclose(self) -> None:
        # Work still in flight (a run interrupted by Ctrl-C, or given up after an error)
        # is cancelled and awaited before the client closes: otherwise those tasks fail on
        # the closed client and asyncio prints "Task exception was never retrieved".
        # Tasks outside the memo (siblings of a failed one) may still start new work while
        # this waits: repeat until nothing is left running.
        while pending := [f for f in self._memo.values() if not f.done()]:
            for future in pending:
                future.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        for future in self._memo.values():
            if not future.cancelled():
                future.exception()  # retrieved: failures were reported where awaited
        if self._http is not None:
            await self._http.aclose()
            self._http = None
        if self.cache is not None:
            self.cache.close()

    # memoization of in-flight/finished work within the run

    async def _once(self, key: tuple[Any, ...], factory: Callable[[], Awaitable[T]]) -> T:
        fut = self._memo.get(key)
        if fut is None:
            fut = asyncio.ensure_future(factory())
            self._memo[key] = fut
        return await asyncio.shield(fut)

    # low-level HTTP

    def _retry_hook(self, exc: Exception) -> bool | float:
        if isinstance(exc, _RetryableStatus):
            return min(exc.retry_after, MAX_RETRY_AFTER) if exc.retry_after is not None else True
        return isinstance(
            exc, (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
        )

    async def _attempt(self, fn: Callable[[], Awaitable[T]], host: _Host, me: object) -> T:
        """One attempt of a request, under its deadline (armed by :meth:`_open`)."""
        deadline = _Deadline(self.timeout, host, me)
        token = _DEADLINE.set(deadline)
        try:
            return await fn()
        except asyncio.CancelledError:
            if not deadline.fired or not _uncancel(deadline.task):
                raise  # cancelled from outside (Ctrl-C, a failed run): not ours to keep
            raise DeadlineExceeded(
                f"no complete answer within {self.timeout:g} s plus a second per "
                f"{MIN_BODY_RATE // 1024} KiB received"
            ) from None
        finally:
            deadline.disarm()
            _DEADLINE.reset(token)

    async def _host_attempt(self, host: _Host, me: object, fn: Callable[[], Awaitable[T]]) -> T:
        """An attempt, if the host may still be asked.

        One request's retry budget decides for all the requests to a host: when an
        attempt finds nothing answering (refused, unreachable, timed out), that request
        retries on its own while the others wait for its outcome (:meth:`_open` sends
        them back here); once it has used its budget without the host answering anyone,
        the host is down for this run and every request to it fails at once."""
        while True:
            while host.prober is not None and host.prober is not me and host.down is None:
                assert host.probed is not None
                await host.probed.wait()
            if host.down is not None:
                self.stats.host_down += 1
                raise _HostDown(host.down)
            try:
                result = await self._attempt(fn, host, me)
                break
            except _Probing:
                continue  # another request is probing the host: wait for its outcome
            except _HOST_FAILURES:
                if host.prober is None:
                    host.prober, host.probed = me, asyncio.Event()
                    host.answers_then = host.answers
                raise
            except (_HostDown, _Offline):
                raise
            except Exception:
                self._answered(host)
                raise
        self._answered(host)
        return result

    @staticmethod
    def _answered(host: _Host) -> None:
        host.answers += 1
        if host.probed is not None:  # it answers again: the requests waiting go on
            host.probed.set()
            host.prober = host.probed = None

    def _end_probe(self, host: _Host, me: object, error: BaseException | None) -> None:
        """``me``'s retries are over: if it was the one probing a failing host that has
        answered nobody since, the host is down."""
        if host.prober is not me:
            return
        if isinstance(error, _HOST_FAILURES) and host.answers == host.answers_then:
            host.down = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        assert host.probed is not None
        host.probed.set()
        host.prober = host.probed = None

    async def _with_retries(self, url: str, what: str, fn: Callable[[], Awaitable[T]]) -> T:
        host = self._hosts.get(origin(url))
        if host is None:
            host = self._hosts[origin(url)] = _Host()
        me = object()
        failure: BaseException | None = None
        try:
            # The first attempt runs bare: a retry context costs ~50 µs to set up, and
            # thousands of range reads almost never fail.
            try:
                return await self._host_attempt(host, me, fn)
            except Exception as e:
                failure = e
                wait = self._retry_hook(e) if self.retries > 0 else False
                if wait is False:
                    raise
            # stamina's wait before attempt 2 (a Retry-After as given, capped by the hook),
            # then the rest of its schedule
            if wait is True:
                wait = min(MAX_RETRY_WAIT, self.retry_wait + random.uniform(0, self.retry_wait))
            await asyncio.sleep(wait)
            async for attempt in stamina.retry_context(
                on=self._retry_hook,
                attempts=self.retries,
                timeout=None,
                wait_initial=self.retry_wait * 2,
                wait_max=MAX_RETRY_WAIT,
                wait_jitter=self.retry_wait,
            ):
                with attempt:
                    self.stats.retries += 1
                    try:
                        return await self._host_attempt(host, me, fn)
                    except Exception as e:
                        failure = e
                        raise
        except asyncio.CancelledError:
            failure = None  # not a verdict on the host
            raise
        except _HostDown as e:
            origin_text = "{}://{}:{}".format(*origin(url))
            raise IndexRequestError(
                f"{what} not attempted: {origin_text} did not answer ({e})", url
            ) from None
        except _RetryableStatus as e:
            raise IndexRequestError(f"{what} failed", url, e.status) from None
        except _Offline:
            raise OfflineCacheMiss(f"offline: {what} is not in the cache", url) from None
        except httpx.TimeoutException as e:
            raise IndexRequestError(f"{what} timed out ({type(e).__name__})", url) from None
        except httpx.HTTPError as e:
            raise IndexRequestError(f"{what} failed ({type(e).__name__})", url) from None
        except httpx.InvalidURL as e:  # a link an index page gives, not a network error
            raise IndexRequestError(f"{what}: invalid URL ({e})", url) from None
        finally:
            self._end_probe(host, me, failure)
        raise AssertionError("unreachable")  # pragma: no cover

    def _lean_wire(self, url: str) -> AiohttpTransport | None:
        """The aiohttp transport httpx would send ``url`` through (proxies honoured), for a
        request that needs nothing of httpx: an encoded URL without userinfo, not offline."""
        if self.offline or not _PLAIN_URL.match(url):
            return None
        key = origin(url)
        if key not in self._lean:
            from lockfix.index._wire import AiohttpTransport

            # httpx's own choice of transport (mounts, proxies, NO_PROXY); private, hence
            # looked up: without it every request simply goes through httpx
            choose = getattr(self._open_client(), "_transport_for_url", None)
            transport = choose(httpx.URL(url)) if choose is not None else None
            wire = None
            if isinstance(transport, _NetworkTransport):
                if transport.inner is None:
                    transport.inner = transport.make()
                if isinstance(transport.inner, AiohttpTransport):
                    wire = transport.inner
            self._lean[key] = wire
        return self._lean[key]

    async def _open(
        self, url: str, headers: Mapping[str, str], *, kind: str, lean: bool = False
    ) -> httpx.Response | WireResponse:
        """Send a streaming GET, following redirects with per-origin credentials.

        ``lean``: straight over aiohttp where possible (no content decoding: the request must
        ask for ``identity``); a range read then costs less than half the CPU. The caller
        must close the response."""
        http = self._open_client()
        deadline = _DEADLINE.get()
        if deadline is not None and not deadline.armed:  # the attempt's first request
            host = deadline.host
            if host.down is not None:
                self.stats.host_down += 1
                raise _HostDown(host.down)
            if host.prober is not None and host.prober is not deadline.me:
                raise _Probing  # gives back the connection slot it waited for
            deadline.arm()
        current, given = split_credentials(url)
        for _ in range(MAX_REDIRECTS + 1):
            request_headers = dict(headers)
            # Credentials are chosen per hop: an index's credentials never leave its origin.
            # Those a URL carries itself (a file link, a redirect's Location) are sent to
            # that URL only, and as a header: the URL is requested without them.
            creds = given or self.credentials.for_url(current)
            if creds is not None:
                request_headers["Authorization"] = creds.authorization()
            wire = self._lean_wire(current) if lean else None
            response: httpx.Response | WireResponse
            if wire is not None:
                request_headers["User-Agent"] = self._user_agent
                response = await wire.get(current, request_headers, self.timeout)
            else:
                request = http.build_request("GET", current, headers=request_headers)
                response = await http.send(request, stream=True)
            setattr(self.stats, kind, getattr(self.stats, kind) + 1)
            if response.status_code in _REDIRECTS and "location" in response.headers:
                location = response.headers["location"]
                await response.aclose()
                current, given = split_credentials(urljoin(current, location))
                continue
            return response
        raise IndexRequestError("too many redirects", url)

    @staticmethod
    async def _read(response: httpx.Response | WireResponse, limit: int) -> bytes:
        length = response.headers.get("content-length")
        if length and length.isdigit() and int(length) > limit:
            raise _TooLarge(f"{length} bytes")
        chunks, size = [], 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            _received(len(chunk))
            if size > limit:
                raise _TooLarge(f"more than {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    @staticmethod
    def _raise_for_status(response: httpx.Response | WireResponse, what: str, url: str) -> None:
        code = response.status_code
        if code == 429 or code >= 500:
            raise _RetryableStatus(code, url, _retry_after(response.headers.get("retry-after")))
        if code == 401:
            raise IndexAuthError(f"{what}: authentication required or rejected", url, code)
        if code in _NOT_FOUND:
            raise FileUnavailable(f"{what}: not available", url, code)
        if code != 200:
            raise IndexRequestError(f"{what}: unexpected response", url, code)

    # project pages

    async def project_page(self, index_url: str, name: str, *, flat: bool = False) -> ProjectPage:
        """The files of project ``name`` on an index (``flat=True`` for find-links pages;
        URLs ending in ``.html`` are always treated as flat).

        ``index_url`` may be http(s), ``file://``, or a local directory path (relative paths are
        resolved against ``base_dir``)."""
        if not is_remote(index_url):
            return await self._once(
                ("local-page", index_url, name, flat),
                lambda: asyncio.to_thread(self._local_page, index_url, name, flat),
            )
        clean = self.credentials.register_index(index_url)
        if flat or looks_flat(clean):
            data, ctype, final_url = await self._once(
                ("flat", clean), lambda: self._fetch_flat(clean)
            )
            page = parse_page(data, ctype, final_url, name, flat=True)
            if not page.files:
                raise ProjectNotFound(name, clean)
            return page
        return await self._once(("page", clean, name), lambda: self._fetch_page(clean, name))

    def page_stamp(
        self, index_url: str, name: str, *, flat: bool = False
    ) -> tuple[str, float] | None:
        """(stamp, fresh until) of the cached project page that :meth:`project_page` would
        answer from without a request (:meth:`lockfix.index.cache.PageCache.stamp`), or None: no
        such entry, a flat or local index, or no cache. Whoever relies on the page without
        reading it calls :meth:`reuse_page`."""
        if self.cache is None or not is_remote(index_url):
            return None
        clean = self.credentials.register_index(index_url)
        if flat or looks_flat(clean):
            return None
        found = self.cache.pages.stamp(project_page_url(clean, name))
        if found is None:
            return None
        stamp, fetched_at, max_age = found
        if not (self.offline or (self.page_ttl > 0 and 0 <= time.time() - fetched_at < max_age)):
            return None
        return stamp, 0 if self.offline else fetched_at + max_age

    def _served(self, url: str, stamp: str | None) -> None:
        if stamp is None:
            self.served_stamps.pop(url, None)
        else:
            self.served_stamps[url] = stamp

    def served_stamp(self, index_url: str, name: str) -> str | None:
        """The stamp of the stored copy of the project page :meth:`project_page` answered
        from in this run, None if it was not stored (no cache, a flat or local index)."""
        if not is_remote(index_url):
            return None
        clean = self.credentials.register_index(index_url)
        return self.served_stamps.get(project_page_url(clean, name))

    def reuse_page(self, fresh_until: float) -> None:
        """Count a cached page used by its :meth:`page_stamp` as :meth:`project_page` would."""
        self.stats.page_cache_hits += 1
        self._fresh_until(fresh_until)

    async def _fetch_page(self, index_url: str, name: str) -> ProjectPage:
        url = project_page_url(index_url, name)
        data, ctype, final_url = await self._page_bytes(
            url, SIMPLE_ACCEPT, "project page", f"project page of {name!r}", name
        )
        return parse_page(data, ctype, final_url, name)

    async def _fetch_flat(self, url: str) -> tuple[bytes, str | None, str]:
        return await self._page_bytes(url, "text/html", "flat index page", "flat index page")

    async def _page_bytes(
        self, url: str, accept: str, what: str, action: str, project: str | None = None
    ) -> tuple[bytes, str | None, str]:
        """(body, content type, URL after redirects) of an index page, through the page cache.

        A fresh entry (or any entry when offline) answers without a request; a stale one is
        revalidated with its ETag/Last-Modified, and a 304 reuses its body."""
        pages = self.cache.pages if self.cache is not None else None
        entry = pages.get(url) if pages is not None else None
        if entry is not None and (self.offline or (self.page_ttl > 0 and entry.fresh(time.time()))):
            self.stats.page_cache_hits += 1
            self._fresh_until(0 if self.offline else entry.fetched_at + entry.max_age)
            if entry.stamp is not None:
                self.served_stamps[url] = entry.stamp
            return entry.body, entry.content_type, entry.final_url
        headers = {"Accept": accept}
        if entry is not None:
            if entry.etag:
                headers["If-None-Match"] = entry.etag
            if entry.last_modified:
                headers["If-Modified-Since"] = entry.last_modified

        async def attempt() -> tuple[bytes, str | None, str]:
            async with self._sem:
                response = await self._open(url, headers, kind="page")
                try:
                    code = response.status_code
                    if code == 304 and entry is not None:
                        self.stats.page_revalidated += 1
                        max_age = page_freshness(response.headers, entry.max_age)
                        if pages is not None and max_age is not None:
                            entry.fetched_at, entry.max_age = time.time(), max_age
                            entry.etag = response.headers.get("etag") or entry.etag
                            self._served(url, pages.put(entry))
                        self._fresh_until(time.time() + (max_age or 0))
                        return entry.body, entry.content_type, entry.final_url
                    if project is not None and code in _NOT_FOUND:
                        raise ProjectNotFound(project, url, code)
                    self._raise_for_status(response, what, url)
                    data = await self._read(response, MAX_PAGE_SIZE)
                finally:
                    await response.aclose()
            ctype, final_url = response.headers.get("content-type"), str(response.url)
            max_age = page_freshness(response.headers, self.page_ttl)
            self._fresh_until(time.time() + (max_age or 0) if pages is not None else 0)
            if pages is not None and max_age is not None:
                stamp = pages.put(
                    CachedPage(
                        url=url,
                        final_url=final_url,
                        content_type=ctype,
                        body=data,
                        fetched_at=time.time(),
                        max_age=max_age,
                        etag=response.headers.get("etag"),
                        last_modified=response.headers.get("last-modified"),
                    )
                )
                self._served(url, stamp)
            return data, ctype, final_url

        try:
            return await self._with_retries(url, action, attempt)
        except _TooLarge as e:
            raise IndexRequestError(f"{what} too large ({e})", url) from None

    def _fresh_until(self, when: float) -> None:
        self.fresh_until = min(self.fresh_until, when)

    def _local_page(self, index_url: str, name: str, flat: bool) -> ProjectPage:
        self.stats.local += 1
        self._fresh_until(0)  # a folder can change at any time
        path = local_index_path(index_url, self.base_dir)
        if path.is_file():
            page = parse_simple_html(path.read_bytes(), path_to_url(path), name, flat=True)
            if not page.files:
                raise ProjectNotFound(name, page.url)
            return page
        if not path.is_dir():
            raise IndexRequestError("local index not found", str(path))
        if not flat:
            for candidate in simple_candidates(path, name):
                if candidate.is_file():
                    return parse_simple_html(candidate.read_bytes(), path_to_url(candidate), name)
            if any(p.is_file() for p in path.glob("*/index.html")):
                raise ProjectNotFound(name, path_to_url(path))
        if (path / "index.html").is_file():
            page = parse_simple_html(
                (path / "index.html").read_bytes(),
                path_to_url(path / "index.html"),
                name,
                flat=True,
            )
            if not page.files:
                raise ProjectNotFound(name, page.url)
            return page
        page = local_files(path, name, {})
        if not page.files:
            raise ProjectNotFound(name, page.url)
        hashes = {
            f.filename: {"sha256": _sha256_file(Path(local_index_path(f.url, None)))}
            for f in page.files
        }
        return local_files(path, name, hashes)

    # metadata

    async def file_metadata(
        self, index_url: str, file: IndexFile, expected_hashes: Mapping[str, str] | None = None
    ) -> CoreMetadata:
        """Core metadata of ``file`` (listed on ``index_url``).

        ``expected_hashes`` (e.g. from the lock) are checked against the index's hashes and
        against downloaded bytes. Raises :class:`MetadataUnavailable` for sdists whose
        dependencies are dynamic, :class:`HashMismatch`, :class:`IndexRequestError`."""
        try:
            urlsplit(file.url)
        except ValueError as e:  # a link an index page (or the lock) gives
            raise IndexRequestError(f"{file.filename}: invalid URL ({e})", file.url) from None
        hashes = _merge_hashes(file, expected_hashes)
        sha256 = hashes.get("sha256")
        if is_remote(index_url):
            # The page may never have been fetched (file known only from the lock).
            index_url = self.credentials.register_index(index_url)
        # What this index served for this file, then what the page's PEP 658 hash proves
        # (see lockfix.index.cache): never what another index served under the same file hash.
        served = origin_key(index_url, file.url, sha256) if sha256 else None
        digest = _listed_sha256(file)
        proved = pep658_key(digest, file.is_wheel) if digest else None
        if self.cache is not None:
            for key in (served, proved):
                cached = self.cache.get(key) if key is not None else None
                if cached is None:
                    continue
                self.stats.metadata_cache_hits += 1
                if isinstance(cached, MetadataUnavailable):
                    raise cached
                pv = file.project_version
                self._check(cached, file, *(pv if pv is not None else (None, None)))
                if key is proved and served is not None:
                    self.cache.put(served, cached)
                return cached
        memo = ("metadata", index_url, served or file.url)
        return await self._once(
            memo, lambda: self._metadata_and_store(index_url, file, hashes, served, proved)
        )

    async def _metadata_and_store(
        self,
        index_url: str,
        file: IndexFile,
        hashes: dict[str, str],
        served: str | None,
        proved: str | None,
    ) -> CoreMetadata:
        try:
            md, by_hash = await self._fetch_metadata(index_url, file, hashes)
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

    async def _fetch_metadata(
        self, index_url: str, file: IndexFile, hashes: dict[str, str]
    ) -> tuple[CoreMetadata, bool]:
        """The metadata, and whether it is PEP 658 metadata checked against the sha256 the
        page listed for it."""
        pv = file.project_version
        project, version = pv if pv is not None else (None, None)
        if not is_remote(file.url):
            md = await asyncio.to_thread(self._local_metadata, file, hashes, project)
            return md, False
        if self.offline:
            raise OfflineCacheMiss(
                f"offline: metadata of {file.filename} is not in the cache", file.url
            )
        index_key = split_credentials(index_url)[0]
        caps = self._caps.setdefault(index_key, _IndexCaps())
        if file.core_metadata and caps.pep658:
            md = await self._once(
                _pep658_key(index_key, file), lambda: self._metadata_pep658(file, caps)
            )
            if md is not None:
                self._check(md, file, project, version)
                return md, _listed_sha256(file) is not None
        async with self._files:
            return await self._fetch_remote_metadata(file, hashes, project, version), False

    async def _fetch_remote_metadata(
        self,
        file: IndexFile,
        hashes: dict[str, str],
        project: str | None,
        version: str | None,
    ) -> CoreMetadata:
        if file.is_wheel and origin(file.url) not in self._no_ranges:
            md = await self._metadata_by_ranges(file, hashes, project)
            if md is not None:
                self._check(md, file, project, version)
                return md
        md = await self._metadata_by_download(file, hashes, project)
        self._check(md, file, project, version)
        return md

    @staticmethod
    def _check(md: CoreMetadata, file: IndexFile, project: str | None, version: str | None) -> None:
        try:
            check_matches_file(md, project, version)
        except MetadataError as e:
            raise IndexRequestError(f"{file.filename}: {e}", file.url) from None

    async def _metadata_pep658(self, file: IndexFile, caps: _IndexCaps) -> CoreMetadata | None:
        url = file.metadata_url

        async def attempt() -> bytes | None:
            async with self._sem:
                if not caps.pep658:  # disabled by another file while this one waited
                    return None
                try:
                    response = await self._open(
                        url, {"Accept-Encoding": "gzip, identity"}, kind="metadata_pep658"
                    )
                except httpx.RemoteProtocolError as e:
                    from lockfix.index._wire import MalformedResponse

                    if not isinstance(e, MalformedResponse):
                        raise
                    # e.g. a body longer than its Content-Length: as unusable as a wrong hash
                    return None
                try:
                    if response.status_code in _NOT_FOUND:
                        return None
                    self._raise_for_status(response, "PEP 658 metadata", url)
                    return await self._read(response, MAX_METADATA_SIZE)
                finally:
                    await response.aclose()

        try:
            data = await self._with_retries(url, f"metadata of {file.filename}", attempt)
        except _TooLarge:
            data = None
        if data is None:
            if not caps.pep658:
                return None
            log.info(
                "PEP 658 metadata unavailable at %s; not trying it again on this index", redact(url)
            )
            caps.pep658 = False
            return None
        if isinstance(file.core_metadata, Mapping):
            hashers = _hashers(file.core_metadata)
            for h in hashers.values():
                h.update(data)
            try:
                _verify(url, file.core_metadata, hashers)
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

    async def _get_range(self, url: str, start: int, end: int) -> bytes | None:
        """Bytes [start, end) of ``url``, or None if the server doesn't do ranges after all."""

        async def attempt() -> bytes | None:
            async with self._sem:
                headers = {"Range": f"bytes={start}-{end - 1}", "Accept-Encoding": "identity"}
                response = await self._open(url, headers, kind="range", lean=True)
                try:
                    if (
                        response.status_code != 206
                        or response.headers.get("content-encoding", "identity") != "identity"
                    ):
                        if response.status_code != 200:
                            self._raise_for_status(response, "range request", url)
                        return None
                    m = _CONTENT_RANGE.match(response.headers.get("content-range", ""))
                    if m is None or int(m.group(1)) != start:
                        return None
                    data = await self._read(response, end - start)
                finally:
                    await response.aclose()
            return data if len(data) == end - start else None

        return await self._with_retries(url, "range request", attempt)

    async def _metadata_by_ranges(
        self, file: IndexFile, hashes: Mapping[str, str], project: str | None
    ) -> CoreMetadata | None:
        url = file.url
        host = origin(url)
        suffix = self.range_suffix

        async def first() -> tuple[bytes, int, int] | CoreMetadata | None:
            async with self._sem:
                if host in self._no_ranges:
                    return None
                headers = {"Range": f"bytes=-{suffix}", "Accept-Encoding": "identity"}
                response = await self._open(url, headers, kind="range", lean=True)
                try:
                    code = response.status_code
                    encoded = response.headers.get("content-encoding", "identity") != "identity"
                    if code == 200 and not encoded:
                        # Ranges ignored: this is the whole file; use it rather than ask again.
                        log.info(
                            "range requests not supported by %s; downloading whole files",
                            redact(url),
                        )
                        self._no_ranges.add(host)
                        self.stats.ranges_ignored += 1
                        return await self._consume_download(response, file, hashes, project)
                    if code in (416, 501):
                        if code == 501:
                            self._no_ranges.add(host)
                        return None
                    if code != 206 and not (code == 200 and encoded):
                        self._raise_for_status(response, "range request", url)
                    if encoded:  # asked for identity: no usable range reads from this host
                        self._no_ranges.add(host)
                        return None
                    m = _CONTENT_RANGE.match(response.headers.get("content-range", ""))
                    if m is None:
                        return None
                    start, total = int(m.group(1)), int(m.group(3))
                    tail = await self._read(response, suffix)
                finally:
                    await response.aclose()
            return tail, start, total

        try:
            got = await self._with_retries(url, f"range read of {file.filename}", first)
        except _TooLarge:
            return None
        if got is None or isinstance(got, CoreMetadata):
            return got
        tail, tail_start, total = got
        try:
            return await self._metadata_from_tail(url, tail, tail_start, total, project)
        except (_zip.ZipFormatError, MetadataError, _TooLarge) as e:
            log.info("range read of %s failed (%s); downloading it", redact(url), e)
            return None

    async def _metadata_from_tail(
        self, url: str, tail: bytes, tail_start: int, total: int, project: str | None
    ) -> CoreMetadata | None:
        cd = _zip.find_central_directory(tail, tail_start, total)
        if cd.size > MAX_CENTRAL_DIRECTORY:
            raise _zip.ZipFormatError("central directory too large")
        if cd.offset < tail_start:
            # METADATA is among the last entries, just before the directory (with RECORD,
            # which grows like the directory): take as much again, to spare a third request.
            start = max(0, cd.offset - cd.size)
            head = await self._get_range(url, start, tail_start)
            if head is None:
                return None
            tail, tail_start = head + tail, start
        rel = cd.offset - tail_start
        member = _zip.metadata_member(tail[rel : rel + cd.size], project)
        if (
            member.uncompressed_size > MAX_METADATA_SIZE
            or member.compressed_size > MAX_METADATA_SIZE
        ):
            raise _zip.ZipFormatError("METADATA larger than the size limit")
        # Local header + name + extra + data; the local extra field may differ from the central one.
        want_end = min(
            total,
            member.header_offset
            + _zip.LFH_SIZE
            + len(member.name.encode())
            + member.extra_len
            + member.compressed_size
            + 1024,
        )
        if member.header_offset >= tail_start:
            chunk = tail[member.header_offset - tail_start :]
        else:
            got = await self._get_range(url, member.header_offset, want_end)
            if got is None:
                return None
            chunk = got
        data_start, data_end = _zip.local_data_span(chunk, member)
        if data_end > len(chunk):
            more = await self._get_range(
                url, member.header_offset + len(chunk), member.header_offset + data_end
            )
            if more is None:
                return None
            chunk += more
        raw = _zip.decompress_member(member, chunk[data_start:data_end], MAX_METADATA_SIZE)
        return parse_core_metadata(raw)

    async def _metadata_by_download(
        self, file: IndexFile, hashes: Mapping[str, str], project: str | None
    ) -> CoreMetadata:
        url = file.url

        async def attempt() -> CoreMetadata:
            async with self._sem:
                response = await self._open(
                    url, {"Accept-Encoding": "identity"}, kind="full_download"
                )
                try:
                    self._raise_for_status(response, "download", url)
                    return await self._consume_download(response, file, hashes, project)
                finally:
                    await response.aclose()

        return await self._with_retries(url, f"download of {file.filename}", attempt)

    async def _consume_download(
        self,
        response: httpx.Response | WireResponse,
        file: IndexFile,
        hashes: Mapping[str, str],
        project: str | None,
    ) -> CoreMetadata:
        """Stream a whole file to a spooled temp file, verify hashes, read its metadata."""
        limit = self.max_download_size
        length = response.headers.get("content-length")
        if length and length.isdigit() and int(length) > limit:
            raise IndexRequestError(
                f"{file.filename} is {length} bytes, over the download limit of {limit}", file.url
            )
        hashers = _hashers(hashes)
        with tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY) as spool:
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                _received(len(chunk))
                if size > limit:
                    raise IndexRequestError(
                        f"{file.filename} exceeds the download limit of {limit} bytes", file.url
                    )
                for h in hashers.values():
                    h.update(chunk)
                spool.write(chunk)
            _verify(file.url, hashes, hashers)
            spool.seek(0)
            return await asyncio.to_thread(_parse_archive, spool, file.filename, project, file.url)

    def _local_metadata(
        self, file: IndexFile, hashes: Mapping[str, str], project: str | None
    ) -> CoreMetadata:
        self.stats.local += 1
        path = local_index_path(file.url, self.base_dir)
        if not path.is_file():
            raise FileUnavailable("local file not found", file.url)
        hashers = _hashers(hashes)
        with path.open("rb") as f:
            if hashers:
                for block in iter(lambda: f.read(1 << 20), b""):
                    for h in hashers.values():
                        h.update(block)
                _verify(file.url, hashes, hashers)
                f.seek(0)
            return _parse_archive(f, file.filename, project, file.url)


def _listed_sha256(file: IndexFile) -> str | None:
    """The sha256 the index page lists for the file's PEP 658 metadata, if any."""
    listed = file.core_metadata
    if isinstance(listed, Mapping):
        digest = {str(k).lower(): v for k, v in listed.items()}.get("sha256")
        if isinstance(digest, str) and _SHA256_HEX.match(digest):
            return digest.lower()
    return None


_SHA256_HEX = re.compile(r"^[0-9a-fA-F]{64}$")


def _pep658_key(index_key: str, file: IndexFile) -> tuple[Any, ...]:
    """Memo key of a file's PEP 658 metadata: files whose listed metadata sha256 is equal
    have byte-identical metadata (most wheels of a release), so it is fetched once."""
    listed = file.core_metadata
    if isinstance(listed, Mapping):
        digest = {k.lower(): v.lower() for k, v in listed.items()}.get("sha256")
        if digest:
            return ("pep658", index_key, file.is_wheel, digest)
    return ("pep658-file", file.url)


_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+)\s*$", re.IGNORECASE)


def _parse_archive(f: IO[bytes], filename: str, project: str | None, url: str) -> CoreMetadata:
    try:
        return metadata_from_archive(f, filename, project)
    except MetadataUnavailable:
        raise
    except (MetadataError, _zip.ZipFormatError) as e:
        raise IndexRequestError(f"unreadable archive {filename} ({e})", url) from None


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


__all__ += ["CredentialProvider", "MetadataCache", "MetadataUnavailable"]
