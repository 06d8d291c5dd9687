"""The command line is a shell over the pipeline: the layers below it know nothing of click,
the second process's module does not import the pipeline back, and every file lockfix
writes goes through one atomic, durable helper."""

from __future__ import annotations

import ast
import os
import stat
from pathlib import Path

import pytest

from lockfix._files import replace_file, temp_prefix

SRC = Path(__file__).resolve().parent.parent / "src" / "lockfix"
BELOW_THE_CLI = ("engine", "safeio", "settings", "errors", "_shard", "_files", "facts")


def _imported_names(path: Path) -> set[str]:
    """Every module ``path`` imports, at any level (functions, TYPE_CHECKING blocks)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("module", BELOW_THE_CLI)
def test_the_layers_below_the_command_line_never_import_click(module: str) -> None:
    imported = _imported_names(SRC / f"{module}.py")
    assert not {n for n in imported if n == "click" or n.startswith(("click.", "lockfix.cli"))}


def test_the_second_process_module_does_not_import_the_pipeline() -> None:
    assert "lockfix.engine" not in _imported_names(SRC / "_shard.py")


def test_lockfix_errors_are_not_click_exceptions() -> None:
    from lockfix.errors import InputError
    from lockfix.safeio import InputError as SafeInputError

    assert SafeInputError is InputError
    assert not [c for c in InputError.__mro__ if c.__module__.startswith("click")]


def test_replace_file_writes_with_its_mode_and_leaves_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "er" / "entry.json"
    replace_file(target, b"one", parents=True)
    replace_file(target, b"two", 0o640)
    assert target.read_bytes() == b"two"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert os.listdir(target.parent) == ["entry.json"]


def test_a_failed_replace_leaves_the_target_and_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "occupied"
    target.mkdir()
    (target / "inside").write_text("kept")
    with pytest.raises(OSError):
        replace_file(target, b"new")  # a rename cannot replace a non-empty folder
    assert (target / "inside").read_text() == "kept"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(temp_prefix(target))]
