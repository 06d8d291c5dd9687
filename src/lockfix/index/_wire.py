"""An httpx transport that sends requests over aiohttp's HTTP/1.1 client.

httpx stays the API; only the wire changes. httpcore's pure-Python HTTP/2 stack cost about
half of a cold check's CPU, aiohttp's C parser a fraction of that. The transport does
nothing on its own: no redirects, no decompression (httpx decodes what the server
encoded), no cookies, no proxies from the environment (httpx mounts one transport per
proxy and applies NO_PROXY), no retries.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
import httpx
from yarl import URL


class MalformedResponse(httpx.RemoteProtocolError):
    """The answer is not valid HTTP/1.1: a bad status line or headers, or bytes past the
    end of the previous response on the connection (aiohttp fails the response those
    bytes arrive with; httpcore would read the body to its Content-Length)."""


def _map_error(exc: BaseException) -> httpx.TransportError | None:
    """The httpx exception that httpcore would raise for the same failure."""
    message = str(exc) or type(exc).__name__
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(message)
    if isinstance(exc, asyncio.TimeoutError):  # aiohttp.SocketTimeoutError among others
        return httpx.ReadTimeout(message)
    if isinstance(exc, (aiohttp.ClientProxyConnectionError, aiohttp.ClientHttpProxyError)):
        return httpx.ProxyError(message)
    if isinstance(exc, (aiohttp.ClientConnectorError, aiohttp.ServerFingerprintMismatch)):
        return httpx.ConnectError(message)
    if isinstance(exc, (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError)):
        # No response, or a body cut short of its Content-Length / last chunk.
        return httpx.RemoteProtocolError(message)
    if isinstance(exc, (aiohttp.ClientOSError, aiohttp.ClientConnectionError)):
        return httpx.ReadError(message)  # reset, broken pipe
    if isinstance(exc, aiohttp.ClientResponseError):
        return MalformedResponse(message)
    if isinstance(exc, aiohttp.InvalidURL):
        return httpx.UnsupportedProtocol(message)
    if isinstance(exc, aiohttp.ClientError):
        return httpx.TransportError(message)
    return None


async def _chunks(response: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    content = response.content
    try:
        while True:
            chunk = await content.readany()
            if not chunk:
                return
            yield chunk
    except Exception as e:
        mapped = _map_error(e)
        if mapped is None:
            raise
        raise mapped from e


def _release(response: aiohttp.ClientResponse) -> None:
    # A body read to its end gives the connection back to the pool; otherwise it is closed.
    if response.content.at_eof():
        response.release()
    else:
        response.close()


class _Body(httpx.AsyncByteStream):
    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    def __aiter__(self) -> AsyncIterator[bytes]:
        return _chunks(self._response)

    async def aclose(self) -> None:
        _release(self._response)


class WireResponse:
    """The part of an :class:`httpx.Response` that IndexClient reads from a range request,
    straight from aiohttp: no httpx request/URL/response objects, no content decoding (the
    request asks for ``identity``)."""

    __slots__ = ("_response", "headers", "status_code", "url")

    def __init__(self, response: aiohttp.ClientResponse, url: str) -> None:
        self._response = response
        self.status_code = response.status
        self.headers = response.headers  # case-insensitive, like httpx.Headers
        self.url = url

    def aiter_bytes(self) -> AsyncIterator[bytes]:
        return _chunks(self._response)

    async def aclose(self) -> None:
        _release(self._response)


class AiohttpTransport(httpx.AsyncBaseTransport):
    """One aiohttp session (connection pool), optionally through one HTTP(S) proxy."""

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext,
        limits: httpx.Limits,
        proxy: httpx.Proxy | None = None,
    ) -> None:
        self._ssl = ssl_context
        self._limits = limits
        self._proxy = proxy
        self._proxy_auth = aiohttp.BasicAuth(*proxy.auth) if proxy and proxy.auth else None
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        # Created on first use: a session belongs to the running event loop.
        if self._session is None:
            connector = aiohttp.TCPConnector(
                ssl=self._ssl,
                limit=self._limits.max_connections or 0,
                keepalive_timeout=self._limits.keepalive_expiry,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=False,
                trust_env=False,
                timeout=aiohttp.ClientTimeout(total=None),
            )
            # aiohttp resends an idempotent request once, at once, after a reset or a
            # disconnect; retries belong to IndexClient (backoff, Retry-After, counted).
            if hasattr(self._session, "_retry_connection"):
                self._session._retry_connection = False
        return self._session

    def _proxy_args(self) -> dict[str, Any]:
        proxy = self._proxy
        if proxy is None:
            return {}
        return {
            "proxy": str(proxy.url),
            "proxy_auth": self._proxy_auth,
            "proxy_headers": dict(proxy.headers),
        }

    async def get(self, url: str, headers: Mapping[str, str], timeout: float) -> WireResponse:
        """A plain GET of an already-encoded URL, without httpx's per-request work."""
        try:
            target = URL(url, encoded=True)
        except (ValueError, TypeError) as e:
            raise httpx.InvalidURL(str(e)) from None
        try:
            response = await self._open().request(
                "GET",
                target,
                headers=headers,
                allow_redirects=False,
                auto_decompress=False,
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=timeout, sock_read=timeout),
                **self._proxy_args(),
            )
        except Exception as e:
            mapped = _map_error(e)
            if mapped is None:
                raise
            raise mapped from e
        return WireResponse(response, url)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._open()
        timeout = request.extensions.get("timeout", {})
        body = await request.aread()
        try:
            response = await session.request(
                request.method,
                # httpx has already encoded the URL; aiohttp must not re-quote it.
                URL(str(request.url), encoded=True),
                headers=[
                    (k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw
                ],
                data=body or None,
                allow_redirects=False,
                auto_decompress=False,
                timeout=aiohttp.ClientTimeout(
                    total=None,
                    connect=timeout.get("pool"),
                    sock_connect=timeout.get("connect"),
                    sock_read=timeout.get("read"),
                ),
                server_hostname=request.extensions.get("sni_hostname"),
                **self._proxy_args(),
            )
        except Exception as e:
            mapped = _map_error(e)
            if mapped is None:
                raise
            raise mapped from e
        extensions = {"http_version": b"HTTP/1.1"}
        if response.reason:
            extensions["reason_phrase"] = response.reason.encode("latin-1", "replace")
        return httpx.Response(
            status_code=response.status,
            headers=response.raw_headers,
            stream=_Body(response),
            request=request,
            extensions=extensions,
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
