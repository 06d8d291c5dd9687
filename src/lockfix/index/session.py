"""The one HTTP session of a run: every request lockfix sends goes through :class:`Session`.

It owns what every request needs, in one place: offline mode (checked before anything is
sent), redirects with credentials chosen per hop (an index's credentials never leave its
origin), proxies from the environment (``HTTP(S)_PROXY``, ``ALL_PROXY``, ``NO_PROXY``, as
the standard library reads them), TLS settings (``SSL_CERT_FILE``, ``SSL_CERT_DIR``,
``SSL_CLIENT_CERT``), the User-Agent, ``UV_HTTP_TIMEOUT`` and a deadline per attempt,
retries with backoff, the health of each host, and the mapping of failures to
:mod:`lockfix.errors`. The wire is aiohttp, used through its public API only; it is
imported by the first request, so a run answered from the caches never loads it.
"""

from __future__ import annotations

import logging
import math
import os
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urljoin, urlsplit

from lockfix import __version__
from lockfix.errors import FileUnavailable, IndexAuthError, IndexRequestError, OfflineCacheMiss
from lockfix.index.auth import CredentialProvider
from lockfix.urls import Origin, origin, split_credentials

if TYPE_CHECKING:
    import asyncio
    import ssl

    import aiohttp

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_RETRY_AFTER = 60.0
MAX_RETRY_WAIT = 30.0  # longest backoff between two attempts
MAX_REDIRECTS = 10
REDIRECTS = frozenset({301, 302, 303, 307, 308})
NOT_FOUND = frozenset({403, 404, 410})
# UV_HTTP_TIMEOUT bounds the wait for each read, as in uv. Each attempt also has a deadline,
# so that a server trickling a byte at a time cannot hold a request for ever: the response
# must begin within UV_HTTP_TIMEOUT, and its body then extends that by a second for every
# MIN_BODY_RATE bytes received. A steady download at that rate or faster never hits it.
MIN_BODY_RATE = 8 * 1024  # bytes per second
# An already-encoded URL without userinfo: handed to the wire as it is, not re-quoted.
_PLAIN_URL = re.compile(
    r"https?://[A-Za-z0-9\-._~:\[\]]+(?:[/?][A-Za-z0-9\-._~:/?#\[\]!$&'()*+,;=%]*)?\Z"
)


# --- failures ------------------------------------------------------------------------


class TransportError(Exception):
    """No usable HTTP answer; the class names the way it failed (shown in messages)."""


class ConnectError(TransportError):
    """Nothing accepted the connection (refused, unreachable, TLS handshake failed)."""


class ProxyError(TransportError):
    """The proxy refused or failed the request."""


class ReadError(TransportError):
    """The connection broke while the answer was read (reset, broken pipe)."""


class RemoteProtocolError(TransportError):
    """No answer at all, or a body cut short of its Content-Length or last chunk."""


class MalformedResponse(RemoteProtocolError):
    """The answer is not valid HTTP/1.1: a bad status line or headers, or bytes past the
    end of the previous response on the connection."""


class InvalidURL(TransportError):
    """A URL (from an index page or the lock) that cannot be requested."""


class Timeout(TransportError):
    """Waited too long."""


class ConnectTimeout(Timeout):
    pass


class ReadTimeout(Timeout):
    pass


class DeadlineExceeded(Timeout):
    """An attempt ran past its deadline (see MIN_BODY_RATE) while its reads kept coming."""


# Failures that say nothing answered at that host: one request's retry budget decides for
# all of its requests (see HostHealth).
HOST_FAILURES = (ConnectError, Timeout)
RETRIED = (Timeout, ConnectError, ReadError, RemoteProtocolError)


class RetryableStatus(Exception):
    """429 or 5xx: worth asking again, after ``retry_after`` seconds if the server said."""

    def __init__(self, status: int, url: str, retry_after: float | None) -> None:
        super().__init__(f"HTTP {status}")
        self.status, self.url, self.retry_after = status, url, retry_after


class TooLarge(Exception):
    pass


class Offline(Exception):
    """A request would need the network in offline mode."""


class HostDown(Exception):
    """The request's host already failed a whole retry budget in this run."""


class _Probing(Exception):
    """Another request is finding out whether the request's host answers at all."""


class TLSSettingsError(Exception):
    """SSL_CERT_FILE, SSL_CERT_DIR or SSL_CLIENT_CERT names nothing usable."""


TLS_VARIABLES = ("SSL_CERT_FILE", "SSL_CERT_DIR", "SSL_CLIENT_CERT")


def _map_error(exc: BaseException) -> TransportError | None:
    from lockfix.index._wire import map_error

    return map_error(exc)


def retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    import email.utils  # only for an answer that asks to retry later

    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def raise_for_status(status: int, headers: Mapping[str, str], what: str, url: str) -> None:
    if status == 429 or status >= 500:
        raise RetryableStatus(status, url, retry_after(headers.get("retry-after")))
    if status == 401:
        raise IndexAuthError(f"{what}: authentication required or rejected", url, status)
    if status in NOT_FOUND:
        raise FileUnavailable(f"{what}: not available", url, status)
    if status != 200:
        raise IndexRequestError(f"{what}: unexpected response", url, status)


# --- counters ------------------------------------------------------------------------


class RequestStats:
    """Network requests by kind (retries included), and what the caches answered."""

    # the counters, in the order :meth:`as_dict` gives them
    FIELDS = (
        "page",
        "metadata_pep658",
        "range",
        "full_download",
        "retries",
        "page_cache_hits",  # page served from the HTTP cache without any request
        "page_revalidated",  # page requests answered 304 (counted in `page` too)
        "metadata_cache_hits",
        "ranges_ignored",  # range requests answered with the whole file (200)
        "local",  # file:// / directory reads, no network
        "host_down",  # requests not sent: their host had failed a whole retry budget
    )
    __slots__ = FIELDS

    def __init__(self) -> None:
        self.page = 0
        self.metadata_pep658 = 0
        self.range = 0
        self.full_download = 0
        self.retries = 0
        self.page_cache_hits = 0
        self.page_revalidated = 0
        self.metadata_cache_hits = 0
        self.ranges_ignored = 0
        self.local = 0
        self.host_down = 0

    @property
    def requests(self) -> int:
        return self.page + self.metadata_pep658 + self.range + self.full_download

    @property
    def metadata_requests(self) -> int:
        return self.metadata_pep658 + self.range + self.full_download

    def as_dict(self) -> dict[str, int]:
        return {**{name: getattr(self, name) for name in self.FIELDS}, "requests": self.requests}

    def add(self, counts: Mapping[str, int]) -> None:
        """Add another client's :meth:`as_dict` (a :mod:`lockfix._shard` worker's)."""
        for name in self.FIELDS:
            setattr(self, name, getattr(self, name) + int(counts.get(name, 0)))


# --- one attempt's deadline ----------------------------------------------------------


class _Deadline:
    """The deadline of one attempt: armed when its first request is sent (not while it
    waits for a connection slot), pushed back as body bytes arrive; when it passes, the
    attempt's task is cancelled and :meth:`HostHealth.attempt` raises DeadlineExceeded."""

    __slots__ = ("armed", "fired", "handle", "host", "loop", "me", "received", "start", "task")

    def __init__(self, host: _Host, me: object) -> None:
        self.host, self.me = host, me  # whose attempt this is
        self.received = 0
        self.armed = self.fired = False
        self.handle: asyncio.TimerHandle | None = None
        self.task: asyncio.Task[Any] | None = None
        self.start = 0.0

    def arm(self, timeout: float) -> None:
        self.armed = True
        if not math.isfinite(timeout):
            return
        import asyncio

        self.loop = asyncio.get_running_loop()
        self.task = asyncio.current_task()
        self.start = self.loop.time()
        self.handle = self.loop.call_at(self.start + timeout, self._check, timeout)

    def _check(self, timeout: float) -> None:
        when = self.start + timeout + self.received / MIN_BODY_RATE
        if self.loop.time() < when:
            self.handle = self.loop.call_at(when, self._check, timeout)
            return
        self.fired = True
        assert self.task is not None
        self.task.cancel()

    def disarm(self) -> None:
        if self.handle is not None:
            self.handle.cancel()


_DEADLINE: ContextVar[_Deadline | None] = ContextVar("lockfix_deadline", default=None)


def _uncancel(task: asyncio.Task[Any] | None) -> bool:
    """Take back a cancel this module requested; False if another one is pending too."""
    return task is None or task.uncancel() == 0


class _Host:
    """What this run knows about one origin's health."""

    __slots__ = ("answers", "answers_then", "down", "probed", "prober")

    def __init__(self) -> None:
        self.down: str | None = None  # why it was given up on: its requests then fail at once
        self.prober: object | None = None  # the request retrying it after a failure; others wait
        self.probed: asyncio.Event | None = None  # set when that request's retries end
        self.answers = 0  # attempts the host answered (any status)
        self.answers_then = 0  # ``answers`` when the probe began


class HostHealth:
    """One request's retry budget decides for all the requests to a host: when an attempt
    finds nothing answering (refused, unreachable, timed out), that request retries on its
    own while the others wait for its outcome; once it has used its budget without the
    host answering anyone, the host is down for this run and every request to it fails at
    once."""

    def __init__(self, stats: RequestStats, timeout: float) -> None:
        self.stats, self.timeout = stats, timeout
        self.hosts: dict[Origin, _Host] = {}

    def host(self, url: str) -> _Host:
        key = origin(url)
        found = self.hosts.get(key)
        if found is None:
            found = self.hosts[key] = _Host()
        return found

    async def attempt(self, host: _Host, me: object, fn: Callable[[], Awaitable[T]]) -> T:
        """An attempt of ``me``'s, if the host may still be asked."""
        import asyncio

        while True:
            while host.prober is not None and host.prober is not me and host.down is None:
                assert host.probed is not None
                await host.probed.wait()
            if host.down is not None:
                self.stats.host_down += 1
                raise HostDown(host.down)
            try:
                result = await self._timed(fn, host, me)
                break
            except _Probing:
                continue  # another request is probing the host: wait for its outcome
            except HOST_FAILURES:
                if host.prober is None:
                    host.prober, host.probed = me, asyncio.Event()
                    host.answers_then = host.answers
                raise
            except (HostDown, Offline):
                raise
            except Exception:
                self._answered(host)
                raise
        self._answered(host)
        return result

    async def _timed(self, fn: Callable[[], Awaitable[T]], host: _Host, me: object) -> T:
        """One attempt under its deadline (armed by :meth:`on_first_request`)."""
        import asyncio

        deadline = _Deadline(host, me)
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

    def on_first_request(self) -> None:
        """Before an attempt's first request: fail it if its host is down, send it back to
        wait if another request probes the host, else start its deadline."""
        deadline = _DEADLINE.get()
        if deadline is None or deadline.armed:
            return
        host = deadline.host
        if host.down is not None:
            self.stats.host_down += 1
            raise HostDown(host.down)
        if host.prober is not None and host.prober is not deadline.me:
            raise _Probing  # gives back the connection slot it waited for
        deadline.arm(self.timeout)

    @staticmethod
    def _answered(host: _Host) -> None:
        host.answers += 1
        if host.probed is not None:  # it answers again: the requests waiting go on
            host.probed.set()
            host.prober = host.probed = None

    @staticmethod
    def end_probe(host: _Host, me: object, error: BaseException | None) -> None:
        """``me``'s retries are over: if it was the one probing a failing host that has
        answered nobody since, the host is down."""
        if host.prober is not me:
            return
        if isinstance(error, HOST_FAILURES) and host.answers == host.answers_then:
            host.down = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        assert host.probed is not None
        host.probed.set()
        host.prober = host.probed = None


# --- responses -----------------------------------------------------------------------


class Response:
    """A streamed answer. Read it (:meth:`read`, :meth:`chunks`), then :meth:`aclose`."""

    __slots__ = ("headers", "raw", "status_code", "url")

    def __init__(self, raw: aiohttp.ClientResponse, url: str) -> None:
        self.raw = raw
        self.status_code = raw.status
        self.headers = raw.headers  # case-insensitive
        self.url = url  # after redirects, without credentials

    async def chunks(self) -> AsyncIterator[bytes]:
        deadline = _DEADLINE.get()
        content = self.raw.content
        try:
            while chunk := await content.readany():
                if deadline is not None:
                    deadline.received += len(chunk)
                yield chunk
        except Exception as e:
            mapped = _map_error(e)
            if mapped is None:
                raise
            raise mapped from e

    async def read(self, limit: int) -> bytes:
        """The whole body; :class:`TooLarge` past ``limit`` bytes."""
        length = self.headers.get("content-length")
        if length and length.isdigit() and int(length) > limit:
            raise TooLarge(f"{length} bytes")
        parts, size = [], 0
        async for chunk in self.chunks():
            size += len(chunk)
            if size > limit:
                raise TooLarge(f"more than {limit} bytes")
            parts.append(chunk)
        return b"".join(parts)

    async def aclose(self) -> None:
        # A body read to its end gives the connection back to the pool; otherwise it is closed.
        if self.raw.content.at_eof():
            self.raw.release()
        else:
            self.raw.close()


# --- set-up from the environment -----------------------------------------------------


def ssl_context() -> ssl.SSLContext:
    """certifi's roots, or those SSL_CERT_FILE / SSL_CERT_DIR name; SSL_CLIENT_CERT's
    certificate when set."""
    import ssl

    import certifi

    cafile, capath = os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR")
    try:
        if cafile:
            ctx = ssl.create_default_context(cafile=cafile)
        elif capath:
            ctx = ssl.create_default_context(capath=capath)
        else:
            ctx = ssl.create_default_context(cafile=certifi.where())
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


def proxy_for(url: str, proxies: Mapping[str, str]) -> str | None:
    """The proxy ``url`` goes through: ``proxies`` (:func:`urllib.request.getproxies`) by
    scheme, else ``all``; None when NO_PROXY (or the system's bypass list) exempts its host."""
    import urllib.request

    parts = urlsplit(url)
    proxy = proxies.get(parts.scheme.lower()) or proxies.get("all")
    if not proxy or (parts.hostname and urllib.request.proxy_bypass(parts.netloc)):
        return None
    return proxy if "://" in proxy else f"http://{proxy}"


def env_number(name: str, kind: type[float] | type[int], default: float) -> float:
    raw = os.environ.get(name)
    if raw:
        try:
            return kind(raw)
        except ValueError:
            log.warning("ignoring invalid %s=%r", name, raw)
    return default


# --- the session ---------------------------------------------------------------------


class Session:
    """Sends GET requests for one run; see the module docstring for what it owns."""

    def __init__(
        self,
        *,
        stats: RequestStats,
        credentials: CredentialProvider,
        offline: bool,
        timeout: float,
        retries: int,
        retry_wait: float,
        slots: int,
        connections: int,
    ) -> None:
        self.stats, self.credentials, self.offline = stats, credentials, offline
        self.timeout, self.retries, self.retry_wait = timeout, retries, retry_wait
        self.connections = connections
        self.slots_total = slots
        self._slots: asyncio.Semaphore | None = None
        self.health = HostHealth(stats, timeout)
        self.user_agent = f"lockfix/{__version__}"
        self._proxies: dict[Origin, tuple[Any, Any]] = {}
        self._session: aiohttp.ClientSession | None = None
        self._tls: ssl.SSLContext | None = None

    @property
    def slots(self) -> asyncio.Semaphore:
        """Requests in flight: an attempt holds one from its first request to its last
        byte. Made by the first request (a run answered from the caches never needs it)."""
        if self._slots is None:
            import asyncio

            self._slots = asyncio.Semaphore(self.slots_total)
        return self._slots

    def _wire(self) -> aiohttp.ClientSession:
        # Built on first use: a session belongs to the running event loop.
        if self._session is None:
            from lockfix.index import _wire

            if any(os.environ.get(name) for name in TLS_VARIABLES):
                self.tls()  # settings given: unusable ones fail the first request, any URL
            self._session = _wire.open_session(self.connections, self.timeout, self.user_agent)
        return self._session

    def tls(self) -> ssl.SSLContext:
        """The TLS context of every https request and https proxy (:func:`ssl_context`),
        made by the first that needs it: loading the trust store is costly, and a run
        against plain http indexes never needs it."""
        if self._tls is None:
            self._tls = ssl_context()
        return self._tls

    def _proxy(self, url: str) -> tuple[Any, Any]:
        """(proxy URL without credentials, its credentials) for ``url``, or (None, None)."""
        key = origin(url)
        found = self._proxies.get(key)
        if found is None:
            import urllib.request

            from lockfix.index._wire import proxy_auth

            proxy = proxy_for(url, urllib.request.getproxies())
            if proxy is None:
                found = (None, None)
            else:
                clean, creds = split_credentials(proxy)
                if urlsplit(clean).scheme.lower() not in ("http", "https"):
                    raise ProxyError(f"{urlsplit(clean).scheme} proxies are not supported")
                auth = proxy_auth(creds.username, creds.password) if creds else None
                found = (clean, auth)
            self._proxies[key] = found
        return found

    async def open(self, url: str, headers: Mapping[str, str], *, kind: str) -> Response:
        """Send a streaming GET of ``url`` (which may carry credentials), following redirects
        with the credentials of each hop; counted under ``kind`` in :class:`RequestStats`.
        Content is decoded only if ``headers`` accept an encoding other than identity. The
        caller closes the response."""
        if self.offline:
            raise Offline(url)
        wire = self._wire()
        self.health.on_first_request()
        current, given = split_credentials(url)
        decode = headers.get("Accept-Encoding", "gzip") != "identity"
        for _ in range(MAX_REDIRECTS + 1):
            request_headers = dict(headers)
            # Credentials are chosen per hop: an index's credentials never leave its origin.
            # Those a URL carries itself (a file link, a redirect's Location) are sent to
            # that URL only, and as a header: the URL is requested without them.
            creds = given or self.credentials.for_url(current)
            if creds is not None:
                request_headers["Authorization"] = creds.authorization()
            raw = await self._send(wire, current, request_headers, decode)
            setattr(self.stats, kind, getattr(self.stats, kind) + 1)
            if raw.status in REDIRECTS and "location" in raw.headers:
                location = raw.headers["location"]
                raw.close()
                current, given = split_credentials(urljoin(current, location))
                continue
            return Response(raw, current)
        raise IndexRequestError("too many redirects", url)

    async def _send(
        self,
        wire: aiohttp.ClientSession,
        url: str,
        headers: Mapping[str, str],
        decode: bool,
    ) -> aiohttp.ClientResponse:
        from yarl import URL

        try:
            target = URL(url, encoded=True) if _PLAIN_URL.match(url) else URL(url)
            proxy, proxy_auth = self._proxy(url)
            secure = target.scheme == "https" or (proxy or "")[:8].lower() == "https://"
            return await wire.get(
                target,
                headers=headers,
                allow_redirects=False,
                auto_decompress=decode,
                proxy=proxy,
                proxy_auth=proxy_auth,
                ssl=self.tls() if secure else True,
            )
        except (ValueError, TypeError) as e:
            raise InvalidURL(str(e)) from None
        except Exception as e:
            mapped = _map_error(e)
            if mapped is None:
                raise
            raise mapped from e

    async def with_retries(self, url: str, what: str, fn: Callable[[], Awaitable[T]]) -> T:
        """``fn()`` (one attempt: its requests and reading their bodies), retried with
        exponential backoff and jitter (``Retry-After`` honoured, capped) on what may pass;
        its failure as an :mod:`lockfix.errors` exception."""
        import asyncio

        host = self.health.host(url)
        me = object()
        failure: BaseException | None = None
        try:
            for attempt in range(self.retries + 1):
                if attempt:
                    self.stats.retries += 1
                try:
                    return await self.health.attempt(host, me, fn)
                except Exception as e:
                    failure = e
                    wait = self._backoff(e, attempt)
                    if wait is None:
                        raise
                await asyncio.sleep(wait)
            assert failure is not None
            raise failure
        except asyncio.CancelledError:
            failure = None  # not a verdict on the host
            raise
        except (HostDown, RetryableStatus, Offline, TransportError) as e:
            raise _as_index_error(e, url, what) from None
        finally:
            HostHealth.end_probe(host, me, failure)

    def _backoff(self, error: Exception, attempt: int) -> float | None:
        """Seconds to wait before retrying after ``error`` on attempt ``attempt`` (from 0);
        None: do not retry."""
        if attempt >= self.retries:
            return None
        if isinstance(error, RetryableStatus) and error.retry_after is not None:
            return min(error.retry_after, MAX_RETRY_AFTER)
        if not isinstance(error, (RetryableStatus, *RETRIED)):
            return None
        import random  # only for a retry

        base = self.retry_wait * 2**attempt
        return min(MAX_RETRY_WAIT, base + random.uniform(0, self.retry_wait))

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _as_index_error(error: Exception, url: str, what: str) -> IndexRequestError:
    if isinstance(error, HostDown):
        origin_text = "{}://{}:{}".format(*origin(url))
        return IndexRequestError(
            f"{what} not attempted: {origin_text} did not answer ({error})", url
        )
    if isinstance(error, RetryableStatus):
        return IndexRequestError(f"{what} failed", url, error.status)
    if isinstance(error, Offline):
        return OfflineCacheMiss(f"offline: {what} is not in the cache", url)
    if isinstance(error, Timeout):
        return IndexRequestError(f"{what} timed out ({type(error).__name__})", url)
    if isinstance(error, InvalidURL):  # a link an index page gives, not a network error
        return IndexRequestError(f"{what}: invalid URL ({error})", url)
    if isinstance(error, ProxyError):
        return IndexRequestError(f"{what} failed (ProxyError: {error})", url)
    return IndexRequestError(f"{what} failed ({type(error).__name__})", url)
