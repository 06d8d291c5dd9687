"""The wire under :class:`lockfix.index.session.Session`: an aiohttp session, and the
mapping of aiohttp's failures to the session's own. Imported by the first request, so a run
answered from the caches never loads aiohttp.

The aiohttp session does nothing on its own: no redirects (the Session follows them with
per-origin credentials), no cookies, no proxies or netrc from the environment (the Session
chooses the proxy of each request), and no resending of a request after a reset
(:func:`_no_resend`): retries belong to the Session (backoff, Retry-After, counted).
"""

from __future__ import annotations

import asyncio

import aiohttp

from lockfix.index.session import (
    ConnectError,
    ConnectTimeout,
    InvalidURL,
    MalformedResponse,
    ProxyError,
    ReadError,
    ReadTimeout,
    RemoteProtocolError,
    TransportError,
)


class ConnectionLost(aiohttp.ClientConnectionError):
    """A reset or disconnect before the answer began (the cause says which), raised past
    aiohttp's immediate resend of an idempotent request."""


async def _no_resend(
    request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
) -> aiohttp.ClientResponse:
    try:
        return await handler(request)
    except (aiohttp.ClientOSError, aiohttp.ServerDisconnectedError) as e:
        raise ConnectionLost(str(e) or type(e).__name__) from e


def open_session(connections: int, timeout: float, user_agent: str) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=connections),
        cookie_jar=aiohttp.DummyCookieJar(),
        trust_env=False,
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=timeout, sock_read=timeout),
        headers={"User-Agent": user_agent},
        middlewares=(_no_resend,),
    )


def proxy_auth(user: str, password: str | None) -> aiohttp.BasicAuth:
    return aiohttp.BasicAuth(user, password or "")


_KINDS: tuple[
    tuple[type[BaseException] | tuple[type[BaseException], ...], type[TransportError]], ...
] = (
    (aiohttp.ConnectionTimeoutError, ConnectTimeout),
    (asyncio.TimeoutError, ReadTimeout),  # aiohttp.SocketTimeoutError among others
    ((aiohttp.ClientProxyConnectionError, aiohttp.ClientHttpProxyError), ProxyError),
    ((aiohttp.ClientConnectorError, aiohttp.ServerFingerprintMismatch), ConnectError),
    # no answer, or a body cut short of its Content-Length / last chunk
    ((aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError), RemoteProtocolError),
    ((aiohttp.ClientOSError, aiohttp.ClientConnectionError), ReadError),  # reset, broken pipe
    (aiohttp.ClientResponseError, MalformedResponse),
    (aiohttp.InvalidURL, InvalidURL),
    (aiohttp.ClientError, TransportError),
)


def map_error(exc: BaseException) -> TransportError | None:
    """The Session's name for an aiohttp failure; None for anything else."""
    if isinstance(exc, ConnectionLost) and exc.__cause__ is not None:
        exc = exc.__cause__
    message = str(exc) or type(exc).__name__
    for caught, kind in _KINDS:
        if isinstance(exc, caught):
            return kind(message)
    return None
