"""Index credentials, as uv finds them.

Sources, in uv's order: ``UV_INDEX_<NAME>_USERNAME`` / ``_PASSWORD`` for a named index,
credentials embedded in the index URL, then netrc (``NETRC`` or ``~/.netrc``). Index
credentials are only ever sent to the index's own scheme+host+port; netrc entries are
keyed by host, as netrc defines them.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from lockfix.urls import Credentials, Origin, origin, split_credentials

if TYPE_CHECKING:
    import netrc

log = logging.getLogger(__name__)


def env_var_prefix(index_name: str) -> str:
    """``UV_INDEX_<NAME>``: upper-cased, every non-alphanumeric character turned into ``_``."""
    return "UV_INDEX_" + re.sub(r"[^A-Z0-9]", "_", index_name.upper())


class _IndexEntry:
    __slots__ = ("credentials", "origin", "path", "url")

    def __init__(self, url: str, origin: Origin, path: str, credentials: Credentials) -> None:
        self.url = url  # without credentials
        self.origin = origin
        self.path = path
        self.credentials = credentials


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
        same_origin = [e for e in self._entries if e.origin == target]
        if same_origin:
            path = urlsplit(url).path
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
                import netrc  # only where an index needs credentials

                try:
                    self._netrc = netrc.netrc(str(path))
                except (netrc.NetrcParseError, OSError, UnicodeDecodeError) as e:
                    # Never echo the file content: the parse error message may quote it.
                    log.warning("ignoring unreadable netrc file %s (%s)", path, type(e).__name__)
        return self._netrc

    def _from_netrc(self, url: str) -> Credentials | None:
        rc = self._load_netrc()
        if rc is None:
            return None
        host = urlsplit(url).hostname
        if not host:
            return None
        found = rc.authenticators(host)
        if not found:
            return None
        login, _account, password = found
        return Credentials(login or "", password or None)
