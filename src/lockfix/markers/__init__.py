"""PEP 508 marker algebra: parse, combine, compare by meaning, simplify and print like uv.

Markers are canonical decision diagrams (see ``_bdd``): equal meaning is identity of
the underlying node, so ``==``/``hash`` are semantic and ``&``, ``|``, ``~`` are cheap.

Semantics follow uv:

* ``python_version`` is rewritten onto ``python_full_version``; version variables compare
  release segments only (``3.13.0rc1`` behaves as ``3.13``), trailing zeros ignored.
* ``platform_system`` values Windows/Darwin/Linux/AIX/Emscripten/Android become the
  corresponding ``sys_platform`` values.
* Every ``extra == 'x'`` is an independent boolean (the active extras form a set).
* ``in``/``not in`` against a string, and ordering comparisons on ``platform_release`` and
  ``platform_version``, are opaque boolean atoms; ``<``/``>`` on other string variables are
  false and ``<=``/``>=`` mean ``==`` (as in current PEP 508 and uv).

``str(Marker.FALSE)`` is ``python_version < '0'`` (what uv prints; it parses back to FALSE).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from typing import ClassVar, Final, Literal, final

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from lockfix.markers import _bdd as bdd
from lockfix.markers._dnf import cube, render, to_dnf
from lockfix.markers._parse import (
    InvalidMarker,
    _full_version_node,
    normalize_extra,
    parse_marker,
)

__all__ = [
    "InvalidMarker",
    "Marker",
    "conflict_extra",
    "normalize_extra",
    "parse_conflict_extra",
]

_text_cache: dict[bdd.Node, str] = {}
# the extras a node depends on: nodes are unique and immutable, so this never goes stale
_extras_cache: dict[bdd.Node, frozenset[str]] = {}
_normalized_extra = functools.lru_cache(maxsize=16384)(normalize_extra)


def _text(node: bdd.Node) -> str:
    text = _text_cache.get(node)
    if text is None:
        text = _text_cache[node] = render(to_dnf(node))
    return text


@final
class Marker:
    """An immutable PEP 508 marker; ``==`` and ``hash`` compare meaning."""

    __slots__ = ("_node",)

    TRUE: ClassVar[Marker]
    FALSE: ClassVar[Marker]

    _node: bdd.Node

    def __init__(self, node: bdd.Node) -> None:
        """Internal; use :meth:`parse`."""
        if not isinstance(node, bdd.Node):
            raise TypeError("use Marker.parse(text) to build a Marker")
        object.__setattr__(self, "_node", node)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Marker is immutable")

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (Marker.parse, (str(self),))

    @classmethod
    def parse(cls, text: str) -> Marker:
        """Parse PEP 508 marker text; empty or blank text is TRUE.  Raises InvalidMarker."""
        return _parse_cached(text)

    @classmethod
    def parse_lenient(cls, text: str) -> Marker:
        """Parse a marker of index metadata as uv reads it: a comparison uv ignores (a value
        that is not a version, such as ``python_version != "3.13t"``; two literals; ``~=``
        on a string) is left out of its ``and``/``or``, and a marker of nothing else is
        TRUE. Raises InvalidMarker on what uv rejects too (bad syntax, unknown variables)."""
        return _parse_lenient_cached(text)

    @classmethod
    def from_requires_python(cls, requires_python: str | SpecifierSet) -> Marker:
        """The ``python_full_version`` range of a requires-python specifier set."""
        specs = (
            requires_python
            if isinstance(requires_python, SpecifierSet)
            else SpecifierSet(requires_python)
        )
        node = bdd.TRUE
        for spec in specs:
            version = spec.version
            star = version.endswith(".*")
            release = Version(version[:-2] if star else version).release
            node = bdd.and_(
                node, _full_version_node("python_full_version", spec.operator, release, star)
            )
        return Marker(node)

    def __and__(self, other: Marker) -> Marker:
        if not isinstance(other, Marker):
            return NotImplemented
        return self._same(bdd.and_(self._node, other._node), other)

    def __or__(self, other: Marker) -> Marker:
        if not isinstance(other, Marker):
            return NotImplemented
        return self._same(bdd.or_(self._node, other._node), other)

    def _same(self, node: bdd.Node, other: Marker) -> Marker:
        """The marker of ``node``: one of the operands where it is theirs (no new object)."""
        if node is self._node:
            return self
        if node is other._node:
            return other
        return Marker(node)

    def __invert__(self) -> Marker:
        return Marker(bdd.not_(self._node))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Marker):
            return NotImplemented
        return self._node is other._node

    def __hash__(self) -> int:
        return hash(self._node)

    def is_true(self) -> bool:
        return self._node is bdd.TRUE

    def is_false(self) -> bool:
        return self._node is bdd.FALSE

    def implies(self, other: Marker) -> bool:
        """True iff every environment satisfying ``self`` satisfies ``other``."""
        return bdd.and_(self._node, bdd.not_(other._node)) is bdd.FALSE

    def is_disjoint(self, other: Marker) -> bool:
        return bdd.and_(self._node, other._node) is bdd.FALSE

    def evaluate(self, env: Mapping[str, str], extras: Iterable[str] = ()) -> bool:
        """Evaluate against PEP 508 environment values and a set of active extras.

        ``python_version`` is derived from ``python_full_version`` when missing (and vice
        versa).  Raises KeyError when a variable the marker needs is missing.
        """

        def lookup(name: str) -> str:
            value = env.get(name)
            if value is not None:
                return value
            if name == "python_version" and "python_full_version" in env:
                return ".".join(env["python_full_version"].split(".")[:2])
            if name == "python_full_version" and "python_version" in env:
                return env["python_version"]
            raise KeyError(f"marker variable {name!r} is missing from the environment")

        if isinstance(extras, str):
            extras = (extras,)
        active = frozenset(normalize_extra(e) for e in extras)
        return bdd.evaluate(self._node, lookup, active)

    def simplify_python(self, requires_python: str | SpecifierSet) -> Marker:
        """Simplify assuming python_full_version lies in the requires-python range."""
        return self.simplify_under(Marker.from_requires_python(requires_python))

    def simplify_under(self, assumption: Marker) -> Marker:
        """Some ``m`` with ``m & assumption == self & assumption``, printed no longer than self.

        Returns FALSE exactly when ``self & assumption`` is FALSE, else TRUE exactly when the
        assumption implies ``self``.
        """
        f = self._node
        care = assumption._node
        if care is bdd.TRUE:
            return self
        both = bdd.and_(f, care)
        if both is bdd.FALSE:
            return Marker.FALSE
        if both is care:
            return Marker.TRUE
        restricted = bdd.restrict(f, care)
        candidates = [restricted]
        if restricted.var is not None:
            candidates.append(bdd.or_all(cube(c) for c in to_dnf(f, bdd.not_(care))))
        candidates.append(f)
        best = min(candidates, key=lambda n: len(_text(n)))
        return Marker(best)

    def without_extras(self) -> Marker:
        """Existentially quantify away every extra variable."""
        return Marker(bdd.without_extras(self._node))

    def only_extras(self) -> Marker:
        """Existentially quantify away every variable except extras."""
        return Marker(bdd.only_extras(self._node))

    def restrict_extras(self, active: Iterable[str] = (), inactive: Iterable[str] = ()) -> Marker:
        """Substitute the given extras as active (true) / inactive (false)."""
        mentioned = self.extras()
        if not mentioned:
            return self  # nothing to substitute
        # only the extras the marker depends on change it; an extra both given as active
        # and as inactive is active
        values: dict[str, bool] = {}
        for names, value in ((inactive, False), (active, True)):
            for e in names:
                name = _normalized_extra(e)
                if name in mentioned:
                    values[name] = value
        if not values:
            return self
        return Marker(bdd.restrict_extras(self._node, values))

    def extras(self) -> frozenset[str]:
        """Normalised names of the extras this marker depends on."""
        names = _extras_cache.get(self._node)
        if names is None:
            names = _extras_cache[self._node] = bdd.extra_names(self._node)
        return names

    def __str__(self) -> str:
        return _text(self._node)

    def __repr__(self) -> str:
        return f"Marker({str(self)!r})"


Marker.TRUE = Marker(bdd.TRUE)
Marker.FALSE = Marker(bdd.FALSE)


@functools.lru_cache(maxsize=16384)
def _parse_cached(text: str) -> Marker:
    return Marker(parse_marker(text))


@functools.lru_cache(maxsize=16384)
def _parse_lenient_cached(text: str) -> Marker:
    return Marker(parse_marker(text, lenient=True))


@functools.cache
def _conflict_re() -> re.Pattern[str]:
    return re.compile(r"(extra|group|project)-(\d+)-(.+)")


_NAME_RE: Final = re.compile(r"[-_.]+")


def _normalize_package(name: str) -> str:
    return _NAME_RE.sub("-", name).lower()


def conflict_extra(
    kind: Literal["extra", "group", "project"], package: str, name: str | None
) -> str:
    """uv's pseudo-extra encoding a conflict item, e.g. ``group-5-debug-cpu``.

    The number is the byte length of the normalised package name.
    """
    package = _normalize_package(package)
    prefix = f"{kind}-{len(package.encode())}-{package}"
    if kind == "project":
        if name is not None:
            raise ValueError("a 'project' conflict item has no name")
        return prefix
    if kind not in ("extra", "group"):
        raise ValueError(f"unknown conflict kind {kind!r}")
    if not name:
        raise ValueError(f"a {kind!r} conflict item needs a name")
    return f"{prefix}-{normalize_extra(name)}"


def parse_conflict_extra(extra: str) -> tuple[str, str, str | None] | None:
    """Inverse of :func:`conflict_extra`: ``(kind, package, name)``, or None if not one."""
    m = _conflict_re().fullmatch(normalize_extra(extra))
    if m is None:
        return None
    kind, length, rest = m.group(1), int(m.group(2)), m.group(3).encode()
    if length == 0 or len(rest) < length:
        return None
    package = rest[:length].decode(errors="replace")
    if package.startswith("-") or package.endswith("-"):
        return None
    if kind == "project":
        return (kind, package, None) if len(rest) == length else None
    if len(rest) < length + 2 or rest[length : length + 1] != b"-":
        return None
    return (kind, package, rest[length + 1 :].decode(errors="replace"))
