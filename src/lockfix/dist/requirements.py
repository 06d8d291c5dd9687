"""Requires-Dist lines and Requires-Python values of index data, read as uv reads them.

uv reads a requirement with ``packaging``'s grammar, and when that fails it retries after
a fixed series of repairs of common authoring mistakes (``bar>=1.0.*`` → ``bar>=1.0``,
``>=7.2.0<8.0.0`` → ``>=7.2.0,<8.0.0`` …; ``uv-pypi-types``' ``LenientRequirement`` and
``LenientVersionSpecifiers``), keeping the first form that parses. A lock uv wrote holds
the edges of such lines, so lockfix must read them the same way. In their markers uv
leaves out the comparisons it cannot evaluate (:meth:`Marker.parse_lenient`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import TYPE_CHECKING, Final, TypeVar

from packaging.specifiers import InvalidSpecifier, SpecifierSet

from lockfix.markers import InvalidMarker, Marker

if TYPE_CHECKING:
    from packaging.requirements import Requirement

__all__ = [
    "NameOnly",
    "parse_requirement",
    "parse_specifiers",
    "read_requirement",
    "requirement_marker",
    "unreadable_lines",
]


def _remove_stray_quotes(text: str) -> str:
    """``>= 2.7'`` → ``>= 2.7``; quotes after the ``;`` belong to the marker."""
    head, sep, marker = text.partition(";")
    return re.sub(r"['\"]", "", head) + sep + marker


# uv's repairs, in uv's order: each applies to what the ones before it left.
_FIXUPS: Final[tuple[Callable[[str], str], ...]] = (
    lambda s: re.sub(r"(\d)([<>=~^!])", r"\1,\2", s),  # missing comma
    lambda s: re.sub(r"!=~((?:\d\.)*\d)", r"!=\1.*", s),  # '!=~5.0' → '!=5.0.*'
    lambda s: re.sub(r"(<=|>=|<|>)\s*(\d+(\.\d+)*)\.\*", r"\1\2", s),  # '>=1.9.*' → '>=1.9'
    lambda s: re.sub(r"(\d\.\d)+\*", r"\1.*", s),  # '!=3.0*' → '!=3.0.*'
    lambda s: re.sub(r",\s*$", "", s),  # trailing comma
    lambda s: s.replace(">dev", ">0.0.0dev"),
    lambda s: re.sub(r"(\d+(\.\d)*(a|b|rc|post|dev)\d+)\.0", r"\1", s),  # '>=9.0.0a1.0'
    _remove_stray_quotes,
)

T = TypeVar("T")


def _with_fixups(text: str, parse: Callable[[str], T], errors: tuple[type[Exception], ...]) -> T:
    try:
        return parse(text)
    except errors as first:
        patched = text
        for fixup in _FIXUPS:
            fixed = fixup(patched)
            if fixed != patched:
                try:
                    return parse(fixed)
                except errors:
                    patched = fixed
        raise first from None


@lru_cache(maxsize=16384)
def parse_requirement(line: str) -> Requirement | None:
    """A Requires-Dist line as uv reads it (None: uv could not read it either). Shared
    between callers: do not modify.

    The wheel merge and the planner parse the same lines, and most wheels of a release
    declare the same ones."""
    # packaging's requirement grammar (its tokenizer compiles many patterns) is loaded by
    # the first line read: a check answered from stored facts may read none
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        return _with_fixups(line, Requirement, (InvalidRequirement,))
    except InvalidRequirement:
        return None


# A line that names a project, maybe with extras, and nothing else (``fastapi[standard]``, as
# a workspace member's request for extras reads). packaging's grammar reads such a line as
# that name and those extras, with no version, marker or URL; it is read here without that
# grammar, so that a check reading no other line never loads it. The pattern accepts a
# subset of what the grammar does: any other line goes to parse_requirement.
_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"
_NAME_ONLY = re.compile(rf"({_NAME})(?:\[((?:{_NAME}(?:,{_NAME})*)?)\])?")


class NameOnly:
    """What packaging's grammar reads from a line that is only a name and its extras."""

    __slots__ = ("name", "extras")
    url: str | None = None
    specifier: SpecifierSet = SpecifierSet()
    marker: None = None

    def __init__(self, name: str, extras: frozenset[str]) -> None:
        self.name = name
        self.extras = extras


def read_requirement(line: str) -> Requirement | NameOnly | None:
    """A Requires-Dist line as uv reads it, as :func:`parse_requirement` reads it; a line
    that is only a name and its extras is read without packaging's grammar."""
    plain = _NAME_ONLY.fullmatch(line)
    if plain is None:
        return parse_requirement(line)
    return NameOnly(plain[1], frozenset(plain[2].split(",")) if plain[2] else frozenset())


def requirement_marker(requirement: Requirement | NameOnly) -> Marker:
    """The requirement's marker as uv reads it. Raises InvalidMarker."""
    if requirement.marker is None:
        return Marker.TRUE
    return Marker.parse_lenient(str(requirement.marker))


@lru_cache(maxsize=4096)
def parse_specifiers(text: str) -> SpecifierSet | None:
    """A Requires-Python value (or any version specifiers) as uv reads it; None if
    unreadable."""
    try:
        return _with_fixups(text, SpecifierSet, (InvalidSpecifier,))
    except InvalidSpecifier:
        return None


@lru_cache(maxsize=65536)
def _readable(line: str) -> bool:
    requirement = read_requirement(line)
    if requirement is None:
        return False
    try:
        requirement_marker(requirement)
    except InvalidMarker:
        return False
    return True


def unreadable_lines(lines: Iterable[str]) -> list[str]:
    """The Requires-Dist lines lockfix cannot read. A package with one cannot be checked:
    what the line asks for is unknown, so no edge may count as missing or as extra."""
    return [line for line in lines if not _readable(line)]
