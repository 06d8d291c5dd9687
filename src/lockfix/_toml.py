"""Reading TOML files: one line naming the file and the problem when one cannot be read."""

from __future__ import annotations

from pathlib import Path
from tomllib import TOMLDecodeError, load, loads
from typing import Any

__all__ = ["TOMLDecodeError", "TOMLFileError", "loads", "read_file"]


class TOMLFileError(ValueError):
    """A TOML file that cannot be read; the message names the file and the problem."""


def read_file(path: Path) -> dict[str, Any]:
    """The document in ``path``; :class:`TOMLFileError` when it cannot be read or parsed."""
    try:
        with path.open("rb") as handle:
            return load(handle)
    except UnicodeDecodeError as error:
        problem = f"not UTF-8 (byte {error.object[error.start]:#04x} at offset {error.start})"
    except TOMLDecodeError as error:
        problem = f"not valid TOML: {error}"
    except RecursionError:
        problem = "not valid TOML: arrays or tables nested too deeply"
    except OSError as error:
        problem = f"cannot read: {error.strerror or error}"
    raise TOMLFileError(f"{path}: {problem}")
