"""No module of lockfix touches a private (``_``-prefixed, non-dunder) name of another
package: a dependency's or the standard library's. Such names change without notice in a
minor release, and the code relying on them then breaks quietly.

The scan is static (AST). It flags, in every module under ``src/lockfix``:

* ``from dep import _name`` and ``dep._name`` / ``dep.Public._name`` where ``dep`` (or
  ``Public``) was imported from outside lockfix;
* a method ``_name`` (or ``super()._name``) in a class derived from an outside class that
  has an attribute ``_name`` itself: overriding or calling its private machinery;
* ``obj._name``, ``getattr/hasattr/setattr(obj, "_name")`` where ``_name`` is defined
  nowhere in lockfix (so it can only be another package's attribute).
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "lockfix"

# Underscored by their documentation's choice, to stay clear of field names: public API.
DOCUMENTED_PUBLIC = {
    "os._exit",
    "_replace",  # namedtuple / urllib.parse.SplitResult
    "_asdict",
    "_fields",
    "_make",
}


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _modules() -> list[tuple[Path, ast.Module]]:
    return [(p, ast.parse(p.read_text(), str(p))) for p in sorted(SRC.rglob("*.py"))]


def _own_private_names(trees: list[tuple[Path, ast.Module]]) -> set[str]:
    """Every ``_name`` lockfix itself defines: modules, functions, classes, attributes set on
    ``self``/``cls``, class and module level names, ``__slots__`` entries, parameters."""
    names = {p.stem for p, _ in trees if _private(p.stem)}
    names |= {p.parent.name for p, _ in trees if _private(p.parent.name)}
    for _, tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.arg):
                names.add(node.arg)
            elif (
                isinstance(node, ast.Attribute)
                and isinstance(node.ctx, ast.Store)
                and isinstance(node.value, ast.Name)
                and node.value.id in ("self", "cls")
            ):
                names.add(node.attr)
            elif isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "__slots__" for t in node.targets
            ):
                names |= {
                    c.value
                    for c in ast.walk(node.value)
                    if isinstance(c, ast.Constant) and isinstance(c.value, str)
                }
    return {n for n in names if _private(n)}


def _outside_names(tree: ast.Module) -> dict[str, str]:
    """Local name → dotted origin, for every name the module imports from outside lockfix."""
    bound: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "lockfix":
                    continue
                local = alias.asname or alias.name.split(".")[0]
                bound[local] = alias.name if alias.asname else local
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level or module.split(".")[0] == "lockfix":
                continue
            for alias in node.names:
                bound[alias.asname or alias.name] = f"{module}.{alias.name}"
    return bound


def _root(node: ast.expr) -> tuple[str | None, list[str]]:
    """``a.b.c`` → ("a", ["b", "c"])."""
    chain: list[str] = []
    while isinstance(node, ast.Attribute):
        chain.append(node.attr)
        node = node.value
    return (node.id if isinstance(node, ast.Name) else None), chain[::-1]


def _resolve(dotted: str) -> object | None:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for part in parts[cut:]:
            obj = getattr(obj, part, None)
            if obj is None:
                return None
        return obj
    return None


def _is_super(node: ast.expr) -> bool:
    return (
        isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "super"
    )


def _class_findings(node: ast.ClassDef, outside: dict[str, str]) -> list[str]:
    bases = []
    for base in node.bases:
        root, chain = _root(base)
        if root in outside:
            found = _resolve(".".join([outside[root], *chain]))
            if found is not None:
                bases.append(found)
    found = []
    for item in ast.walk(node):
        name = None
        if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
            name = item.name
        elif isinstance(item, ast.Attribute) and _is_super(item.value):
            name = item.attr
        if name and _private(name) and any(hasattr(b, name) for b in bases):
            found.append(f"{node.name}.{name} (private to its base class)")
    return found


def _findings(tree: ast.Module, own: set[str]) -> list[str]:
    outside = _outside_names(tree)
    found = []
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.ImportFrom) and not node.level:
            module = node.module or ""
            if module.split(".")[0] != "lockfix":
                found += [
                    f"{line}: from {module} import {a.name}" for a in node.names if _private(a.name)
                ]
        elif isinstance(node, ast.ClassDef):
            found += [f"{line}: {f}" for f in _class_findings(node, outside)]
        elif isinstance(node, ast.Attribute) and _private(node.attr):
            root, chain = _root(node)
            dotted = ".".join([outside.get(root or "", root or "?"), *chain])
            if dotted in DOCUMENTED_PUBLIC or node.attr in DOCUMENTED_PUBLIC:
                continue
            if root in outside and isinstance(node.value, (ast.Name, ast.Attribute)):
                found.append(f"{line}: {dotted}")
            elif node.attr not in own and not _is_super(node.value):
                found.append(f"{line}: .{node.attr} (defined nowhere in lockfix)")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "hasattr", "setattr")
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
            and _private(node.args[1].value)
            and node.args[1].value not in own
        ):
            found.append(f"{line}: {node.func.id}(…, {node.args[1].value!r})")
    return found


def test_no_private_attribute_of_another_package() -> None:
    trees = _modules()
    own = _own_private_names(trees)
    findings = [
        f"{path.relative_to(SRC.parent)}:{finding}"
        for path, tree in trees
        for finding in _findings(tree, own)
    ]
    assert not findings, "private names of other packages used:\n" + "\n".join(findings)


def test_the_scan_sees_each_kind_of_use() -> None:
    """The rules above, on code that breaks each of them (and on code that keeps them)."""
    bad = ast.parse(
        "import atexit\n"
        "import aiohttp\n"
        "from aiohttp import _helpers\n"
        "from aiohttp import ClientSession\n"
        "atexit._run_exitfuncs()\n"
        "ClientSession._request\n"
        "class C(aiohttp.ClientSession):\n"
        "    def _request(self): return super()._prepare_headers()\n"
        "def f(session):\n"
        "    session._retry_connection = False\n"
        "    return getattr(session, '_transport_for_url')\n"
    )
    found = _findings(bad, own={"_mine"})
    assert len(found) == 7, found
    good = ast.parse(
        "import os\n"
        "from urllib.parse import urlsplit\n"
        "class D:\n"
        "    def _mine(self): return self._mine\n"
        "os._exit(0)\n"
        "urlsplit('x')._replace(path='')\n"
    )
    assert _findings(good, own={"_mine"}) == []
