"""Project names and the name and version of a wheel's file name.

``packaging.utils`` has both, but importing it imports ``packaging.tags`` and with it the
running platform's detection (``logging``, ``platform``, ``subprocess``, ``sysconfig``,
the manylinux and musllinux probes). A check that only compares names and reads the
name and version of locked files needs none of that: these two functions give the same
answers as ``packaging.utils.canonicalize_name`` and the name and version of
``packaging.utils.parse_wheel_filename`` (tests/dist/test_names.py holds them to it on
every file name of the real locks), and the modules that read a wheel's tags import
``packaging.tags`` where they do.
"""

from __future__ import annotations

import re
from typing import Final

from packaging.version import InvalidVersion, Version

__all__ = ["canonicalize_name", "wheel_name_version"]

# https://packaging.python.org/en/latest/specifications/name-normalization/
_SEPARATOR_RUNS: Final = re.compile(r"[-_.]+")


def canonicalize_name(name: str) -> str:
    """``name`` normalised as the name normalisation specification (PEP 503) says: lower-cased,
    and each run of ``-``, ``_`` and ``.`` made one ``-`` (``Foo.Bar__baz`` → ``foo-bar-baz``).

    Lower-cased first, as ``packaging`` does. The specification's ``re.sub(...).lower()``
    differs from that only where a Greek capital sigma meets a ``.``: ``str.lower`` writes
    a final or a medial sigma by the letters around it, and looks through a ``.`` but not
    through the ``-`` it becomes."""
    value = name.lower()
    if "_" in value or "." in value or "--" in value:
        return _SEPARATOR_RUNS.sub("-", value)
    # with none of those, every run is a lone "-" and stays as it is
    return value


# The binary distribution format's file name convention
# (https://packaging.python.org/en/latest/specifications/binary-distribution-format/):
#   {distribution}-{version}(-{build tag})?-{python tag}-{abi tag}-{platform tag}.whl
# The distribution is escaped (each run of "-_." one "_"); older spellings with "." and any
# Unicode word characters are accepted as installers accept them, "__" never. The build tag
# starts with a digit; each tag may be a "."-joined set.
_WHEEL_NAME: Final = re.compile(r"[\w.]+")  # \w: Unicode letters, digits and "_"
_BUILD_TAG: Final = re.compile(r"[0-9].*")  # "." as in packaging: no line break


def wheel_name_version(filename: str) -> tuple[str, Version] | None:
    """The canonical project name and the version of a wheel's file name, or None when the
    name breaks the file name convention.

    Accepts and rejects exactly the names ``packaging.utils.parse_wheel_filename`` does:
    4 or 5 ``-`` before ``.whl``, an escaped distribution name, a valid version, a build
    tag starting with an ASCII digit, no empty tag (or empty member of a tag set) and
    interpreter tags that are identifiers.
    """
    if not filename.endswith(".whl"):
        return None
    stem = filename[:-4]
    dashes = stem.count("-")
    if dashes != 4 and dashes != 5:
        return None
    name, version, *rest = stem.split("-")  # rest: (build tag,) python, abi, platform
    if "__" in name or _WHEEL_NAME.fullmatch(name) is None:
        return None
    if dashes == 5 and not _BUILD_TAG.fullmatch(rest[0]):
        return None
    python, abi, platform = rest[-3:]
    for tag in (python, abi, platform):
        if "" in tag.split("."):
            return None
    if not all(interpreter.isidentifier() for interpreter in python.split(".")):
        return None
    try:
        parsed = Version(version)
    except InvalidVersion:
        return None
    return canonicalize_name(name), parsed
