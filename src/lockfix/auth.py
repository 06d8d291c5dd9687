"""Index credentials, as uv finds them, and URL redaction.

Sources, in uv's order: ``UV_INDEX_<NAME>_USERNAME`` / ``_PASSWORD`` for a named index,
credentials embedded in the index URL, then netrc (``NETRC`` or ``~/.netrc``). Index
credentials are only ever sent to the index's own scheme+host+port; netrc entries are
keyed by host, as netrc defines them.
"""

from __future__ import annotations

import base64
import logging
import netrc
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

log = logging.getLogger(__name__)

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
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^/\s?#\"'<>]*)@")
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
    return _USERINFO.sub(_mask, text)


Origin = tuple[str, str, int | None]


def origin(url: str) -> Origin:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port or _DEFAULT_PORTS.get(scheme)


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str | None = field(default=None, repr=False)

    def authorization(self) -> str:
        raw = f"{self.username}:{self.password or ''}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, password=****)"


def split_credentials(url: str) -> tuple[str, Credentials | None]:
    """Separate the userinfo of ``url``: (url without it, credentials or None)."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, None
    creds = Credentials(
        unquote(parts.username or ""),
        unquote(parts.password) if parts.password is not None else None,
    )
    return redact(url), creds


def env_var_prefix(index_name: str) -> str:
    """``UV_INDEX_<NAME>``: upper-cased, every non-alphanumeric character turned into ``_``."""
    return "UV_INDEX_" + re.sub(r"[^A-Z0-9]", "_", index_name.upper())


@dataclass
class _IndexEntry:
    url: str  # without credentials
    origin: Origin
    path: str
    credentials: Credentials


class CredentialProvider:
    """Finds the credentials to send with a request URL.

    ``index_names`` maps index URL → index name (for the ``UV_INDEX_<NAME>_*`` variables).
    ``env`` defaults to ``os.environ``; ``netrc_path=False`` disables netrc.
    """

    def __init__(
        self,
        index_names: Mapping[str, str] | None = None,
        *,
        env: Mapping[str, str] | None = None,
        netrc_path: Path | str | bool | None = None,
    ) -> None:
        self._env = os.environ if env is None else env
        self._entries: list[_IndexEntry] = []
        self._netrc: netrc.netrc | None = None
        self._netrc_loaded = netrc_path is False
        self._netrc_path = None if netrc_path in (None, True, False) else Path(str(netrc_path))
        for url, name in (index_names or {}).items():
            self.register_index(url, name)

    def register_index(self, url: str, name: str | None = None) -> str:
        """Remember the index's credentials (env for ``name``, else embedded in ``url``).

        Returns the URL without credentials."""
        clean, creds = split_credentials(url)
        if name:
            prefix = env_var_prefix(name)
            user = self._env.get(f"{prefix}_USERNAME")
            password = self._env.get(f"{prefix}_PASSWORD")
            if user or password:
                creds = Credentials(user or "", password)
        if creds is not None and creds.password is None:
            # Username only (e.g. in the URL): uv completes it from netrc.
            from_netrc = self._from_netrc(clean)
            if from_netrc is not None and from_netrc.username == creds.username:
                creds = from_netrc
        if creds is not None:
            parts = urlsplit(clean)
            entry = _IndexEntry(clean, origin(clean), parts.path.rstrip("/") + "/", creds)
            self._entries = [e for e in self._entries if e.url != clean]
            self._entries.append(entry)
        return clean

    def for_url(self, url: str) -> Credentials | None:
        """Credentials for a request to ``url`` (which must carry no userinfo itself)."""
        target = origin(url)
        path = urlsplit(url).path
        same_origin = [e for e in self._entries if e.origin == target]
        if same_origin:
            # The index whose path prefixes the URL wins; any index on the same origin otherwise
            # (files are often served from another path of the index host).
            best = max(same_origin, key=lambda e: (path.startswith(e.path), len(e.path)))
            return best.credentials
        return self._from_netrc(url)

    def _load_netrc(self) -> netrc.netrc | None:
        if not self._netrc_loaded:
            self._netrc_loaded = True
            path = self._netrc_path
            if path is None:
                env_path = self._env.get("NETRC")
                path = Path(env_path) if env_path else Path.home() / ".netrc"
            if path.is_file():
                try:
                    self._netrc = netrc.netrc(str(path))
                except (netrc.NetrcParseError, OSError, UnicodeDecodeError) as e:
                    # Never echo the file content: the parse error message may quote it.
                    log.warning("ignoring unreadable netrc file %s (%s)", path, type(e).__name__)
        return self._netrc

    def _from_netrc(self, url: str) -> Credentials | None:
        rc = self._load_netrc()
        host = urlsplit(url).hostname
        if rc is None or not host:
            return None
        found = rc.authenticators(host)
        if not found:
            return None
        login, _account, password = found
        return Credentials(login or "", password or None)
