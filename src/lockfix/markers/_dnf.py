"""Turning a decision diagram back into uv-style marker text.

The diagram's paths give a disjoint DNF; each clause is then expanded greedily into a prime
implicant (dropping or widening terms while the clause still implies the function) and
redundant clauses are removed, giving an irredundant cover.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any, Final

from lockfix.markers._bdd import (
    ATOM_CONTAINS,
    ATOM_GE,
    ATOM_IN,
    BOOL,
    FALSE,
    RANK_EXTRA,
    STRING,
    TRUE,
    VERSION,
    Cut,
    Node,
    Release,
    Var,
    and_,
    and_all,
    iter_nodes,
    literal,
    not_,
    or_,
    or_all,
    string_eq,
    version_cells,
)

Interval = tuple[Cut | None, Cut | None]
# VERSION: tuple of disjoint, non-adjacent intervals; STRING: ("==", str) or ("!=", frozenset);
# BOOL: bool. Which one a constraint is follows from its variable's kind, which the type
# checker cannot see: hence Any.
Constraint = Any
Clause = dict[Var, Constraint]

FALSE_TEXT: Final = "python_version < '0'"


# -- printing terms ---------------------------------------------------------------------------


def _quote(value: str) -> str:
    return f'"{value}"' if "'" in value else f"'{value}'"


def _vstr(release: Release) -> str:
    return ".".join(map(str, release)) if release else "0"


def _point(release: Release) -> str:
    return _vstr((*release, 0, 0, 0)[: max(3, len(release))])


def _star_prefix(lo: Cut, hi: Cut) -> str | None:
    """``'3.12'`` if [lo, hi) is exactly ``3.12.*`` (two-component prefixes only, like uv)."""
    if lo[1] != 0 or hi[1] != 0 or len(lo[0]) > 2:
        return None
    major, minor = (*lo[0], 0, 0)[:2]
    bumped = (major, minor + 1)
    if hi[0] != bumped:
        return None
    return f"{major}.{minor}"


def version_terms(name: str, intervals: tuple[Interval, ...]) -> list[str] | None:
    """Terms whose conjunction is the union of ``intervals``, or None if there are none."""
    if len(intervals) == 1:
        lo, hi = intervals[0]
        if lo is not None and hi is not None:
            if lo[0] == hi[0] and lo[1] == 0 and hi[1] == 1:
                return [f"{name} == '{_point(lo[0])}'"]
            star = _star_prefix(lo, hi)
            if star is not None:
                return [f"{name} == '{star}.*'"]
        terms = []
        if lo is not None:
            terms.append(f"{name} {'>=' if lo[1] == 0 else '>'} '{_vstr(lo[0])}'")
        if hi is not None:
            terms.append(f"{name} {'<' if hi[1] == 0 else '<='} '{_vstr(hi[0])}'")
        return terms
    if intervals[0][0] is not None or intervals[-1][1] is not None:
        return None
    if len(intervals) == 2:
        hole_lo = intervals[0][1]
        hole_hi = intervals[1][0]
        assert hole_lo is not None and hole_hi is not None
        star = _star_prefix(hole_lo, hole_hi)
        if star is not None:
            return [f"{name} != '{star}.*'"]
    terms = []
    for (_, end), (start, _) in itertools.pairwise(intervals):
        assert end is not None and start is not None
        if not (end[0] == start[0] and end[1] == 0 and start[1] == 1):
            return None
        terms.append(f"{name} != '{_point(end[0])}'")
    return terms


def _bool_term(var: Var, value: bool) -> str:
    if var.rank == RANK_EXTRA:
        return f"extra {'==' if value else '!='} {_quote(var.value)}"
    if var.op == ATOM_IN:
        return f"{var.name} {'in' if value else 'not in'} {_quote(var.value)}"
    if var.op == ATOM_CONTAINS:
        return f"{_quote(var.value)} {'in' if value else 'not in'} {var.name}"
    if var.op == ATOM_GE:
        return f"{var.name} {'>=' if value else '<'} {_quote(var.value)}"
    return f"{var.name} {'<=' if value else '>'} {_quote(var.value)}"


def clause_terms(clause: Clause) -> list[tuple[int, str]]:
    terms: list[tuple[int, str]] = []
    for var in sorted(clause, key=lambda v: v.key):
        c = clause[var]
        if var.kind == VERSION:
            vterms = version_terms(var.name, c)
            assert vterms is not None
            terms.extend((var.rank, t) for t in vterms)
        elif var.kind == STRING:
            op, value = c
            if op == "==":
                terms.append((var.rank, f"{var.name} == {_quote(value)}"))
            else:
                terms.extend((var.rank, f"{var.name} != {_quote(v)}") for v in sorted(value))
        else:
            terms.append((var.rank, _bool_term(var, c)))
    return terms


# -- path enumeration -----------------------------------------------------------------------


def _cell(node: Node, i: int) -> Interval:
    labels = node.labels
    return (labels[i - 1] if i else None, labels[i] if i < len(labels) else None)


def _edge_groups(node: Node) -> Iterator[tuple[Constraint, Node]]:
    var = node.var
    assert var is not None
    kids = node.kids
    if var.kind == BOOL:
        yield True, kids[0]
        yield False, kids[1]
    elif var.kind == STRING:
        yield ("!=", frozenset(node.labels)), kids[-1]
        for value, kid in zip(node.labels, kids, strict=False):
            yield ("==", value), kid
    else:
        groups: dict[Node, list[Interval]] = {}
        for i, kid in enumerate(kids):
            groups.setdefault(kid, []).append(_cell(node, i))
        for kid, intervals in groups.items():
            union = tuple(intervals)
            if version_terms(var.name, union) is not None:
                yield union, kid
            else:
                for interval in intervals:
                    yield (interval,), kid


def _paths(node: Node, current: Clause) -> Iterator[Clause]:
    if node is TRUE:
        yield dict(current)
        return
    if node is FALSE:
        return
    var = node.var
    assert var is not None
    for constraint, kid in _edge_groups(node):
        if kid is FALSE:
            continue
        current[var] = constraint
        yield from _paths(kid, current)
        del current[var]


# -- implication tests on cubes ---------------------------------------------------------------


def _overlaps(a: Interval, b: Interval) -> bool:
    lo = a[0] if b[0] is None else b[0] if a[0] is None else max(a[0], b[0])
    hi = a[1] if b[1] is None else b[1] if a[1] is None else min(a[1], b[1])
    return lo is None or hi is None or lo < hi


def _selected(node: Node, c: Constraint) -> list[Node]:
    var = node.var
    assert var is not None
    kids = node.kids
    if var.kind == BOOL:
        return [kids[0] if c else kids[1]]
    if var.kind == STRING:
        op, value = c
        labels = node.labels
        if op == "==":
            for label, kid in zip(labels, kids, strict=False):
                if label == value:
                    return [kid]
            return [kids[-1]]
        return [kid for label, kid in zip(labels, kids, strict=False) if label not in value] + [
            kids[-1]
        ]
    return [
        kid
        for i, kid in enumerate(kids)
        if any(_overlaps(_cell(node, i), interval) for interval in c)
    ]


def holds(f: Node, clause: Clause) -> bool:
    """Does the cube ``clause`` imply ``f``?"""
    memo: dict[Node, bool] = {}

    def go(node: Node) -> bool:
        if node is TRUE:
            return True
        if node is FALSE:
            return False
        result = memo.get(node)
        if result is None:
            assert node.var is not None  # TRUE and FALSE are the only terminals
            c = clause.get(node.var)
            kids = node.kids if c is None else _selected(node, c)
            result = memo[node] = all(go(k) for k in kids)
        return result

    return go(f)


def _interval_inside(a: Interval, b: Interval) -> bool:
    lo_ok = b[0] is None or (a[0] is not None and b[0] <= a[0])
    hi_ok = b[1] is None or (a[1] is not None and a[1] <= b[1])
    return lo_ok and hi_ok


def _contained(a: Clause, b: Clause) -> bool:
    """Is cube ``a`` a subset of cube ``b``?"""
    for var, cb in b.items():
        ca = a.get(var)
        if ca is None:
            return False
        if var.kind == BOOL:
            if ca != cb:
                return False
        elif var.kind == STRING:
            op_b, val_b = cb
            op_a, val_a = ca
            if op_b == "==":
                if ca != cb:
                    return False
            elif op_a == "==":
                if val_a in val_b:
                    return False
            elif not val_b <= val_a:
                return False
        elif not all(any(_interval_inside(ia, ib) for ib in cb) for ia in ca):
            return False
    return True


# -- expansion ------------------------------------------------------------------------------


def _widen_version(
    f: Node, clause: Clause, var: Var, intervals: tuple[Interval, ...], cuts: list[Cut]
) -> tuple[Interval, ...]:
    if len(intervals) == 1:
        lo, hi = intervals[0]
        if lo is not None:
            for candidate in [None, *(c for c in cuts if c < lo)]:
                clause[var] = ((candidate, hi),)
                if holds(f, clause):
                    lo = candidate
                    break
        if hi is not None:
            for candidate in [None, *(c for c in reversed(cuts) if c > hi)]:
                clause[var] = ((lo, candidate),)
                if holds(f, clause):
                    hi = candidate
                    break
        return ((lo, hi),)
    terms = version_terms(var.name, intervals)
    if terms is None or any("*" in t for t in terms):
        return intervals
    current = list(intervals)
    k = 0
    while k < len(current) - 1:
        merged = [*current[:k], (current[k][0], current[k + 1][1]), *current[k + 2 :]]
        clause[var] = tuple(merged)
        if holds(f, clause):
            current = merged
        else:
            k += 1
    return tuple(current)


def _expand(f: Node, clause: Clause, cuts: dict[Var, list[Cut]]) -> Clause:
    for var in sorted(clause, key=lambda v: v.key):
        c = clause.pop(var)
        if holds(f, clause):
            continue
        clause[var] = c
        if var.kind == VERSION:
            clause[var] = _widen_version(f, clause, var, c, cuts.get(var, []))
        elif var.kind == STRING and c[0] == "!=":
            kept = set(c[1])
            for value in sorted(kept):
                if len(kept) == 1:
                    break
                kept.discard(value)
                clause[var] = ("!=", frozenset(kept))
                if not holds(f, clause):
                    kept.add(value)
            clause[var] = ("!=", frozenset(kept))
    return clause


def cube(clause: Clause) -> Node:
    parts: list[Node] = []
    for var, c in clause.items():
        if var.kind == BOOL:
            parts.append(literal(var, c))
        elif var.kind == STRING:
            op, value = c
            if op == "==":
                parts.append(string_eq(var, value))
            else:
                parts.append(not_(or_all(string_eq(var, v) for v in sorted(value))))
        else:
            cuts: list[Cut] = []
            truth = [False]
            for lo, hi in c:
                if lo is None:
                    truth[0] = True
                else:
                    cuts.append(lo)
                    truth.append(True)
                if hi is not None:
                    cuts.append(hi)
                    truth.append(False)
            parts.append(version_cells(var, cuts, truth))
    return and_all(parts)


def _freeze(clause: Clause) -> frozenset[tuple[Var, object]]:
    return frozenset(clause.items())


def to_dnf(f: Node, dont_care: Node = FALSE) -> list[Clause]:
    """An irredundant list of cubes covering ``f`` (and contained in ``f | dont_care``)."""
    if f is TRUE:
        return [{}]
    upper = or_(f, dont_care)
    if upper is TRUE:
        return [{}]
    cuts: dict[Var, set[Cut]] = {}
    for node in iter_nodes(upper):
        assert node.var is not None
        if node.var.kind == VERSION:
            cuts.setdefault(node.var, set()).update(node.labels)
    sorted_cuts = {var: sorted(values) for var, values in cuts.items()}

    clauses: list[Clause] = []
    last: list[int] = []
    index: dict[frozenset[tuple[Var, object]], int] = {}
    for n, path in enumerate(_paths(f, {})):
        covering = [i for i, done in enumerate(clauses) if _contained(path, done)]
        if covering:
            for i in covering:
                last[i] = n
            continue
        clause = _expand(upper, path, sorted_cuts)
        key = _freeze(clause)
        found = index.get(key)
        if found is None:
            index[key] = len(clauses)
            clauses.append(clause)
            last.append(n)
        else:
            last[found] = n
    # Like uv, a clause reached by several paths is listed where the last of them was.
    clauses = [clauses[i] for i in sorted(range(len(clauses)), key=last.__getitem__)]

    if len(clauses) > 1:
        clauses = _merge_version_clauses(upper, clauses, sorted_cuts)
    if len(clauses) > 1:
        clauses = _irredundant(dont_care, clauses)
        _reduce(f, dont_care, clauses)
    return clauses


def _irredundant(dont_care: Node, clauses: list[Clause]) -> list[Clause]:
    """Drop clauses covered by the others, trying the ones with most terms first."""
    counts = [len(clause_terms(c)) for c in clauses]
    cubes = [cube(c) for c in clauses]
    order = sorted(range(len(clauses)), key=lambda i: (-counts[i], -i))
    # Clause order[k] is tested against the kept clauses before it plus all clauses after it.
    suffix = [FALSE] * (len(order) + 1)
    for k in range(len(order) - 1, -1, -1):
        suffix[k] = or_(suffix[k + 1], cubes[order[k]])
    kept_cover = dont_care
    removed: set[int] = set()
    for k, i in enumerate(order):
        if holds(or_(kept_cover, suffix[k + 1]), clauses[i]):
            removed.add(i)
        else:
            kept_cover = or_(kept_cover, cubes[i])
    return [c for i, c in enumerate(clauses) if i not in removed]


def _union(intervals: list[Interval]) -> tuple[Interval, ...]:
    items = sorted(intervals, key=lambda iv: (0,) if iv[0] is None else (1, iv[0]))
    out = [items[0]]
    for lo, hi in items[1:]:
        prev_lo, prev_hi = out[-1]
        if prev_hi is None:
            continue
        if lo is None or lo <= prev_hi:
            out[-1] = (prev_lo, None if hi is None else max(prev_hi, hi))
        else:
            out.append((lo, hi))
    return tuple(out)


def _merge_version_clauses(
    upper: Node, clauses: list[Clause], cuts: dict[Var, list[Cut]]
) -> list[Clause]:
    """Merge clauses that differ only in one version variable when the union is printable.

    This is what turns ``(a and v < 1) or (a and v > 1)`` into ``a and v != 1``.
    """
    variables = sorted(
        {v for c in clauses for v in c if v.kind == VERSION},
        key=lambda v: v.key,
    )
    merged_any = True
    while merged_any:
        merged_any = False
        for var in variables:
            groups: dict[frozenset[tuple[Var, object]], list[int]] = {}
            for i, clause in enumerate(clauses):
                if var in clause:
                    rest = frozenset((v, c) for v, c in clause.items() if v is not var)
                    groups.setdefault(rest, []).append(i)
            for indices in groups.values():
                if len(indices) < 2:
                    continue
                union = _union([iv for i in indices for iv in clauses[i][var]])
                if union != ((None, None),) and version_terms(var.name, union) is None:
                    continue
                merged = dict(clauses[indices[0]])
                if union == ((None, None),):
                    del merged[var]
                else:
                    merged[var] = union
                clauses[indices[0]] = _expand(upper, merged, cuts)
                drop = set(indices[1:])
                clauses = [c for i, c in enumerate(clauses) if i not in drop]
                merged_any = True
                break
            if merged_any:
                break
    unique: dict[frozenset[tuple[Var, object]], Clause] = {}
    for clause in clauses:
        unique.setdefault(_freeze(clause), clause)
    return list(unique.values())


def _reduce(f: Node, dont_care: Node, clauses: list[Clause]) -> None:
    """Replace ``!=`` runs by a single ``==`` where the other clauses cover the rest."""
    values: dict[Var, set[str]] = {}
    for node in iter_nodes(f):
        assert node.var is not None
        if node.var.kind == STRING:
            values.setdefault(node.var, set()).update(node.labels)
    cubes = [cube(c) for c in clauses]
    for i, clause in enumerate(clauses):
        for var, c in list(clause.items()):
            if var.kind != STRING or c[0] != "!=":
                continue
            others = or_all([dont_care, *(cubes[j] for j in range(len(clauses)) if j != i)])
            uncovered = and_(f, not_(others))
            for value in sorted(values.get(var, set()) - c[1]):
                clause[var] = ("==", value)
                candidate = cube(clause)
                if and_(uncovered, not_(candidate)) is FALSE:
                    cubes[i] = candidate
                    break
            else:
                clause[var] = c


def render(clauses: list[Clause]) -> str:
    if not clauses:
        return FALSE_TEXT
    rendered = [clause_terms(c) for c in clauses]
    rendered = [r for r in rendered if r]
    if not rendered:
        return ""
    rendered.sort(key=lambda terms: [rank for rank, _ in terms])
    if len(rendered) == 1:
        return " and ".join(t for _, t in rendered[0])
    return " or ".join(
        f"({' and '.join(t for _, t in terms)})" if len(terms) > 1 else terms[0][1]
        for terms in rendered
    )
