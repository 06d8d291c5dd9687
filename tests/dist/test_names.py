"""lockfix's project names and wheel name splitting give packaging's answers.

:mod:`lockfix.dist.names` stands in for ``packaging.utils.canonicalize_name`` and the name
and version of ``packaging.utils.parse_wheel_filename`` on the check's path; here both are
held to packaging's answers on every file and project name of the real locks, on names
chosen to hit each rule, on every code point, and on generated names.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from itertools import repeat
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from packaging.utils import InvalidWheelFilename, parse_wheel_filename
from packaging.utils import canonicalize_name as packaging_canonicalize_name

from lockfix.dist.names import canonicalize_name, wheel_name_version
from lockfix.dist.simple import FileNameInfo, parse_filename
from lockfix.lock.lockfile import parse_lock

REPO = Path(__file__).resolve().parents[2]
REAL_LOCKS = sorted((REPO.parent / "shared" / "real-locks").glob("*/uv.lock"))

TRICKY_FILES = [
    "foo-1.0-py3-none-any.whl",
    "Foo_Bar-1.0-py3-none-any.whl",
    "FOO.bar-1.0-py3-none-any.whl",
    "foo.bar_baz-1.0-py3-none-any.whl",
    "foo__bar-1.0-py3-none-any.whl",  # "__" never comes out of the escaping
    "foo_-1.0-py3-none-any.whl",
    "_foo-1.0-py3-none-any.whl",
    ".-1.0-py3-none-any.whl",
    "-1.0-py3-none-any.whl",  # empty name
    "foo-1.0-1-py3-none-any.whl",  # build tags
    "foo-1.0-1abc-py3-none-any.whl",
    "foo-1.0-12_x.y-py3-none-any.whl",
    "foo-1.0-abc-py3-none-any.whl",  # a build tag starts with a digit
    "foo-1.0--py3-none-any.whl",
    "foo-1.0-\u0661-py3-none-any.whl",  # an Arabic-Indic digit is no ASCII digit
    "foo-1.0-1\n-py3-none-any.whl",
    "foo-1.0-1\u2028x-py3-none-any.whl",
    "foo-1.0-py3-none.whl",  # 3 dashes
    "foo-bar-1.0-1-py3-none-any.whl",  # 6 dashes
    "foo-bar-1.0-py3-none-any.whl",  # an unescaped name: its "bar" read as the version
    "fóo-1.0-py3-none-any.whl",  # non-ASCII
    "İstanbul-1.0-py3-none-any.whl",
    "ΑΣ.b-1.0-py3-none-any.whl",
    "日本-1.0-py3-none-any.whl",
    "foo bar-1.0-py3-none-any.whl",
    "foo\n-1.0-py3-none-any.whl",
    "foo+bar-1.0-py3-none-any.whl",
    "..whl",
    ".whl",
    "----.whl",
    "-----.whl",
    "foo-1.0-py3-none-any.WHL",
    "foo-1.0-py3-none-any.whl.metadata",
    "foo-1.0-py3-none-any..whl",  # an empty member of the platform tag set
    "foo-1.0-py3.-none-any.whl",
    "foo-1.0-.py3-none-any.whl",
    "foo-1.0-py3-none-.whl",
    "foo-1.0-py3--any.whl",
    "foo-1.0-py2.py3-none-any.whl",
    "foo-1.0-3py-none-any.whl",  # an interpreter tag is an identifier
    "foo-1.0-py3.3py-none-any.whl",
    "foo-1.0-py_3-none-any.whl",
    "foo-1.0-pyé-none-any.whl",
    "foo-1.0-PY3-NONE-ANY.whl",
    "foo-1.0-py3-none-any!.whl",
    "foo-not.a.version-py3-none-any.whl",  # versions
    "foo-v1.0-py3-none-any.whl",
    "foo-1.0.post1.dev2-py3-none-any.whl",
    "foo-1!2.0rc1-py3-none-any.whl",
    "foo-1_0-py3-none-any.whl",
    "foo- 1.0 -py3-none-any.whl",
    "foo-1.0\n-py3-none-any.whl",
    "foo-١.0-py3-none-any.whl",
    "foo--py3-none-any.whl",
    "torch-2.7.1+cu126-cp312-cp312-manylinux_2_28_x86_64.whl",  # local versions
    "torch-2.7.1%2Bcu126-cp312-cp312-manylinux_2_28_x86_64.whl",  # as the PyTorch index links it
    "torch-2.7.1%2bcu126-cp312-cp312-manylinux_2_28_x86_64.whl",
    "torch-2.7.1+cu126.post1-cp312-cp312-win_amd64.whl",
    "torch-2.7.1+-cp312-cp312-win_amd64.whl",
    "numpy-2.3.0-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    "foo-1.0.tar.gz",  # sdists are no wheels
    "foo-1.0.zip",
]

TRICKY_NAMES = [
    "",
    "-",
    "_",
    ".",
    "..",
    "-foo-",
    "Foo.Bar__baz",
    "a-_-.b",
    "foo--bar",
    "foo---bar",
    "FOO",
    "İ",
    "ß",
    "ǅ",
    "ﬁ",
    "ΑΣ.b",  # str.lower writes a final sigma before "-", not before "."
    "Α.Σ",
    "ΑΣ..b",
    "ΑΣ_b",
    "foo bar",
    "foo\n_bar",
]


def _packaging_wheel(filename: str) -> tuple[str, str] | None:
    try:
        name, version, _, _ = parse_wheel_filename(filename)
    except InvalidWheelFilename:
        return None
    return str(name), str(version)


def _ours(filename: str) -> tuple[str, str] | None:
    found = wheel_name_version(filename)
    return None if found is None else (found[0], str(found[1]))


def _real_lock_names() -> tuple[set[str], set[str]]:
    """Every locked file name (as lockfix reads it, and a URL's last segment as the index
    serves it, percent-encoding and all) and every package, dependency and extra name."""
    files: set[str] = set()
    names: set[str] = set()
    for path in REAL_LOCKS:
        for package in parse_lock(path.read_text()).packages:
            names.add(package.name)
            for artifact in (package.sdist, *package.wheels):
                if artifact is None:
                    continue
                files.add(artifact.name)
                if artifact.url:
                    files.add(urlsplit(artifact.url).path.rsplit("/", 1)[-1])
            for _, table, dependency in package.edges():
                names.add(dependency.name)
                if table:
                    names.add(table)
                names.update(dependency.extras)
    return files, names


@pytest.fixture(scope="module")
def real_lock_names() -> tuple[set[str], set[str]]:
    if not REAL_LOCKS:
        pytest.skip("shared real locks not present")
    return _real_lock_names()


def test_every_real_locked_file_splits_as_packaging_splits_it(
    real_lock_names: tuple[set[str], set[str]],
) -> None:
    files, _ = real_lock_names
    wheels = [f for f in files if f.endswith(".whl")]
    assert len(wheels) > 20_000  # the real locks are there, and read
    assert any("%2B" in f for f in wheels)
    different = {f: (_ours(f), _packaging_wheel(f)) for f in files if _ours(f) != _packaging_wheel(f)}
    assert different == {}


def test_tricky_file_names_split_as_packaging_splits_them() -> None:
    assert {f: _ours(f) for f in TRICKY_FILES} == {f: _packaging_wheel(f) for f in TRICKY_FILES}
    # the list reaches both answers, and both ways of being a wheel
    assert _ours("foo-1.0-1-py3-none-any.whl") == ("foo", "1.0")
    assert _ours("Foo_Bar-1.0-py3-none-any.whl") == ("foo-bar", "1.0")
    assert _ours("torch-2.7.1+cu126-cp312-cp312-manylinux_2_28_x86_64.whl") == (
        "torch",
        "2.7.1+cu126",
    )
    assert _ours("foo-1.0-abc-py3-none-any.whl") is None


def test_parse_filename_keeps_packaging_answers_for_wheels() -> None:
    for filename in TRICKY_FILES:
        if filename.endswith(".whl"):
            expected = _packaging_wheel(filename)
            info = parse_filename(filename)
            assert info == (None if expected is None else FileNameInfo(*expected, True))


# names made of the pieces the rules look at
_FIELD = st.text(alphabet="aZ09_.+!%é\u0661 \nΣ", max_size=6) | st.sampled_from(
    ["1.0", "py3", "none", "any", "cp312", "py2.py3", "1", "1a", "2.7.1+cu126"]
)


@settings(max_examples=500, deadline=None)
@given(st.lists(_FIELD, min_size=1, max_size=8), st.sampled_from([".whl", "", "..whl", ".WHL"]))
def test_generated_file_names_split_as_packaging_splits_them(
    fields: list[str], suffix: str
) -> None:
    filename = "-".join(fields) + suffix
    assert _ours(filename) == _packaging_wheel(filename)


def test_names_canonicalize_as_packaging_canonicalizes_them(
    real_lock_names: tuple[set[str], set[str]],
) -> None:
    files, names = real_lock_names
    # the names of the locks, and the name fields of their files as they are spelled there
    spelled = names | {f.split("-", 1)[0] for f in files} | set(TRICKY_NAMES)
    assert len(names) > 1_000
    assert {n: canonicalize_name(n) for n in spelled} == {
        n: packaging_canonicalize_name(n) for n in spelled
    }


@pytest.mark.parametrize(
    "template", ["{c}", "A{c}.b", "a.{c}", "{c}_{c}.{c}-", "AΣ{c}.b", "A.{c}Σ", "{c}ΣΣ{c}"]
)
def test_every_code_point_canonicalizes_as_packaging_canonicalizes_it(template: str) -> None:
    # lower-casing is per character but for the final sigma, whose context the separators
    # and their neighbours make: every code point in a few contexts, a plane at a time
    for plane in range(0, sys.maxunicode + 1, 0x10000):
        text = _every_code_point_in(template, plane)
        assert canonicalize_name(text) == packaging_canonicalize_name(text)


def _every_code_point_in(template: str, plane: int) -> str:
    """``template.format(c=chr(i))`` for each code point ``i`` of ``plane``, joined by "|"
    (built by joins in C rather than a format call per code point)."""
    characters = "".join(map(chr, range(plane, plane + 0x10000)))
    first, *rest = template.split("{c}")
    if len(rest) == 1:  # one {c}: what comes between two code points is always the same
        return first + (rest[0] + "|" + first).join(characters) + rest[0]
    columns: list[Iterable[str]] = [repeat(first)]
    for part in rest:
        columns += [characters, repeat(part)]
    return "|".join(map("".join, zip(*columns, strict=False)))
