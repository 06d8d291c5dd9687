"""lockfix's own errors, raised below the command line and shown by it."""

from __future__ import annotations

from lockfix.urls import redact


class InputError(Exception):
    """Bad input: the lock, a project file, a setting or an output path lockfix cannot use.

    The command line shows the message as one line and exits 2; nothing has been written.
    The message may quote a URL of the lock, credentials and all: it is redacted where shown.
    """


class IndexClientError(Exception):
    """Base class of everything the index layer raises for index/network problems."""


class ProjectNotFound(IndexClientError):
    """The index has no page for this project (404, or 403 as download.pytorch.org does)."""

    def __init__(self, name: str, url: str, status: int | None = None) -> None:
        self.name, self.url, self.status = name, redact(url), status
        how = f" (HTTP {status})" if status else ""
        super().__init__(f"project {name!r} not found on {self.url}{how}")


class IndexRequestError(IndexClientError):
    """Network or HTTP failure (after retries). ``url`` is always redacted."""

    def __init__(self, message: str, url: str, status: int | None = None) -> None:
        self.url, self.status = redact(url), status
        super().__init__(f"{message}: {self.url}" + (f" (HTTP {status})" if status else ""))


class IndexAuthError(IndexRequestError):
    """401 (or 403 on a file) — missing or rejected credentials."""


class FileUnavailable(IndexRequestError):
    """A listed file could not be downloaded (404/410 …)."""


class OfflineCacheMiss(IndexRequestError):
    """``offline=True`` and the cache cannot answer."""


class HashMismatch(IndexClientError):
    """Downloaded bytes do not match the expected hash — the file is not what was locked."""

    def __init__(self, url: str, algorithm: str, expected: str, actual: str) -> None:
        self.url, self.algorithm, self.expected, self.actual = (
            redact(url),
            algorithm,
            expected,
            actual,
        )
        super().__init__(
            f"hash mismatch for {self.url}: "
            f"expected {algorithm}:{expected}, got {algorithm}:{actual}"
        )
