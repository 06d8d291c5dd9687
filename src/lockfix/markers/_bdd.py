"""Reduced, ordered, hash-consed multi-valued decision diagrams for PEP 508 markers.

Every internal node tests one variable and has one child per cell of a partition of that
variable's domain:

* version variables (python_full_version, implementation_version): the domain is the set of
  PEP 440 release tuples with trailing zeros trimmed, partitioned by sorted *cuts*.  A cut
  ``(v, 0)`` lies just below ``v`` and ``(v, 1)`` just above it, so ``kids[i]`` covers
  ``[labels[i-1], labels[i])``;
* string variables: ``labels`` is a sorted tuple of values, ``kids[i]`` is the child for
  ``labels[i]`` and ``kids[-1]`` the child for every other string;
* boolean variables (extras, opaque atoms): ``kids == (high, low)``.

Nodes are unique (see ``mk``), so two markers mean the same thing iff they are the same
object, and the memoised apply operations stay polynomial.
"""

from __future__ import annotations

import bisect
import contextlib
import functools
import itertools
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Final

from packaging.version import InvalidVersion, Version

VERSION: Final = 0
STRING: Final = 1
BOOL: Final = 2

Release = tuple[int, ...]
Cut = tuple[Release, int]
# A node's labels: Cuts on a version variable, strings on a string variable (compared only
# with labels of the same variable).
Label = Any

VERSION_VARS: Final = ("implementation_version", "python_full_version")
STRING_VARS: Final = (
    "implementation_name",
    "os_name",
    "platform_machine",
    "platform_python_implementation",
    "platform_release",
    "platform_system",
    "platform_version",
    "sys_platform",
)
RANK_ATOM: Final = len(VERSION_VARS) + len(STRING_VARS)
RANK_EXTRA: Final = RANK_ATOM + 1

# Atom operators: substring tests and version-or-lexicographic comparisons.
ATOM_IN: Final = "in"  # ``key in 'value'``: the environment value is a substring of value
ATOM_CONTAINS: Final = "contains"  # ``'value' in key``
ATOM_GE: Final = ">="
ATOM_LE: Final = "<="
_ATOM_ORDER: Final = {ATOM_IN: 0, ATOM_CONTAINS: 1, ATOM_GE: 2, ATOM_LE: 3}
_KEY_ORDER: Final = {
    name: i
    for i, name in enumerate(
        (*VERSION_VARS, "python_version", *STRING_VARS, "extras", "dependency_groups")
    )
}


class Var:
    """A decision variable.  Interned: compare with ``is``; order by ``key``."""

    __slots__ = ("key", "kind", "name", "op", "rank", "value")

    def __init__(self, key: tuple[int, object], kind: int, name: str, op: str, value: str) -> None:
        self.key = key
        self.rank = key[0]
        self.kind = kind
        self.name = name
        self.op = op
        self.value = value

    def __repr__(self) -> str:
        return f"Var({self.name!r}, {self.op!r}, {self.value!r})"


_VARS: dict[tuple[int, object], Var] = {}


def _intern_var(
    key: tuple[int, object], kind: int, name: str, op: str = "", value: str = ""
) -> Var:
    var = _VARS.get(key)
    if var is None:
        var = _VARS[key] = Var(key, kind, name, op, value)
    return var


def version_var(name: str) -> Var:
    return _intern_var((VERSION_VARS.index(name), ""), VERSION, name)


def string_var(name: str) -> Var:
    return _intern_var((len(VERSION_VARS) + STRING_VARS.index(name), ""), STRING, name)


def atom_var(op: str, name: str, value: str) -> Var:
    return _intern_var(
        (RANK_ATOM, (_ATOM_ORDER[op], _KEY_ORDER[name], value)), BOOL, name, op, value
    )


def extra_var(name: str) -> Var:
    return _intern_var((RANK_EXTRA, name), BOOL, "extra", "==", name)


class Node:
    """A decision node; terminals have ``var is None``.  Never build directly: use ``mk``."""

    __slots__ = ("kids", "labels", "uid", "var")

    def __init__(
        self, var: Var | None, labels: tuple[Label, ...], kids: tuple[Node, ...], uid: int
    ):
        self.var = var
        self.labels = labels
        self.kids = kids
        self.uid = uid

    def __repr__(self) -> str:
        if self.var is None:
            return "TRUE" if self.uid == 0 else "FALSE"
        return f"Node({self.var!r}, {self.labels!r}, {[k.uid for k in self.kids]})"


TRUE: Final = Node(None, (), (), 0)
FALSE: Final = Node(None, (), (), 1)
MIN_CUT: Final[Cut] = ((), 0)

# Nodes are never evicted from the unique table (canonicity depends on it); the operation
# caches are plain memo tables and are cleared when they grow past _CACHE_LIMIT.
_CACHE_LIMIT: Final = 1 << 20
_uids: Final = itertools.count(2)
_unique: dict[tuple[object, ...], Node] = {}
_and_cache: dict[tuple[Node, Node], Node] = {}
_or_cache: dict[tuple[Node, Node], Node] = {}
_not_cache: dict[Node, Node] = {TRUE: FALSE, FALSE: TRUE}


def mk(var: Var, labels: tuple[Label, ...], kids: tuple[Node, ...]) -> Node:
    """Return the unique reduced node for ``var`` with the given edges."""
    kind = var.kind
    if kind == BOOL:
        if kids[0] is kids[1]:
            return kids[0]
    elif kind == STRING:
        default = kids[-1]
        if any(k is not default for k in kids[:-1]):
            if any(k is default for k in kids[:-1]):
                pairs = [(v, k) for v, k in zip(labels, kids, strict=False) if k is not default]
                labels = tuple(v for v, _ in pairs)
                kids = (*(k for _, k in pairs), default)
        else:
            return default
    else:
        if labels and labels[0] == MIN_CUT:
            labels = labels[1:]
            kids = kids[1:]
        new_labels: list[object] = []
        new_kids = [kids[0]]
        for cut, k in zip(labels, kids[1:], strict=True):
            if k is not new_kids[-1]:
                new_labels.append(cut)
                new_kids.append(k)
        if len(new_kids) == 1:
            return new_kids[0]
        if len(new_kids) != len(kids):
            labels = tuple(new_labels)
            kids = tuple(new_kids)
    key = (var, labels, kids)
    node = _unique.get(key)
    if node is None:
        # setdefault keeps nodes unique even if two threads race here.
        node = _unique.setdefault(key, Node(var, labels, kids, next(_uids)))
    return node


class TooComplex(Exception):
    """More apply steps than :func:`limit_steps` allows (a marker built to blow up)."""


# Apply steps left before TooComplex; infinite unless limit_steps is in effect.
_steps_left: float = math.inf


@contextlib.contextmanager
def limit_steps(steps: int) -> Iterator[None]:
    """Raise :class:`TooComplex` from the operations of this block once they have taken
    more than ``steps`` apply steps (each one cache miss of an AND or OR). The size of a
    decision diagram can grow exponentially in its boolean variables; this bounds the
    work spent on one hostile input, whatever its shape."""
    global _steps_left
    outer = _steps_left
    _steps_left = min(outer, steps)
    try:
        yield
    finally:
        _steps_left = outer


def _apply(op: Callable[[Node, Node], Node], x: Node, y: Node) -> Node:
    global _steps_left
    _steps_left -= 1
    if _steps_left < 0:
        raise TooComplex
    vx = x.var
    vy = y.var
    assert vx is not None and vy is not None
    if vx is vy:
        kind = vx.kind
        if kind == BOOL:
            return mk(vx, (), (op(x.kids[0], y.kids[0]), op(x.kids[1], y.kids[1])))
        xl = x.labels
        yl = y.labels
        if xl == yl:
            return mk(vx, xl, tuple(map(op, x.kids, y.kids)))
        if kind == STRING:
            labels = tuple(sorted({*xl, *yl}))
            xm = dict(zip(xl, x.kids, strict=False))
            ym = dict(zip(yl, y.kids, strict=False))
            xd = x.kids[-1]
            yd = y.kids[-1]
            kids = [op(xm.get(v, xd), ym.get(v, yd)) for v in labels]
            kids.append(op(xd, yd))
            return mk(vx, labels, tuple(kids))
        i = j = 0
        nx = len(xl)
        ny = len(yl)
        cuts: list[object] = []
        vkids = [op(x.kids[0], y.kids[0])]
        while i < nx or j < ny:
            if j == ny or (i < nx and xl[i] < yl[j]):
                cuts.append(xl[i])
                i += 1
            elif i == nx or yl[j] < xl[i]:
                cuts.append(yl[j])
                j += 1
            else:
                cuts.append(xl[i])
                i += 1
                j += 1
            vkids.append(op(x.kids[i], y.kids[j]))
        return mk(vx, tuple(cuts), tuple(vkids))
    if vx.key < vy.key:
        return mk(vx, x.labels, tuple(op(k, y) for k in x.kids))
    return mk(vy, y.labels, tuple(op(x, k) for k in y.kids))


def and_(x: Node, y: Node) -> Node:
    if x is y or y is TRUE:
        return x
    if x is TRUE:
        return y
    if x is FALSE or y is FALSE:
        return FALSE
    if x.uid > y.uid:
        x, y = y, x
    key = (x, y)
    result = _and_cache.get(key)
    if result is None:
        result = FALSE if _not_cache.get(x) is y else _apply(and_, x, y)
        if len(_and_cache) >= _CACHE_LIMIT:
            _and_cache.clear()
        _and_cache[key] = result
    return result


def or_(x: Node, y: Node) -> Node:
    if x is y or y is FALSE:
        return x
    if x is FALSE:
        return y
    if x is TRUE or y is TRUE:
        return TRUE
    if x.uid > y.uid:
        x, y = y, x
    key = (x, y)
    result = _or_cache.get(key)
    if result is None:
        result = TRUE if _not_cache.get(x) is y else _apply(or_, x, y)
        if len(_or_cache) >= _CACHE_LIMIT:
            _or_cache.clear()
        _or_cache[key] = result
    return result


def not_(x: Node) -> Node:
    result = _not_cache.get(x)
    if result is None:
        assert x.var is not None
        result = mk(x.var, x.labels, tuple(map(not_, x.kids)))
        _not_cache[x] = result
        _not_cache[result] = x
    return result


def or_all(nodes: Iterable[Node]) -> Node:
    result = FALSE
    for node in nodes:
        result = or_(result, node)
    return result


def and_all(nodes: Iterable[Node]) -> Node:
    result = TRUE
    for node in nodes:
        result = and_(result, node)
    return result


def literal(var: Var, value: bool = True) -> Node:
    return mk(var, (), (TRUE, FALSE) if value else (FALSE, TRUE))


def string_eq(var: Var, value: str) -> Node:
    return mk(var, (value,), (TRUE, FALSE))


def version_cells(var: Var, cuts: Iterable[Cut], truth: Iterable[bool]) -> Node:
    """A node over ``var`` whose cell ``i`` (between consecutive cuts) is ``truth[i]``."""
    return mk(var, tuple(cuts), tuple(TRUE if t else FALSE for t in truth))


# -- traversal helpers ----------------------------------------------------------------------


def transform(root: Node, fn: Callable[[Node, Callable[[Node], Node]], Node | None]) -> Node:
    """Rebuild ``root`` bottom-up; ``fn(node, recurse)`` may return a replacement or None."""
    memo: dict[Node, Node] = {TRUE: TRUE, FALSE: FALSE}

    def go(node: Node) -> Node:
        result = memo.get(node)
        if result is None:
            result = fn(node, go)
            if result is None:
                assert node.var is not None
                result = mk(node.var, node.labels, tuple(map(go, node.kids)))
            memo[node] = result
        return result

    return go(root)


def iter_nodes(root: Node) -> Iterable[Node]:
    seen: set[Node] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if node.var is None or node in seen:
            continue
        seen.add(node)
        yield node
        stack.extend(node.kids)


def size(root: Node) -> int:
    return sum(1 for _ in iter_nodes(root))


def exists_top(node: Node) -> Node:
    """Existentially quantify the top variable of ``node``."""
    return or_all(node.kids) if node.var is not None else node


def _is_extra(node: Node) -> bool:
    return node.var is not None and node.var.rank == RANK_EXTRA


def without_extras(root: Node) -> Node:
    # Extras are ordered last, so a non-terminal extra node roots a satisfiable, extras-only
    # sub-diagram.
    return transform(root, lambda node, _go: TRUE if _is_extra(node) else None)


def only_extras(root: Node) -> Node:
    memo: dict[Node, Node] = {}

    def go(node: Node) -> Node:
        if node.var is None or node.var.rank == RANK_EXTRA:
            return node
        result = memo.get(node)
        if result is None:
            result = memo[node] = or_all(map(go, node.kids))
        return result

    return go(root)


def restrict_extras(root: Node, values: Mapping[str, bool]) -> Node:
    def fn(node: Node, go: Callable[[Node], Node]) -> Node | None:
        var = node.var
        assert var is not None
        if var.rank == RANK_EXTRA and var.value in values:
            return go(node.kids[0] if values[var.value] else node.kids[1])
        return None

    return transform(root, fn)


def extra_names(root: Node) -> frozenset[str]:
    return frozenset(
        n.var.value for n in iter_nodes(root) if n.var is not None and n.var.rank == RANK_EXTRA
    )


# -- restriction under an assumption (generalised cofactor) ---------------------------------


def restrict(f: Node, care: Node) -> Node:
    """Some ``g`` with ``g & care == f & care``; don't-cares outside ``care`` merge cells."""
    memo: dict[tuple[Node, Node], Node] = {}

    def go(f: Node, c: Node) -> Node:
        if c is TRUE or f.var is None:
            return f
        both = and_(f, c)
        if both is FALSE:
            return FALSE
        if both is c:
            return TRUE
        key = (f, c)
        result = memo.get(key)
        if result is not None:
            return result
        vf = f.var
        vc = c.var
        assert vc is not None
        if vf is not vc:
            if vf.key > vc.key:
                result = go(f, exists_top(c))
            else:
                result = mk(vf, f.labels, tuple(go(k, c) for k in f.kids))
        elif vf.kind == BOOL:
            ch, cl = c.kids
            fh, fl = f.kids
            if ch is FALSE:
                result = go(fl, cl)
            elif cl is FALSE:
                result = go(fh, ch)
            else:
                result = mk(vf, (), (go(fh, ch), go(fl, cl)))
        elif vf.kind == STRING:
            result = _restrict_string(f, c, go)
        else:
            result = _restrict_version(f, c, go)
        memo[key] = result
        return result

    if care is FALSE:
        return FALSE
    return go(f, care)


def _restrict_string(f: Node, c: Node, go: Callable[[Node, Node], Node]) -> Node:
    var = f.var
    assert var is not None
    labels = tuple(sorted({*f.labels, *c.labels}))
    fm = dict(zip(f.labels, f.kids, strict=False))
    cm = dict(zip(c.labels, c.kids, strict=False))
    fd = f.kids[-1]
    cd = c.kids[-1]
    kids: list[Node | None] = []
    for v in labels:
        ck = cm.get(v, cd)
        kids.append(None if ck is FALSE else go(fm.get(v, fd), ck))
    if cd is FALSE:
        counts: dict[Node, int] = {}
        for k in kids:
            if k is not None:
                counts[k] = counts.get(k, 0) + 1
        best = max(counts.values())
        tied = [k for k in counts if counts[k] == best]
        default = fd if fd in tied else tied[0]
    else:
        default = go(fd, cd)
    return mk(var, labels, (*(default if k is None else k for k in kids), default))


def _restrict_version(f: Node, c: Node, go: Callable[[Node, Node], Node]) -> Node:
    var = f.var
    assert var is not None
    cuts: list[object] = []
    cells: list[tuple[Node, Node]] = []
    fl, cl = f.labels, c.labels
    i = j = 0
    cells.append((f.kids[0], c.kids[0]))
    while i < len(fl) or j < len(cl):
        if j == len(cl) or (i < len(fl) and fl[i] < cl[j]):
            cuts.append(fl[i])
            i += 1
        elif i == len(fl) or cl[j] < fl[i]:
            cuts.append(cl[j])
            j += 1
        else:
            cuts.append(fl[i])
            i += 1
            j += 1
        cells.append((f.kids[i], c.kids[j]))
    kids: list[Node | None] = [None if ck is FALSE else go(fk, ck) for fk, ck in cells]
    n = len(kids)
    idx = 0
    while idx < n:
        if kids[idx] is not None:
            idx += 1
            continue
        end = idx
        while end < n and kids[end] is None:
            end += 1
        left = kids[idx - 1] if idx > 0 else None
        right = kids[end] if end < n else None
        fill = left if left is not None else right
        for k in range(idx, end):
            kids[k] = fill
        idx = end
    return mk(var, tuple(cuts), tuple(k for k in kids if k is not None))


# -- evaluation -----------------------------------------------------------------------------


@functools.cache
def _release_re() -> re.Pattern[str]:
    return re.compile(r"\s*v?(?:\d+!)?(\d+(?:\.\d+)*)")


def release_of(text: str) -> Release:
    """The trimmed release tuple of a version string (``'3.11.0rc1'`` -> ``(3, 11)``)."""
    m = _release_re().match(text)
    if m is None:
        raise ValueError(f"not a version: {text!r}")
    parts = [int(p) for p in m.group(1).split(".")]
    while parts and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def compare_versionish(lhs: str, rhs: str) -> int:
    """PEP 508 comparison: as versions when both parse, else as strings."""
    try:
        a, b = Version(lhs), Version(rhs)
    except InvalidVersion:
        return (lhs > rhs) - (lhs < rhs)
    return (a > b) - (a < b)


def evaluate(root: Node, lookup: Callable[[str], str], extras: frozenset[str]) -> bool:
    node = root
    releases: dict[str, Release] = {}
    while node.var is not None:
        var = node.var
        kind = var.kind
        if kind == VERSION:
            rel = releases.get(var.name)
            if rel is None:
                rel = releases[var.name] = release_of(lookup(var.name))
            node = node.kids[bisect.bisect_right(node.labels, (rel, 0.5))]
        elif kind == STRING:
            value = lookup(var.name)
            labels = node.labels
            i = bisect.bisect_left(labels, value)
            node = node.kids[i] if i < len(labels) and labels[i] == value else node.kids[-1]
        else:
            if var.rank == RANK_EXTRA:
                truth = var.value in extras
            elif var.op == ATOM_IN:
                truth = lookup(var.name) in var.value
            elif var.op == ATOM_CONTAINS:
                truth = var.value in lookup(var.name)
            elif var.op == ATOM_GE:
                truth = compare_versionish(lookup(var.name), var.value) >= 0
            else:
                truth = compare_versionish(lookup(var.name), var.value) <= 0
            node = node.kids[0] if truth else node.kids[1]
    return node is TRUE
