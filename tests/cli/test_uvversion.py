"""The uv on PATH is found as shutil.which finds it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from lockfix.cli.uvversion import which_uv


def _tree(root: Path) -> dict[str, Path]:
    """Folders holding a ``uv`` that is: not executable, a folder, executable (twice)."""
    folders = {name: root / name for name in ("plain", "folder", "good", "other")}
    for folder in folders.values():
        folder.mkdir()
    (folders["plain"] / "uv").write_text("")
    (folders["folder"] / "uv").mkdir()
    for name in ("good", "other"):
        (folders[name] / "uv").write_text("#!/bin/sh\n")
        (folders[name] / "uv").chmod(0o755)
    return folders


@pytest.mark.parametrize(
    "entries",
    [
        ["plain", "folder", "good", "other"],
        ["other", "good"],
        ["plain", "folder"],
        ["plain", "plain", "good"],
        ["", "good"],  # an empty entry: the current folder
        [".", "other"],
        ["missing", "good/", "other"],
        ["rel/../good"],
    ],
)
def test_which_uv_finds_what_shutil_which_finds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, entries: list[str]
) -> None:
    folders = _tree(tmp_path)
    monkeypatch.chdir(folders["other"] if "" in entries or "." in entries else tmp_path)
    (tmp_path / "rel").mkdir(exist_ok=True)
    path = os.pathsep.join(str(tmp_path / e) if e not in ("", ".") else e for e in entries)
    monkeypatch.setenv("PATH", path)
    assert which_uv() == shutil.which("uv")


def test_which_uv_with_an_empty_or_unset_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")
    assert which_uv() is None and shutil.which("uv") is None
    monkeypatch.delenv("PATH")
    assert which_uv() == shutil.which("uv")
