"""PEP 508 marker parser producing decision-diagram nodes directly."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Final

from packaging.version import InvalidVersion, Version

from lockfix.markers._bdd import (
    ATOM_CONTAINS,
    ATOM_GE,
    ATOM_IN,
    ATOM_LE,
    BOOL,
    FALSE,
    STRING_VARS,
    TRUE,
    VERSION_VARS,
    Node,
    Release,
    TooComplex,
    and_,
    atom_var,
    extra_var,
    limit_steps,
    literal,
    not_,
    or_,
    or_all,
    string_eq,
    string_var,
    version_cells,
    version_var,
)


class InvalidMarker(ValueError):
    """A marker string that is not valid PEP 508 (or uses an unsupported form)."""

    __module__ = "lockfix.markers"


_EXTRA_SEP_RE: Final = re.compile(r"[-_.]+")

# Bounds on one marker, far above what real locks and indexes hold (the longest marker in
# 31 real locks: 8.6 kB, 944 tokens, 10 extras and atoms, 3 levels of parentheses). They
# keep the work of a hostile marker bounded: parsing is O(n log n) in the number of
# clauses, but each extra or atom adds a level to the decision diagram, and operations on
# it recurse that deep.
MAX_MARKER_LENGTH: Final = 65536  # characters
MAX_BOOLEAN_VARIABLES: Final = 128  # distinct extras and opaque atoms in one marker
MAX_NESTING: Final = 64  # levels of parentheses
STEPS_BASE: Final = 1000  # decision-diagram apply steps, plus STEPS_PER_TOKEN per token
STEPS_PER_TOKEN: Final = 8


@functools.lru_cache(maxsize=4096)
def normalize_extra(name: str) -> str:
    """PEP 685 normalisation: lowercase, runs of ``-_.`` become ``-``."""
    return _EXTRA_SEP_RE.sub("-", name).lower()


_TOKEN_RE: Final = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<lp>\()
  | (?P<rp>\))
  | (?P<str>'[^']*'|"[^"]*")
  | (?P<op>===|==|!=|<=|>=|~=|<|>|not\s+in(?![\w.])|in(?![\w.]))
  | (?P<bool>and(?![\w.])|or(?![\w.]))
  | (?P<name>[A-Za-z_][\w.]*)
    """,
    re.VERBOSE,
)

_ALIASES: Final = {
    "os.name": "os_name",
    "sys.platform": "sys_platform",
    "platform.version": "platform_version",
    "platform.machine": "platform_machine",
    "platform.python_implementation": "platform_python_implementation",
    "python_implementation": "platform_python_implementation",
}
_FLIP: Final = {"<": ">", ">": "<", "<=": ">=", ">=": "<=", "==": "==", "!=": "!=", "===": "==="}
_PLATFORM_SYSTEM: Final = {
    "Windows": "win32",
    "Darwin": "darwin",
    "Linux": "linux",
    "AIX": "aix",
    "Emscripten": "emscripten",
    "Android": "android",
}
_VERSIONISH_STRINGS: Final = ("platform_release", "platform_version")
# PEP 751's list variables: only ``'name' in extras`` and ``'name' not in extras``; uv
# writes them into a lock as a dependency declares them
_LIST_VARS: Final = ("extras", "dependency_groups")


def _balanced(op: Callable[[Node, Node], Node], nodes: list[Node]) -> Node:
    """``op`` over ``nodes`` as a balanced tree: operands of similar size meet, so a chain
    of n clauses costs O(n log n) label merges rather than the O(n²) of a left fold."""
    while len(nodes) > 1:
        paired = [op(nodes[i], nodes[i + 1]) for i in range(0, len(nodes) - 1, 2)]
        if len(nodes) % 2:
            paired.append(nodes[-1])
        nodes = paired
    return nodes[0]


class _Parser:
    __slots__ = ("booleans", "depth", "lenient", "pos", "text", "tokens")

    def __init__(self, text: str, lenient: bool = False) -> None:
        self.text = text
        self.lenient = lenient
        if len(text) > MAX_MARKER_LENGTH:
            raise self.error(f"{len(text)} characters, more than {MAX_MARKER_LENGTH}", None)
        self.depth = 0
        self.booleans: set[object] = set()
        self.tokens: list[tuple[str, str, int]] = []
        pos = 0
        while pos < len(text):
            m = _TOKEN_RE.match(text, pos)
            if m is None:
                raise self.error(f"unexpected character {text[pos]!r}", pos)
            kind = m.lastgroup
            assert kind is not None
            if kind != "ws":
                self.tokens.append((kind, m.group(), pos))
            pos = m.end()
        self.tokens.append(("end", "", len(text)))
        self.pos = 0

    def error(self, message: str, pos: int | None) -> InvalidMarker:
        text = self.text if len(self.text) <= 60 else f"{self.text[:60]}..."
        where = "" if pos is None else f" at position {pos}"
        return InvalidMarker(f"invalid marker {text!r}: {message}{where}")

    def peek(self) -> tuple[str, str, int]:
        return self.tokens[self.pos]

    def take(self) -> tuple[str, str, int]:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def parse(self) -> Node:
        node = self.parse_or()
        kind, value, pos = self.peek()
        if kind != "end":
            raise self.error(f"expected 'and', 'or' or end of marker, found {value!r}", pos)
        return TRUE if node is None else node

    # In lenient mode a comparison uv ignores (see :meth:`comparison`) is None, and an
    # 'and' or 'or' leaves it out, as uv does; a marker of nothing else is TRUE.

    def parse_or(self) -> Node | None:
        nodes = [self.parse_and()]
        while self.peek()[:2] == ("bool", "or"):
            self.take()
            nodes.append(self.parse_and())
        kept = [node for node in nodes if node is not None]
        return _balanced(or_, kept) if kept else None

    def parse_and(self) -> Node | None:
        nodes = [self.parse_atom()]
        while self.peek()[:2] == ("bool", "and"):
            self.take()
            nodes.append(self.parse_atom())
        kept = [node for node in nodes if node is not None]
        return _balanced(and_, kept) if kept else None

    def parse_atom(self) -> Node | None:
        kind, value, pos = self.peek()
        if kind == "lp":
            if self.depth == MAX_NESTING:
                raise self.error(f"more than {MAX_NESTING} levels of parentheses", pos)
            self.take()
            self.depth += 1
            node = self.parse_or()
            self.depth -= 1
            kind, value, pos = self.take()
            if kind != "rp":
                raise self.error(f"expected ')', found {value or 'end of marker'!r}", pos)
            return node
        lhs = self.take_value()
        kind, op, op_pos = self.take()
        if kind != "op":
            raise self.error(
                f"expected a comparison operator, found {op or 'end of marker'!r}", op_pos
            )
        rhs = self.take_value()
        try:
            node = self.comparison(lhs, " ".join(op.split()), rhs, pos)
        except InvalidMarker:
            if not self.lenient:
                raise
            # uv warns and ignores a comparison it cannot evaluate: a value that is not a
            # version (torch nightlies: python_version != "3.13t"), two literals or two
            # variables, '~=' on a string, an operator 'extra' does not take
            return None
        if node.var is not None and node.var.kind == BOOL:
            self.booleans.add(node.var)
            if len(self.booleans) > MAX_BOOLEAN_VARIABLES:
                raise self.error(
                    f"more than {MAX_BOOLEAN_VARIABLES} distinct extras and atoms", pos
                )
        return node

    def take_value(self) -> tuple[str, str]:
        kind, value, pos = self.take()
        if kind == "str":
            return ("str", value[1:-1])
        if kind == "name":
            name = _ALIASES.get(value, value)
            if (
                name not in VERSION_VARS
                and name not in STRING_VARS
                and name not in ("python_version", "extra")
                and name not in _LIST_VARS
            ):
                raise self.error(f"unknown marker variable {value!r}", pos)
            return ("name", name)
        raise self.error(
            f"expected a marker variable or quoted string, found {value or 'end of marker'!r}", pos
        )

    def comparison(self, lhs: tuple[str, str], op: str, rhs: tuple[str, str], pos: int) -> Node:
        if lhs[0] == rhs[0]:
            what = "two variables" if lhs[0] == "name" else "two literals"
            raise self.error(f"comparison between {what}", pos)
        if (rhs[0] == "name" and rhs[1] in _LIST_VARS) or (
            lhs[0] == "name" and lhs[1] in _LIST_VARS
        ):
            if lhs[0] != "str" or op not in ("in", "not in"):
                var = lhs[1] if lhs[0] == "name" else rhs[1]
                raise self.error(f"{var!r} takes only 'NAME' in {var} or 'NAME' not in {var}", pos)
            node = literal(atom_var(ATOM_CONTAINS, rhs[1], normalize_extra(lhs[1])))
            return node if op == "in" else not_(node)
        if lhs[0] == "str":
            key, value = rhs[1], lhs[1]
            if op in ("in", "not in"):
                if key == "extra":
                    raise self.error("'in' is not supported on 'extra'", pos)
                node = literal(atom_var(ATOM_CONTAINS, key, value))
                return node if op == "in" else not_(node)
            if op == "~=":
                raise self.error("'~=' with the variable on the right", pos)
            op = _FLIP[op]
        else:
            key, value = lhs[1], rhs[1]
        try:
            if key == "extra":
                return self.extra(op, value, pos)
            if key in VERSION_VARS or key == "python_version":
                return self.version(key, op, value, pos)
            return self.string(key, op, value, pos)
        except InvalidVersion as exc:
            raise self.error(f"invalid version {value!r} ({exc})", pos) from None

    def extra(self, op: str, value: str, pos: int) -> Node:
        if op not in ("==", "!=", "==="):
            raise self.error(f"operator {op!r} is not supported on 'extra'", pos)
        return literal(extra_var(normalize_extra(value)), op != "!=")

    def string(self, key: str, op: str, value: str, pos: int) -> Node:
        if op in ("in", "not in"):
            node = literal(atom_var(ATOM_IN, key, value))
            return node if op == "in" else not_(node)
        if key == "platform_system" and value in _PLATFORM_SYSTEM:
            key, value = "sys_platform", _PLATFORM_SYSTEM[value]
        var = string_var(key)
        if op in ("==", "==="):
            return string_eq(var, value)
        if op == "!=":
            return not_(string_eq(var, value))
        if op == "~=" and self.lenient:
            raise self.error(f"'~=' on {key!r}", pos)  # uv ignores it on every string
        if key in _VERSIONISH_STRINGS:
            if op == ">=":
                return literal(atom_var(ATOM_GE, key, value))
            if op == "<":
                return literal(atom_var(ATOM_GE, key, value), False)
            if op == "<=":
                return literal(atom_var(ATOM_LE, key, value))
            if op == ">":
                return literal(atom_var(ATOM_LE, key, value), False)
            release = Version(value).release
            if len(release) < 2:
                raise self.error("'~=' needs a version with at least two components", pos)
            upper = ".".join(map(str, (*release[:-2], release[-2] + 1)))
            return and_(
                literal(atom_var(ATOM_GE, key, value)),
                literal(atom_var(ATOM_GE, key, upper), False),
            )
        if op in ("<", ">"):
            return FALSE
        if op in ("<=", ">="):
            return string_eq(var, value)
        raise self.error(f"operator {op!r} is not supported on {key!r}", pos)

    def version(self, key: str, op: str, value: str, pos: int) -> Node:
        if op in ("in", "not in"):
            node = self.version_list(key, value)
            return node if op == "in" else not_(node)
        text = value.strip()
        star = text.endswith(".*")
        if star:
            if op not in ("==", "!="):
                raise self.error(f"'.*' is not allowed with {op!r}", pos)
            text = text[:-2]
        release = Version(text).release
        if op == "~=" and len(release) < 2:
            raise self.error("'~=' needs a version with at least two components", pos)
        if key == "python_version":
            mapped = _python_version_to_full(op, release, star)
            if isinstance(mapped, Node):
                return mapped
            op, release, star = mapped
            key = "python_full_version"
        return _full_version_node(key, op, release, star)

    def version_list(self, key: str, value: str) -> Node:
        words = value.split()
        try:
            releases = [Version(w).release for w in words]
        except InvalidVersion:
            if self.lenient:
                raise  # uv ignores a version list it cannot read
            releases = []
        if not releases:
            return literal(atom_var(ATOM_IN, key, value))
        if key == "python_version":
            return or_all(self.version(key, "==", w, 0) for w in words)
        return or_all(_full_version_node(key, "==", r, False) for r in releases)


def _trim(release: Release) -> Release:
    end = len(release)
    while end and release[end - 1] == 0:
        end -= 1
    return release[:end]


def _bump(release: Release) -> Release:
    """``(3, 12)`` -> ``(3, 13)``: the first release after every ``3.12.*``."""
    return _trim((*release[:-1], release[-1] + 1))


def _full_version_node(key: str, op: str, release: Release, star: bool) -> Node:
    var = version_var(key)
    t = _trim(release)
    if star:
        node = version_cells(var, [(t, 0), (_bump(release), 0)], [False, True, False])
        return node if op == "==" else not_(node)
    if op in ("==", "==="):
        return version_cells(var, [(t, 0), (t, 1)], [False, True, False])
    if op == "!=":
        return version_cells(var, [(t, 0), (t, 1)], [True, False, True])
    if op == "<":
        return version_cells(var, [(t, 0)], [True, False])
    if op == "<=":
        return version_cells(var, [(t, 1)], [True, False])
    if op == ">":
        return version_cells(var, [(t, 1)], [False, True])
    if op == ">=":
        return version_cells(var, [(t, 0)], [False, True])
    assert op == "~="
    return version_cells(var, [(t, 0), (_bump(release[:-1]), 0)], [False, True, False])


def _python_version_to_full(
    op: str, release: Release, star: bool
) -> Node | tuple[str, Release, bool]:
    """Translate a ``python_version`` comparison (values are ``X.Y``) to python_full_version."""
    if star:
        if len(release) == 1:
            return (op, release, True)
        if all(x == 0 for x in release[2:]):
            return (op, release[:2], True)
        return FALSE if op == "==" else TRUE
    if op == "~=":
        if len(release) == 2:
            return (op, release, False)
        if all(x == 0 for x in release[2:]):
            return ("==", release[:2], True)
        return FALSE
    trimmed = _trim(release)
    if len(trimmed) <= 2:
        major, minor = (*trimmed, 0, 0)[:2]
        if op in ("==", "==="):
            return ("==", (major, minor), True)
        if op == "!=":
            return ("!=", (major, minor), True)
        if op in ("<", ">="):
            return (op, (major, minor), False)
        if op == ">":
            return (">=", (major, minor + 1), False)
        return ("<", (major, minor + 1), False)
    major, minor = trimmed[:2]
    if op in ("==", "==="):
        return FALSE
    if op == "!=":
        return TRUE
    if op in ("<", "<="):
        return ("<", (major, minor + 1), False)
    return (">=", (major, minor + 1), False)


def parse_marker(text: str, lenient: bool = False) -> Node:
    """The marker's node. ``lenient``: as uv reads a Requires-Dist marker, leaving out the
    comparisons uv ignores (it warns) instead of raising; syntax errors still raise."""
    if not text.strip():
        return TRUE
    parser = _Parser(text, lenient)
    # apply steps: real markers take under one per token, a hostile one exponentially many
    steps = STEPS_BASE + STEPS_PER_TOKEN * len(parser.tokens)
    try:
        with limit_steps(steps):
            return parser.parse()
    except TooComplex:
        raise parser.error(f"too complex (more than {steps} steps to evaluate)", None) from None
