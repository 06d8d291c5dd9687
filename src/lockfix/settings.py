"""lockfix's own settings: ``[tool.lockfix]`` beside the lock, environment, command line.

Precedence: command line > environment (``LOCKFIX_*``) > ``[tool.lockfix]`` > defaults.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Final

from lockfix._toml import TOMLFileError, read_file
from lockfix.dist.names import canonicalize_name

DEFAULT_CONCURRENCY = 50
# Freshness of an index page whose response says nothing (no Cache-Control max-age, no
# Expires); PyPI sends max-age=600. LOCKFIX_PAGE_TTL overrides it, 0 revalidates every run.
DEFAULT_PAGE_TTL = 600.0
PROCESSES = ("1", "2")  # LOCKFIX_PROCESSES: never a second process, always one
KNOWN_KEYS = ("skip-packages", "skip-indexes", "concurrency", "per-wheel")


class SettingsError(ValueError):
    """``[tool.lockfix]`` or a ``LOCKFIX_*`` variable holds a value lockfix cannot use."""


class FileSettings:
    __slots__ = ("concurrency", "per_wheel", "skip_indexes", "skip_packages", "unknown")

    def __init__(
        self,
        skip_packages: frozenset[str] = frozenset(),
        skip_indexes: frozenset[str] = frozenset(),
        concurrency: int | None = None,
        per_wheel: bool | None = None,
        unknown: list[str] | None = None,
    ) -> None:
        self.skip_packages = skip_packages
        self.skip_indexes = skip_indexes
        self.concurrency = concurrency
        self.per_wheel = per_wheel
        self.unknown: list[str] = [] if unknown is None else unknown


def _string_list(table: dict[str, Any], key: str, where: Path) -> list[str]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SettingsError(f"{where}: [tool.lockfix] {key} must be a list of strings")
    return value


def _concurrency(value: Any, where: str) -> int:
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise SettingsError(f"{where} must be an integer, not {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 256:
        raise SettingsError(f"{where} must be an integer from 1 to 256, not {value!r}")
    return value


def load_file_settings(directory: Path) -> FileSettings:
    """``[tool.lockfix]`` of the ``pyproject.toml`` in ``directory`` (defaults when absent)."""
    pyproject = directory / "pyproject.toml"
    if not pyproject.is_file():
        return FileSettings()
    try:
        document = read_file(pyproject)
    except TOMLFileError as error:
        raise SettingsError(str(error)) from None
    tool = document.get("tool", {})
    if not isinstance(tool, dict):
        raise SettingsError(f"{pyproject}: [tool] must be a table")
    table = tool.get("lockfix", {})
    if not isinstance(table, dict):
        raise SettingsError(f"{pyproject}: [tool.lockfix] must be a table")
    settings = FileSettings(
        skip_packages=frozenset(
            canonicalize_name(n) for n in _string_list(table, "skip-packages", pyproject)
        ),
        skip_indexes=frozenset(
            u.rstrip("/") for u in _string_list(table, "skip-indexes", pyproject)
        ),
        unknown=sorted(k for k in table if k not in KNOWN_KEYS),
    )
    if "concurrency" in table:
        settings.concurrency = _concurrency(
            table["concurrency"], f"{pyproject}: [tool.lockfix] concurrency"
        )
    if "per-wheel" in table:
        if not isinstance(table["per-wheel"], bool):
            raise SettingsError(f"{pyproject}: [tool.lockfix] per-wheel must be true or false")
        settings.per_wheel = table["per-wheel"]
    return settings


class Settings:
    """What a check or a repair runs with, besides the lock: the one settings object the
    pipeline (:mod:`lockfix.engine`) takes, resolved by :func:`resolve`."""

    __slots__ = (
        "cache_dir",
        "concurrency",
        "keep_going",
        "no_cache",
        "offline",
        "package_facts",
        "per_wheel",
        "skip_indexes",
        "skip_packages",
        "timeout",
        "write",
    )
    cache_dir: Final[Path | None]
    no_cache: Final[bool]
    offline: Final[bool]
    concurrency: Final[int]
    timeout: Final[float | None]
    # wheels that disagree: merge every locked wheel's metadata (False: uv's one-wheel view)
    per_wheel: Final[bool]
    # the run writes a lock (repair): a package that could not be verified (index or
    # network failure) then stops it with nothing written, unless keep_going, with which
    # it writes what was verified and leaves the rest
    write: Final[bool]
    keep_going: Final[bool]
    # [tool.lockfix]: packages (canonical names) and index URLs left unverified, not failed
    skip_packages: Final[frozenset[str]]
    skip_indexes: Final[frozenset[str]]
    # reuse what earlier runs learned about unchanged packages (lockfix.facts)
    package_facts: Final[bool]

    def __init__(
        self,
        cache_dir: Path | None = None,
        no_cache: bool = False,
        offline: bool = False,
        concurrency: int = DEFAULT_CONCURRENCY,
        timeout: float | None = None,
        per_wheel: bool = True,
        write: bool = False,
        keep_going: bool = False,
        skip_packages: frozenset[str] = frozenset(),
        skip_indexes: frozenset[str] = frozenset(),
        package_facts: bool = True,
    ) -> None:
        self.cache_dir = cache_dir
        self.no_cache = no_cache
        self.offline = offline
        self.concurrency = concurrency
        self.timeout = timeout
        self.per_wheel = per_wheel
        self.write = write
        self.keep_going = keep_going
        self.skip_packages = skip_packages
        self.skip_indexes = skip_indexes
        self.package_facts = package_facts

    def _key(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Settings):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"Settings({fields})"


def resolve(
    file: FileSettings,
    *,
    cache_dir: Path | None = None,
    no_cache: bool = False,
    offline: bool = False,
    concurrency: int | None = None,
    single_wheel: bool = False,
    write: bool = False,
    keep_going: bool = False,
    package_facts: bool = True,
) -> Settings:
    """The settings of a run: the command line's values over the environment's, over
    ``file`` (the project's ``[tool.lockfix]``), over the defaults."""
    return Settings(
        cache_dir=cache_dir,
        no_cache=no_cache,
        offline=offline,
        concurrency=resolve_concurrency(concurrency, file),
        per_wheel=not single_wheel and file.per_wheel is not False,
        write=write,
        keep_going=keep_going,
        skip_packages=file.skip_packages,
        skip_indexes=file.skip_indexes,
        package_facts=package_facts,
    )


def resolve_concurrency(cli: int | None, file: FileSettings) -> int:
    """The command line, then ``LOCKFIX_CONCURRENCY``, then the file, then the default."""
    if cli is not None:
        return cli
    environment = os.environ.get("LOCKFIX_CONCURRENCY")
    if environment:
        return _concurrency(environment, "LOCKFIX_CONCURRENCY")
    return file.concurrency or DEFAULT_CONCURRENCY


def page_ttl() -> float:
    """``LOCKFIX_PAGE_TTL``: seconds (finite, 0 or more), or the default when unset."""
    raw = os.environ.get("LOCKFIX_PAGE_TTL", "").strip()
    if not raw:
        return DEFAULT_PAGE_TTL
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise SettingsError(f"LOCKFIX_PAGE_TTL must be a number of seconds, 0 or more, not {raw!r}")
    return value


def check_environment() -> None:
    """Raise :class:`SettingsError` for a ``LOCKFIX_*`` value lockfix cannot use.

    ``LOCKFIX_CONCURRENCY`` is checked where it is used: the command line overrides it."""
    page_ttl()
    raw = os.environ.get("LOCKFIX_PROCESSES", "").strip()
    if raw and raw not in PROCESSES:
        raise SettingsError(f"LOCKFIX_PROCESSES must be 1 or 2, not {raw!r}")
