"""lockfix.cli.checking prints without click what click would print."""

from __future__ import annotations

import io
import sys
from collections.abc import Callable

import click
import pytest

from lockfix.cli.checking import echo


@pytest.mark.parametrize("encoding", ["utf-8", "ascii", "latin-1"])
@pytest.mark.parametrize(
    "message", ["a report\nline", "", "\x1b[31mred\x1b[0m on a file", "naïve ← arrow"]
)
@pytest.mark.parametrize("nl", [True, False])
@pytest.mark.parametrize("err", [False, True])
def test_echo_writes_what_click_echo_writes(
    monkeypatch: pytest.MonkeyPatch, encoding: str, message: str, nl: bool, err: bool
) -> None:
    def written(write: Callable[..., None]) -> bytes | str:
        buffer = io.BytesIO()
        stream = io.TextIOWrapper(buffer, encoding=encoding, write_through=True)
        monkeypatch.setattr(sys, "stderr" if err else "stdout", stream)
        try:
            write(message, err=err, nl=nl)
        except UnicodeEncodeError as error:
            return f"fails: {error.reason}"
        finally:
            monkeypatch.undo()
        return buffer.getvalue()

    assert written(echo) == written(click.echo)
