"""URLs as lockfix shows and compares them: credentials split off or masked, origins."""

from __future__ import annotations

import functools
import re
from typing import Final
from urllib.parse import unquote, urlsplit, urlunsplit

_DEFAULT_PORTS = {"http": 80, "https": 443}


def redact(url: str) -> str:
    """``url`` without any userinfo (``https://user:pw@host/x`` → ``https://host/x``)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


# scheme://userinfo@ anywhere in a text; userinfo runs to the last "@" before the host
@functools.cache
def _userinfo() -> re.Pattern[str]:
    return re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^/\s?#\"'<>]*)@")


_GIT_USER_SCHEMES = frozenset({"ssh://", "git+ssh://", "git+https://"})


def _mask(match: re.Match[str]) -> str:
    scheme, userinfo = match["scheme"], match["userinfo"]
    user, colon, _password = userinfo.partition(":")
    if colon:
        return f"{scheme}{user}:****@"
    if user == "git" and scheme.lower() in _GIT_USER_SCHEMES:
        return match[0]  # the generic git user is not a secret
    return f"{scheme}****@"  # a lone user name may be a token


def redact_text(text: str) -> str:
    """``text`` with the credentials of every URL in it masked, as uv displays URLs:
    ``https://user:pw@host`` → ``https://user:****@host``, ``https://token@host`` →
    ``https://****@host``. For anything printed that may quote a URL from the lock."""
    if "@" not in text:
        return text
    return _userinfo().sub(_mask, text)


Origin = tuple[str, str, int | None]


@functools.lru_cache(maxsize=4096)
def origin(url: str) -> Origin:
    """(scheme, host, port) of ``url``, lower-cased, the port filled in for http(s).

    Remembered: each request asks for its URL's origin several times (its host's health,
    its proxy, its credentials)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port or _DEFAULT_PORTS.get(scheme)


class Credentials:
    __slots__ = ("password", "username")
    username: Final[str]
    password: Final[str | None]

    def __init__(self, username: str, password: str | None = None) -> None:
        self.username = username
        self.password = password

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Credentials):
            return NotImplemented
        return self.username == other.username and self.password == other.password

    def __hash__(self) -> int:
        return hash((self.username, self.password))

    def authorization(self) -> str:
        import base64

        raw = f"{self.username}:{self.password or ''}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, password=****)"


@functools.lru_cache(maxsize=4096)
def split_credentials(url: str) -> tuple[str, Credentials | None]:
    """Separate the userinfo of ``url``: (url without it, credentials or None).

    Remembered: every page and file of an index asks for that of the index's URL."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, None
    creds = Credentials(
        unquote(parts.username or ""),
        unquote(parts.password) if parts.password is not None else None,
    )
    return redact(url), creds
