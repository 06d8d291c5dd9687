"""The project settings that decide where a package comes from: indexes, source pins, strategy.

Read from the ``pyproject.toml`` (``[tool.uv]``) and ``uv.toml`` beside the lock when they
exist; otherwise inferred from the lock itself.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import tomllib
from packaging.utils import canonicalize_name

from lockfix.lockfile import Lock

PYPI = "https://pypi.org/simple"


@dataclass(frozen=True, slots=True)
class IndexSpec:
    url: str
    name: str | None = None
    explicit: bool = False
    default: bool = False
    flat: bool = False


@dataclass(frozen=True, slots=True)
class SourcePin:
    """A ``[tool.uv.sources]`` entry that sends a name to a named index, maybe only in a scope."""

    index: str
    marker: str = ""
    extra: str | None = None
    group: str | None = None


@dataclass(slots=True)
class ProjectConfig:
    indexes: list[IndexSpec] = field(default_factory=list)
    pins: dict[str, list[SourcePin]] = field(default_factory=dict)
    index_strategy: str = "first-index"
    prerelease: str = "if-necessary-or-explicit"
    exclude_newer: str | None = None
    # name → its own cutoff, or None where the project turned the cutoff off for it
    exclude_newer_package: dict[str, str | None] = field(default_factory=dict)
    inferred: bool = False

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
        return any(i.flat and i.url.rstrip("/") == url.rstrip("/") for i in self.indexes)

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


def _read_uv_settings(directory: Path) -> dict[str, Any]:
    """``[tool.uv]`` of the pyproject, overlaid on ``uv.toml`` (uv.toml wins, as in uv)."""
    settings: dict[str, Any] = {}
    pyproject = directory / "pyproject.toml"
    if pyproject.is_file():
        with pyproject.open("rb") as handle:
            settings.update(tomllib.load(handle).get("tool", {}).get("uv", {}))
    uv_toml = directory / "uv.toml"
    if uv_toml.is_file():
        with uv_toml.open("rb") as handle:
            settings.update(tomllib.load(handle))
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


_SPAN = re.compile(
    r"P(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+)S)?)?",
    re.IGNORECASE,
)


def span_cutoff(span: str, now: datetime | None = None) -> str | None:
    """``now`` minus an ISO 8601 span such as ``P3D``, as uv resolves a relative
    exclude-newer (None: not a span lockfix reads)."""
    match = _SPAN.fullmatch(span.strip())
    if match is None or not any(match.groupdict().values()):
        return None
    parts = {k: int(v or 0) for k, v in match.groupdict().items()}
    moment = (now or datetime.now(timezone.utc)) - timedelta(
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
