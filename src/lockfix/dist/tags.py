"""What a wheel's tags say about where it can be installed, as marker text.

uv drops locked wheels that no environment reaching the package could install; lockfix
does the same for the packages it adds, and uses the same mapping to tell which
environments pick which wheel.
"""

from __future__ import annotations

import re
from functools import cache, lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    # packaging.tags brings the running platform's detection: imported where a wheel's
    # tags are read
    from packaging.tags import Tag


@cache
def _linux_arch() -> re.Pattern[str]:
    return re.compile(r"^(?:many|musl)?linux(?:1|2010|2014|_\d+_\d+)?_(?P<arch>.+)$")


@cache
def _macos() -> re.Pattern[str]:
    return re.compile(r"^macosx_\d+_\d+_(?P<arch>.+)$")


_MACOS_ARCHES = {
    "arm64": ("arm64",),
    "x86_64": ("x86_64",),
    "universal2": ("arm64", "x86_64"),
    "intel": ("x86_64", "i386"),
    "universal": ("arm64", "x86_64", "i386", "ppc", "ppc64"),
}
_WINDOWS = {
    "win_amd64": ("AMD64",),
    "win_arm64": ("ARM64",),
    "win32": ("x86", "AMD64"),
}


def _any_of(variable: str, values: tuple[str, ...]) -> str:
    return "(" + " or ".join(f"{variable} == '{v}'" for v in values) + ")"


def platform_marker(platform: str) -> str | None:
    """Marker text for the environments a platform tag installs on; None for 'anywhere'."""
    if platform == "any":
        return None
    match = _linux_arch().match(platform)
    if match:
        return f"sys_platform == 'linux' and platform_machine == '{match['arch']}'"
    match = _macos().match(platform)
    if match:
        arches = _MACOS_ARCHES.get(match["arch"], (match["arch"],))
        return f"sys_platform == 'darwin' and {_any_of('platform_machine', arches)}"
    if platform in _WINDOWS:
        return f"sys_platform == 'win32' and {_any_of('platform_machine', _WINDOWS[platform])}"
    return None


_CPYTHON_ONLY = "platform_python_implementation == 'CPython'"


@cache
def _cpython() -> re.Pattern[str]:
    return re.compile(r"^cp(?P<major>\d)(?P<minor>\d+)$")


@cache
def _python() -> re.Pattern[str]:
    return re.compile(r"^py(?P<major>\d)(?P<minor>\d*)$")


def python_marker(interpreter: str, abi: str) -> str | None:
    """Marker text for the Pythons an interpreter/ABI tag pair installs on; None for 'any'."""
    match = _cpython().match(interpreter)
    if match:
        version = f"{match['major']}.{match['minor']}"
        if abi == "abi3":
            return f"python_full_version >= '{version}' and {_CPYTHON_ONLY}"
        return f"python_full_version == '{version}.*' and {_CPYTHON_ONLY}"
    match = _python().match(interpreter)
    if match:
        if match["minor"]:
            return f"python_full_version == '{match['major']}.{match['minor']}.*'"
        if match["major"] == "3":
            return None
        return f"python_full_version < '{int(match['major']) + 1}'"
    return None


def _tag_marker(tag: Tag) -> str:
    parts = [
        p for p in (python_marker(tag.interpreter, tag.abi), platform_marker(tag.platform)) if p
    ]
    return " and ".join(f"({p})" for p in parts) if parts else ""


@lru_cache(maxsize=4096)
def wheel_marker_text(filename: str) -> str:
    """Marker text true exactly where some tag of the wheel could be installed ('' = anywhere)."""
    from packaging.utils import InvalidWheelFilename, parse_wheel_filename

    try:
        _, _, _, tags = parse_wheel_filename(filename)
    except InvalidWheelFilename:
        return ""
    clauses = sorted({_tag_marker(tag) for tag in tags})
    if "" in clauses:
        return ""
    return " or ".join(f"({c})" for c in clauses)


def platform_environments(platform: str) -> tuple[tuple[str, str], ...] | None:
    """The (sys_platform, platform_machine) pairs a platform tag installs on.

    None for 'any'; () for a platform tag this module does not know (FreeBSD, iOS, …).
    """
    if platform == "any":
        return None
    match = _linux_arch().match(platform)
    if match:
        return (("linux", match["arch"]),)
    match = _macos().match(platform)
    if match:
        return tuple(("darwin", a) for a in _MACOS_ARCHES.get(match["arch"], (match["arch"],)))
    if platform in _WINDOWS:
        return tuple(("win32", a) for a in _WINDOWS[platform])
    return ()
