"""The project settings that decide where a package comes from: indexes, source pins, strategy.

Read from the ``pyproject.toml`` (``[tool.uv]``) and ``uv.toml`` beside the lock when they
exist; otherwise inferred from the lock itself.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from lockfix._toml import TOMLFileError, read_file
from lockfix.dist.names import canonicalize_name
from lockfix.lock.lockfile import Lock
from lockfix.markers import InvalidMarker, Marker

PYPI = "https://pypi.org/simple"


class ProjectError(ValueError):
    """``pyproject.toml`` or ``uv.toml`` cannot be read, or holds a value of the wrong type."""


class IndexSpec:
    __slots__ = ("default", "explicit", "flat", "name", "url")
    url: Final[str]
    name: Final[str | None]
    explicit: Final[bool]
    default: Final[bool]
    flat: Final[bool]

    def __init__(
        self,
        url: str,
        name: str | None = None,
        explicit: bool = False,
        default: bool = False,
        flat: bool = False,
    ) -> None:
        self.url = url
        self.name = name
        self.explicit = explicit
        self.default = default
        self.flat = flat

    def _key(self) -> tuple[object, ...]:
        return (self.url, self.name, self.explicit, self.default, self.flat)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, IndexSpec):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return "IndexSpec({!r}, name={!r}, explicit={}, default={}, flat={})".format(*self._key())


class SourcePin:
    """A ``[tool.uv.sources]`` entry that sends a name to a named index, maybe only in a scope."""

    __slots__ = ("extra", "group", "index", "marker")
    index: Final[str]
    marker: Final[str]
    extra: Final[str | None]
    group: Final[str | None]

    def __init__(
        self, index: str, marker: str = "", extra: str | None = None, group: str | None = None
    ) -> None:
        self.index = index
        self.marker = marker
        self.extra = extra
        self.group = group

    def _key(self) -> tuple[object, ...]:
        return (self.index, self.marker, self.extra, self.group)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SourcePin):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return "SourcePin({!r}, marker={!r}, extra={!r}, group={!r})".format(*self._key())


class ProjectConfig:
    __slots__ = (
        "exclude_newer",
        "exclude_newer_package",
        "index_strategy",
        "indexes",
        "inferred",
        "pins",
        "prerelease",
    )

    def __init__(
        self,
        indexes: list[IndexSpec] | None = None,
        pins: dict[str, list[SourcePin]] | None = None,
        index_strategy: str = "first-index",
        prerelease: str = "if-necessary-or-explicit",
        exclude_newer: str | None = None,
        # name → its own cutoff, or None where the project turned the cutoff off for it
        exclude_newer_package: dict[str, str | None] | None = None,
        inferred: bool = False,
    ) -> None:
        self.indexes: list[IndexSpec] = [] if indexes is None else indexes
        self.pins: dict[str, list[SourcePin]] = {} if pins is None else pins
        self.index_strategy = index_strategy
        self.prerelease = prerelease
        self.exclude_newer = exclude_newer
        self.exclude_newer_package: dict[str, str | None] = (
            {} if exclude_newer_package is None else exclude_newer_package
        )
        self.inferred = inferred

    def __repr__(self) -> str:
        return f"ProjectConfig(indexes={self.indexes!r}, pins={self.pins!r})"

    def cutoff(self, package: str) -> str | None:
        """The upload-time cutoff for a package: its own, else the project's."""
        name = canonicalize_name(package)
        if name in self.exclude_newer_package:
            return self.exclude_newer_package[name]
        return self.exclude_newer

    def index_url(self, name: str) -> str | None:
        for index in self.indexes:
            if index.name == name:
                return index.url
        return None

    def is_flat(self, url: str) -> bool:
        for index in self.indexes:  # a plain loop (no generator): asked for each package
            if index.flat and index.url.rstrip("/") == url.rstrip("/"):
                return True
        return False

    def index_names(self) -> dict[str, str]:
        """Index URL → index name, for credentials from ``UV_INDEX_<NAME>_*``."""
        return {i.url: i.name for i in self.indexes if i.name}

    def search_order(self, package: str) -> list[IndexSpec]:
        """The indexes uv would look in for a package no pin covers, in priority order."""
        pinned = [
            IndexSpec(url, name=pin.index)
            for pin in self.pins.get(canonicalize_name(package), [])
            if not (pin.marker or pin.extra or pin.group)
            and (url := self.index_url(pin.index)) is not None
        ]
        if pinned:
            return pinned[:1]
        ordered = [i for i in self.indexes if not i.explicit and not i.default]
        defaults = [i for i in self.indexes if i.default and not i.explicit]
        ordered.extend(defaults[:1] or [IndexSpec(PYPI, name="pypi", default=True)])
        return ordered


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def read_toml(path: Path) -> dict[str, Any]:
    try:
        return read_file(path)
    except TOMLFileError as error:
        raise ProjectError(str(error)) from None


def _kind(value: object) -> str:
    for kind, name in ((bool, "a boolean"), (int, "an integer"), (float, "a float")):
        if isinstance(value, kind):
            return name
    names = {str: "a string", list: "an array", dict: "a table"}
    return next((n for k, n in names.items() if isinstance(value, k)), "a date or time")


class _Checker:
    """Checks the types of the ``[tool.uv]`` (or ``uv.toml``) values lockfix reads."""

    def __init__(self, path: Path, prefix: str) -> None:
        self.path = path
        self.prefix = prefix

    def fail(self, key: str, wanted: str, value: object) -> ProjectError:
        return ProjectError(f"{self.path}: {self.prefix}{key} must be {wanted}, not {_kind(value)}")

    def table(self, value: object, key: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(key, "a table", value)
        return value

    def string(self, value: object, key: str) -> str:
        if not isinstance(value, str):
            raise self.fail(key, "a string", value)
        return value

    def boolean(self, value: object, key: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(key, "true or false", value)
        return value

    def marker(self, value: object, key: str) -> str:
        text = self.string(value, key)
        try:
            Marker.parse(text)
        except (InvalidMarker, RecursionError) as error:
            detail = str(error) if isinstance(error, InvalidMarker) else "nested too deeply"
            detail = detail if len(detail) <= 200 else detail[:199] + "…"
            raise ProjectError(f"{self.path}: {self.prefix}{key}: {detail}") from None
        return text

    def settings(self, settings: dict[str, Any]) -> dict[str, Any]:
        for i, entry in enumerate(_as_list(settings.get("index"))):
            entry = self.table(entry, f"index[{i}]")
            if "url" not in entry:
                raise ProjectError(f"{self.path}: {self.prefix}index[{i}] has no url")
            self.string(entry["url"], f"index[{i}].url")
            for key in ("name", "format"):
                if key in entry:
                    self.string(entry[key], f"index[{i}].{key}")
            for key in ("explicit", "default"):
                if key in entry:
                    self.boolean(entry[key], f"index[{i}].{key}")
        for i, url in enumerate(_as_list(settings.get("extra-index-url"))):
            self.string(url, f"extra-index-url[{i}]")
        for key in ("index-url", "index-strategy", "prerelease"):
            if settings.get(key) is not None:
                self.string(settings[key], key)
        exclude_newer = settings.get("exclude-newer")
        if exclude_newer is not None and isinstance(exclude_newer, list | dict | bool | int):
            raise self.fail("exclude-newer", "a date or time", exclude_newer)
        sources = self.table(settings.get("sources") or {}, "sources")
        for name, pins in sources.items():
            for i, pin in enumerate(_as_list(pins)):
                where = f"sources.{name}" + (f"[{i}]" if isinstance(pins, list) else "")
                pin = self.table(pin, where)
                for key in ("index", "extra", "group"):
                    if key in pin:
                        self.string(pin[key], f"{where}.{key}")
                if "marker" in pin:
                    self.marker(pin["marker"], f"{where}.marker")
        return settings


def _read_uv_settings(directory: Path) -> dict[str, Any]:
    """``[tool.uv]`` of the pyproject, overlaid on ``uv.toml`` (uv.toml wins, as in uv).

    :class:`ProjectError` when either file cannot be read or a value lockfix reads has the
    wrong type."""
    settings: dict[str, Any] = {}
    pyproject = directory / "pyproject.toml"
    if pyproject.is_file():
        top = _Checker(pyproject, "")
        tool = top.table(read_toml(pyproject).get("tool", {}), "[tool]")
        uv = top.table(tool.get("uv", {}), "[tool.uv]")
        settings.update(_Checker(pyproject, "[tool.uv] ").settings(uv))
    uv_toml = directory / "uv.toml"
    if uv_toml.is_file():
        settings.update(_Checker(uv_toml, "").settings(read_toml(uv_toml)))
    return settings


def load_config(directory: Path, lock: Lock) -> ProjectConfig:
    """Settings from the project beside the lock, else inferred from the lock."""
    settings = _read_uv_settings(directory)
    if not settings:
        return infer_config(lock)
    config = ProjectConfig()
    for entry in _as_list(settings.get("index")):
        config.indexes.append(
            IndexSpec(
                url=str(entry["url"]).rstrip("/")
                if not str(entry["url"]).endswith("/")
                else str(entry["url"]),
                name=entry.get("name"),
                explicit=bool(entry.get("explicit", False)),
                default=bool(entry.get("default", False)),
                flat=entry.get("format") == "flat",
            )
        )
    for url in _as_list(settings.get("extra-index-url")):
        config.indexes.append(IndexSpec(url))
    if settings.get("index-url"):
        config.indexes.append(IndexSpec(settings["index-url"], default=True))
    for name, pins in (settings.get("sources") or {}).items():
        for pin in _as_list(pins):
            if isinstance(pin, dict) and "index" in pin:
                config.pins.setdefault(canonicalize_name(name), []).append(
                    SourcePin(
                        index=pin["index"],
                        marker=pin.get("marker", ""),
                        extra=pin.get("extra"),
                        group=pin.get("group"),
                    )
                )
    config.index_strategy = settings.get("index-strategy", config.index_strategy)
    config.prerelease = settings.get("prerelease", config.prerelease)
    config.exclude_newer = _lock_cutoff(lock.options) or settings.get("exclude-newer")
    config.exclude_newer_package = _package_cutoffs(lock.options)
    return config


def infer_config(lock: Lock) -> ProjectConfig:
    """No project files: treat the registry most packages came from as the default index."""
    counts = Counter(p.source.location for p in lock.packages if p.source.is_registry)
    config = ProjectConfig(
        inferred=True,
        exclude_newer=_lock_cutoff(lock.options),
        exclude_newer_package=_package_cutoffs(lock.options),
    )
    for url, _ in counts.most_common():
        config.indexes.append(IndexSpec(url, explicit=True))
    if counts:
        default = counts.most_common(1)[0][0]
        config.indexes.append(IndexSpec(default, default=True))
    return config


@functools.cache
def _span() -> re.Pattern[str]:
    return re.compile(
        r"P(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
        r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+)S)?)?",
        re.IGNORECASE,
    )


def span_cutoff(span: str, now: datetime | None = None) -> str | None:
    """``now`` minus an ISO 8601 span such as ``P3D``, as uv resolves a relative
    exclude-newer (None: not a span lockfix reads)."""
    match = _span().fullmatch(span.strip())
    if match is None or not any(match.groupdict().values()):
        return None
    parts = {k: int(v or 0) for k, v in match.groupdict().items()}
    moment = (now or datetime.now(UTC)) - timedelta(
        weeks=parts["weeks"],
        days=parts["days"],
        hours=parts["hours"],
        minutes=parts["minutes"],
        seconds=parts["seconds"],
    )
    months = moment.year * 12 + moment.month - 1 - parts["years"] * 12 - parts["months"]
    year, month = divmod(months, 12)
    day = moment.day
    while True:
        try:
            moment = moment.replace(year=year, month=month + 1, day=day)
            break
        except ValueError:  # 31 March minus one month: the last day of February
            day -= 1
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _lock_cutoff(options: Mapping[str, Any]) -> str | None:
    """The lock's ``exclude-newer``. With ``exclude-newer-span`` uv ignores the timestamp
    beside it (a placeholder) and resolves the span from now."""
    span = options.get("exclude-newer-span")
    if isinstance(span, str):
        return span_cutoff(span)
    value = options.get("exclude-newer")
    return value if isinstance(value, str) else None


def _package_cutoffs(options: Mapping[str, Any]) -> dict[str, str | None]:
    """``[options.exclude-newer-package]``: a timestamp, ``{ timestamp, span }`` (the span
    counts, from now) or ``false`` (no cutoff for that package)."""
    table = options.get("exclude-newer-package")
    cutoffs: dict[str, str | None] = {}
    if not isinstance(table, Mapping):
        return cutoffs
    for name, value in table.items():
        if value is False:
            cutoffs[canonicalize_name(name)] = None
        elif isinstance(value, str):
            cutoffs[canonicalize_name(name)] = value
        elif isinstance(value, Mapping):
            span = value.get("span")
            stamp = span_cutoff(span) if isinstance(span, str) else None
            cutoffs[canonicalize_name(name)] = stamp or value.get("timestamp")
    return cutoffs
