"""Index page parsing (PEP 503 HTML, PEP 691 JSON, flat pages) and local indexes."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fixtures.builder import build_scenario
from lockfix.dist import simple as collector
from lockfix.dist.simple import (
    IndexFile,
    file_matches_project,
    parse_filename,
    parse_page,
    parse_simple_html,
    parse_simple_json,
)
from lockfix.errors import IndexRequestError, ProjectNotFound
from lockfix.index.http import IndexClient
from lockfix.index.local import path_to_url

PAGE = "https://example.org/simple/torch/"


def test_json_page_fields_and_both_metadata_keys() -> None:
    doc = {
        "meta": {"api-version": "1.1"},
        "name": "torch",
        "files": [
            {
                "filename": "torch-2.7.1-cp311-cp311-manylinux_2_28_x86_64.whl",
                "url": "../../files/torch-2.7.1-cp311-cp311-manylinux_2_28_x86_64.whl",
                "hashes": {"sha256": "AB" * 32},
                "requires-python": ">=3.9.0",
                "yanked": False,
                "size": 123,
                "upload-time": "2025-06-04T12:00:00.123456Z",
                "core-metadata": {"sha256": "cd" * 32},
            },
            {
                "filename": "torch-2.7.0.tar.gz",
                "url": "https://files.example.org/torch-2.7.0.tar.gz",
                "hashes": {},
                "yanked": "broken build",
                "dist-info-metadata": True,
            },
            {
                "filename": "torch-2.6.0-py3-none-any.whl",
                "url": "torch-2.6.0-py3-none-any.whl#sha256=" + "ef" * 32,
                "hashes": {},
                "core-metadata": False,
                "dist-info-metadata": {"sha256": "00" * 32},  # core-metadata wins
                "yanked": True,
            },
        ],
    }
    page = parse_simple_json(json.dumps(doc).encode(), PAGE, "torch")
    a, b, c = page.files
    assert a.url == "https://example.org/files/torch-2.7.1-cp311-cp311-manylinux_2_28_x86_64.whl"
    assert a.hashes == {"sha256": "ab" * 32}
    assert a.requires_python == ">=3.9.0"
    assert a.yanked is False and a.size == 123
    assert a.upload_time == "2025-06-04T12:00:00.123456Z"
    assert a.core_metadata == {"sha256": "cd" * 32}
    assert a.is_wheel and a.project_version == ("torch", "2.7.1")
    assert a.metadata_url == a.url + ".metadata"
    assert b.yanked == "broken build" and b.core_metadata is True and not b.is_wheel
    assert b.upload_time is None and b.size is None
    assert c.url == "https://example.org/simple/torch/torch-2.6.0-py3-none-any.whl"
    assert c.hashes == {"sha256": "ef" * 32}
    assert c.core_metadata is False
    assert c.yanked is True
    assert page.meta == {"api-version": "1.1"}


def _json_page(entries: list[object]) -> bytes:
    return json.dumps({"name": "foo", "files": entries}).encode()


def _entry(filename: str, digest: str = "aa") -> dict[str, object]:
    return {"filename": filename, "url": filename, "hashes": {"sha256": digest * 32}}


@pytest.mark.parametrize("files_first", [False, True])
def test_json_page_lookups_agree_with_files(files_first: bool) -> None:
    """Files are built on lookup; ``files`` and ``file_named`` hand out the same objects,
    skip unusable entries and, for a filename listed twice, name the first usable one."""
    entries: list[object] = [
        "not an object",
        {"filename": "foo-1.0.tar.gz", "url": 7},  # unusable: the next one counts
        _entry("foo-1.0.tar.gz", "bb"),
        _entry("foo-1.0-py3-none-any.whl", "cc"),
        {"url": "foo-1.1.tar.gz"},
        {"filename": ["x"], "url": "x"},
        _entry("foo-1.0-py3-none-any.whl", "dd"),  # listed again: file_named keeps the first
        _entry("foo-2.0.tar.gz", "ee"),
    ]
    page = parse_simple_json(_json_page(entries), PAGE, "foo")
    files = page.files if files_first else ()
    sdist, wheel = page.file_named("foo-1.0.tar.gz"), page.file_named("foo-1.0-py3-none-any.whl")
    assert sdist is not None and wheel is not None
    assert sdist.sha256 == "bb" * 32 and wheel.sha256 == "cc" * 32
    assert sdist.url == PAGE + "foo-1.0.tar.gz"
    assert page.file_named("foo-1.1.tar.gz") is None and page.file_named("x") is None
    files = page.files
    assert [f.sha256 for f in files] == [d * 32 for d in ("bb", "cc", "dd", "ee")]
    assert files[0] is sdist and files[1] is wheel
    assert page.file_named("foo-1.0.tar.gz") is sdist
    assert [f.filename for f in page.files_for_version("1.0")] == [
        "foo-1.0.tar.gz",
        "foo-1.0-py3-none-any.whl",
        "foo-1.0-py3-none-any.whl",
    ]


def test_json_page_objects_only() -> None:
    """Every entry an object: the fast lookup, which still skips unusable entries."""
    page = parse_simple_json(
        _json_page(
            [
                {"filename": "foo-0.9.tar.gz", "url": None},
                _entry("foo-1.0.tar.gz", "aa"),
                _entry("foo-1.0.tar.gz", "bb"),
                {"filename": 5, "url": "foo-0.8.tar.gz"},
                _entry("foo-0.9.tar.gz", "cc"),
            ]
        ),
        PAGE,
        "foo",
    )
    first = page.file_named("foo-1.0.tar.gz")
    assert first is not None and first.sha256 == "aa" * 32
    later = page.file_named("foo-0.9.tar.gz")
    assert later is not None and later.sha256 == "cc" * 32
    assert [f.sha256 for f in page.files] == ["aa" * 32, "bb" * 32, "cc" * 32]
    assert page.files[0] is first and page.files[2] is later


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[]", b'{"files": {}}', b'{"files": "x"}', b"\xff\xfe"],
)
def test_json_page_malformed(body: bytes) -> None:
    with pytest.raises(IndexRequestError, match="invalid PEP 691 JSON"):
        parse_simple_json(body, PAGE, "foo")


# --- PEP 691 pages answered from their text ------------------------------------------

_NAMES = ["foo-1.0.tar.gz", "foo-1.0-py3-none-any.whl", 'we"ird\\name{}.whl', "caf\u00e9-1.0.zip"]
_URLS = ["foo-1.0.tar.gz", "https://files.example/a/b#sha256=" + "ab" * 32, "http://[::1/broken"]
_STRANGE = ['{"filename": "foo-1.0.tar.gz", "url": "x"}', "}{", '"filename"', "", "\\"]


@st.composite
def _entries(draw: st.DrawFn) -> object:
    kind = draw(st.sampled_from(["usable"] * 6 + ["bad url", "bad filename", "no object"]))
    if kind == "no object":
        return draw(st.sampled_from(["foo-1.0.tar.gz", 7, None, [{"filename": "x", "url": "x"}]]))
    pairs: list[tuple[str, object]] = [
        ("filename", draw(st.sampled_from(_NAMES)) if kind != "bad filename" else 5),
        ("url", draw(st.sampled_from(_URLS)) if kind != "bad url" else None),
        ("hashes", {"sha256": draw(st.sampled_from(["aa", "BB"])) * 32}),
    ]
    if draw(st.booleans()):
        pairs.append(("core-metadata", draw(st.sampled_from([True, {"sha256": "cd" * 32}]))))
    if draw(st.booleans()):
        pairs.append(("yanked", draw(st.sampled_from([True, *_STRANGE]))))
    if draw(st.booleans()):  # an object under a key that looks like an entry
        pairs.append(("extra", {"filename": draw(st.sampled_from(_NAMES)), "url": "evil"}))
    if draw(st.booleans()):
        pairs.append(("size", draw(st.integers(0, 10**12))))
    return dict(draw(st.permutations(pairs)))


def _expected(body: bytes) -> tuple[dict[str, IndexFile | None], list[IndexFile]]:
    """file_named and files as a decode of the whole document gives them."""
    first: dict[str, IndexFile | None] = {}
    files = []
    for entry in json.loads(body)["files"]:
        if not isinstance(entry, dict):
            continue
        if not isinstance(entry.get("filename"), str) or not isinstance(entry.get("url"), str):
            continue
        try:
            file: IndexFile | None = collector._json_file(entry, PAGE)
        except ValueError:
            file = None
        first.setdefault(entry["filename"], file)
        if file is not None:
            files.append(file)
    return first, files


@settings(max_examples=300, deadline=None)
@given(
    entries=st.lists(_entries(), max_size=12),
    layout=st.sampled_from(
        [{"separators": (",", ":")}, {"indent": 1}, {"separators": (" ,", " : ")}]
    ),
    ascii_only=st.booleans(),
    files_last=st.booleans(),
    lookups_first=st.booleans(),
)
def test_json_page_text_lookups_equal_a_full_decode(
    entries: list[object],
    layout: dict[str, Any],
    ascii_only: bool,
    files_last: bool,
    lookups_first: bool,
) -> None:
    top: dict[str, object] = {"meta": {"api-version": "1.1"}, "alternate-locations": []}
    doc = {**top, "files": entries} if files_last else {"files": entries, **top, "name": "Foo"}
    body = json.dumps(doc, ensure_ascii=ascii_only, **layout).encode()
    first, files = _expected(body)
    page = parse_simple_json(body, PAGE, "foo")
    if not lookups_first:
        assert list(page.files) == files
    for filename in [*_NAMES, "absent-1.0.tar.gz"]:
        got = page.file_named(filename)
        assert got == first.get(filename)
        if got is not None:  # the object files hands out for the first entry of that name
            assert next(f for f in page.files if f.filename == filename) is got
    assert list(page.files) == files
    assert page.meta == {"api-version": "1.1"} and page.name == ("foo" if files_last else "Foo")


def _big_page(count: int) -> tuple[bytes, list[str]]:
    names = [f"foo-1.{i}-cp3{i % 9}-cp3{i % 9}-manylinux_2_28_x86_64.whl" for i in range(count)]
    entries = [
        {
            "core-metadata": {"sha256": f"{i:064x}"},
            "filename": name,
            "hashes": {"sha256": f"{i:064x}"},
            "url": f"https://files.example/{i}/{name}",
            "yanked": False,
        }
        for i, name in enumerate(names)
    ]
    doc = {"alternate-locations": [], "files": entries, "meta": {"api-version": "1.1"}}
    return json.dumps(doc, separators=(",", ":")).encode(), names


def test_json_page_lookups_do_not_decode_the_whole_page(monkeypatch: pytest.MonkeyPatch) -> None:
    body, names = _big_page(3000)
    decoded: list[str] = []
    full_decode = collector._decode_document

    def counted(text: str, page_url: str) -> dict[str, Any]:
        decoded.append(page_url)
        return full_decode(text, page_url)

    monkeypatch.setattr(collector, "_decode_document", counted)
    page = parse_simple_json(body, PAGE, "foo")
    wanted = names[::100]
    looked_up = [page.file_named(n) for n in wanted]
    assert decoded == []
    assert [f.sha256 if f else None for f in looked_up] == [
        f"{i:064x}" for i in range(0, 3000, 100)
    ]
    assert page.file_named("foo-9.9.tar.gz") is None  # not listed: proven by a full decode
    assert decoded == [PAGE]
    files = page.files
    assert len(files) == 3000 and all(files[i * 100] is f for i, f in enumerate(looked_up))
    assert decoded == [PAGE]


def test_json_page_corrupt_inside_the_files_list() -> None:
    """Only the outline is checked when parsing; the rest when the page is decoded in full."""
    body = b'{"files": [{"filename": "foo-1.0.tar.gz", "url": "a"}, {"filename": ]}'
    page = parse_simple_json(body, PAGE, "foo")
    with pytest.raises(IndexRequestError, match="invalid PEP 691 JSON"):
        page.file_named("foo-2.0.tar.gz")
    with pytest.raises(IndexRequestError, match="invalid PEP 691 JSON"):
        _ = page.files


def test_json_page_outline_checks() -> None:
    page = parse_simple_json(b' {"meta": {"files": 1}, "files": []} ', PAGE, "foo")
    assert page.files == () and page.file_named("foo-1.0.tar.gz") is None
    # PEP 691 requires "files": a document without it answers nothing about the project
    for body in (b'{"name": "foo"}', b"{}", b'{"meta": {"files": []}}'):
        with pytest.raises(IndexRequestError, match=r"invalid PEP 691 JSON \(no files list\)"):
            parse_simple_json(body, PAGE, "foo")
    for body in (b'{"name": "foo", "files": 1}', b'{"name" "foo"}', b'{"a": 1 "files": []}'):
        with pytest.raises(IndexRequestError, match="invalid PEP 691 JSON"):
            parse_simple_json(body, PAGE, "foo")


def test_json_page_nested_too_deeply() -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    for body in (b'{"x": ' + deep + b', "files": []}', b'{"files": [' + deep + b"]}"):
        with pytest.raises(IndexRequestError, match="nested too deeply"):
            list(parse_simple_json(body, PAGE, "foo").files)


def test_json_page_a_later_files_key_counts() -> None:
    body = b'{"files": [{"filename": "a.whl", "url": "a"}], "files": []}'
    page = parse_simple_json(body, PAGE, "foo")
    assert page.file_named("a.whl") is None and page.files == ()


def test_json_page_escaped_key_spelling() -> None:
    body = (
        b'{"files": [{"file\\u006eame": "a.whl", "url": "first"},'
        b' {"filename": "a.whl", "url": "second"}]}'
    )
    page = parse_simple_json(body, PAGE, "foo")
    listed = page.file_named("a.whl")
    assert listed is not None and listed.url == PAGE + "first"


def test_html_page_attributes() -> None:
    html = f"""<!DOCTYPE html><html><body>
    <a href="../../files/foo-1.0-py3-none-any.whl#sha256={"aa" * 32}"
       data-requires-python="&gt;=3.8,&lt;4" data-core-metadata="sha256={"bb" * 32}">x</a>
    <a href="https://cdn.example.org/foo-1.1-py3-none-any.whl#sha256={"cc" * 32}"
       data-dist-info-metadata="true" data-yanked="">foo-1.1</a>
    <a href="foo-1.2.tar.gz" data-yanked="security issue" data-dist-info-metadata="sha256=11"
       data-core-metadata="sha256=22">foo-1.2</a>
    <a href="../">parent</a>
    <a href="foo-notes.txt">notes</a>
    </body></html>"""
    page = parse_simple_html(html.encode(), "https://example.org/simple/foo/", "Foo")
    a, b, c = page.files
    assert a.url == "https://example.org/files/foo-1.0-py3-none-any.whl"
    assert a.hashes == {"sha256": "aa" * 32}
    assert a.requires_python == ">=3.8,<4"
    assert a.core_metadata == {"sha256": "bb" * 32}
    assert a.yanked is False
    assert b.core_metadata is True and b.yanked is True
    assert c.yanked == "security issue" and c.core_metadata == {"sha256": "22"}
    assert c.url == "https://example.org/simple/foo/foo-1.2.tar.gz"
    assert page.name == "foo"


def test_html_base_tag_and_content_type_dispatch() -> None:
    html = (
        b'<html><head><base href="https://mirror.example/x/"></head>'
        b'<a href="bar-2.0.zip">bar</a></html>'
    )
    page = parse_page(html, "text/html; charset=utf-8", "https://e.org/simple/bar/", "bar")
    assert [f.url for f in page.files] == ["https://mirror.example/x/bar-2.0.zip"]
    as_json = json.dumps({"name": "bar", "files": [{"filename": "bar-2.0.zip", "url": "b.zip"}]})
    page = parse_page(
        as_json.encode(), "application/vnd.pypi.simple.v1+json", "https://e.org/s/bar/", "bar"
    )
    assert page.files[0].url == "https://e.org/s/bar/b.zip"


def test_flat_page_filters_by_project() -> None:
    html = """
    <a href="torch_scatter-2.1.2+pt25cu124-cp311-cp311-linux_x86_64.whl">a</a>
    <a href="torch_sparse-0.6.18+pt25cu124-cp311-cp311-linux_x86_64.whl">b</a>
    <a href="torch-2.5.0+cu124-cp311-cp311-linux_x86_64.whl">c</a>
    <a href="torch-scatter-2.1.1.tar.gz">d</a>
    <a href="torch_scatter-2.1.2+pt25cu124-cp311-cp311-linux_x86_64.whl">dup</a>
    """
    page = parse_simple_html(
        html, "https://data.pyg.org/whl/torch-2.5.0+cu124.html", "torch-scatter", flat=True
    )
    assert [f.filename for f in page.files] == [
        "torch_scatter-2.1.2+pt25cu124-cp311-cp311-linux_x86_64.whl",
        "torch-scatter-2.1.1.tar.gz",
    ]
    torch = parse_simple_html(html, "https://data.pyg.org/x.html", "torch", flat=True)
    assert [f.filename for f in torch.files] == ["torch-2.5.0+cu124-cp311-cp311-linux_x86_64.whl"]


def test_looks_flat() -> None:
    from lockfix.index.local import looks_flat

    assert looks_flat("https://data.pyg.org/whl/torch-2.5.0+cu124.html")
    assert not looks_flat("https://download.pytorch.org/whl/cu126")
    assert not looks_flat("https://pypi.org/simple/")


def test_files_for_version_local_versions() -> None:
    files = tuple(
        IndexFile(fn, "https://e/" + fn)
        for fn in (
            "torch-2.7.1-cp311-cp311-manylinux_2_28_x86_64.whl",
            "torch-2.7.1+cpu-cp311-cp311-manylinux_2_28_x86_64.whl",
            "torch-2.7.1+cu126-cp311-cp311-manylinux_2_28_x86_64.whl",
            "torch-2.7.1.tar.gz",
            "torch-2.7.10.tar.gz",
        )
    )
    from lockfix.dist.simple import ProjectPage

    page = ProjectPage("torch", "https://e/", files)
    assert [f.filename for f in page.files_for_version("2.7.1")] == [
        files[0].filename,
        files[3].filename,
    ]
    assert [f.filename for f in page.files_for_version("2.7.1+cpu")] == [files[1].filename]
    assert [f.filename for f in page.files_for_version("2.7.1.0")] == [
        files[0].filename,
        files[3].filename,
    ]
    assert page.file_named(files[2].filename) is files[2]


def test_parse_filename() -> None:
    assert parse_filename("Foo_Bar-1.0-py3-none-any.whl").name == "foo-bar"  # type: ignore[union-attr]
    assert parse_filename("foo-bar-1.0.tar.gz") is not None
    info = parse_filename("foo-bar-1.0.tar.gz")
    assert info is not None and (info.name, info.version, info.is_wheel) == (
        "foo-bar",
        "1.0",
        False,
    )
    assert parse_filename("README.txt") is None
    assert parse_filename("broken.whl") is None
    assert file_matches_project("zope.interface-5.0.zip", "zope-interface")
    assert not file_matches_project("foo-bar-1.0.tar.gz", "foo")


def test_index_file_is_hashable() -> None:
    """Files are told apart by filename and URL, whatever mapping holds their hashes."""
    f = IndexFile("a-1.0.tar.gz", "https://e/a-1.0.tar.gz", {"sha256": "00"})
    same = IndexFile("a-1.0.tar.gz", "https://e/a-1.0.tar.gz", {"sha256": "00"})
    elsewhere = IndexFile("a-1.0.tar.gz", "https://f/a-1.0.tar.gz", {"sha256": "00"})
    assert f is not same and f == same and hash(f) == hash(same)
    assert len({f, same}) == 1
    assert len({f, same, elsewhere}) == 2
    assert {f: 1}[same] == 1


@given(st.text(max_size=300))
def test_html_parser_never_crashes(text: str) -> None:
    """A page, or the one error for text without any markup."""
    for url, flat in (("https://e.org/simple/x/", False), ("https://e.org/flat.html", True)):
        try:
            parse_simple_html(text, url, "x", flat=flat)
        except IndexRequestError as error:
            assert str(error) == f"not an HTML page: {url}"


@pytest.mark.parametrize("text", ["", "  \n", "\x00\xff<<<>>>&&&\xfe", "no files here"])
def test_text_without_markup_is_not_a_page(text: str) -> None:
    with pytest.raises(IndexRequestError, match="not an HTML page"):
        parse_simple_html(text, "https://e.org/simple/x/", "x")
    page = parse_simple_html("<html><body>no files</body></html>", "https://e.org/simple/x/", "x")
    assert page.files == ()


# --- local indexes -------------------------------------------------------------------

SCENARIO = {
    "indexes": [
        {
            "name": "wheels",
            "packages": [
                {"name": "alpha", "version": "1.0", "requires-dist": ["beta>=2"], "sdist": True},
                {"name": "beta", "version": "2.0"},
            ],
        }
    ]
}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    return build_scenario(SCENARIO, tmp_path_factory.mktemp("local"))


def _run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_relative_local_flat_dir(built) -> None:  # type: ignore[no-untyped-def]
    base = built.root

    async def go() -> None:
        async with IndexClient(cache=None, base_dir=base) as client:
            page = await client.project_page("wheels/files", "alpha")
            names = sorted(f.filename for f in page.files)
            assert names == ["alpha-1.0-py3-none-any.whl", "alpha-1.0.tar.gz"]
            for f in page.files:
                assert f.url.startswith("file:")
                assert f.sha256 == built.find("wheels", f.filename).sha256
                md = await client.file_metadata("wheels/files", f)
                assert md.requires_dist == ("beta>=2",)
            with pytest.raises(ProjectNotFound):
                await client.project_page("wheels/files", "gamma")
            assert client.stats.requests == 0

    _run(go())


def test_file_url_simple_layout(built, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "simple"
    for proj in built["wheels"].projects.values():
        d = root / proj.name
        d.mkdir(parents=True)
        links = "".join(
            f'<a href="{path_to_url(f.path)}#sha256={f.sha256}">{f.filename}</a>\n'
            for f in proj.files
        )
        (d / "index.html").write_text(f"<html><body>{links}</body></html>")

    async def go() -> None:
        async with IndexClient(cache=None) as client:
            page = await client.project_page(path_to_url(root), "Alpha")
            assert len(page.files) == 2
            wheel = next(f for f in page.files if f.is_wheel)
            md = await client.file_metadata(path_to_url(root), wheel, {"sha256": wheel.sha256})
            assert (md.name, md.version) == ("alpha", "1.0")
            with pytest.raises(ProjectNotFound):
                await client.project_page(path_to_url(root), "gamma")

    _run(go())


def test_malformed_links_list_no_file_and_never_raise() -> None:
    good = "pkg-1.0-py3-none-any.whl"
    bad = "pkg-1.0.tar.gz"
    doc = {
        "meta": {"api-version": "1.1"},
        "name": "pkg",
        "files": [
            {"filename": bad, "url": "//[broken-ipv6/pkg-1.0.tar.gz", "hashes": {}},
            {"filename": good, "url": f"/files/{good}", "hashes": {"sha256": "ab" * 32}},
        ],
    }
    for files_first in (False, True):
        page = parse_simple_json(json.dumps(doc), "https://h/simple/pkg/", "pkg")
        if files_first:
            assert [f.filename for f in page.files] == [good]
        assert page.file_named(bad) is None
        assert page.file_named(good) is not None
        assert [f.filename for f in page.files] == [good]
    html = (
        f'<a href="//[broken-ipv6/{bad}">{bad}</a><a href="/files/{good}#sha256={"ab" * 32}">x</a>'
    )
    page = parse_simple_html(html.encode(), "https://h/simple/pkg/", "pkg")
    assert [f.filename for f in page.files] == [good]


def test_a_malformed_absolute_url_is_an_index_error_not_a_crash() -> None:
    bad = IndexFile("pkg-1.0-py3-none-any.whl", "https://[broken-ipv6/pkg-1.0-py3-none-any.whl")

    async def go() -> None:
        async with IndexClient(retry_wait=0.01) as client:
            await client.file_metadata("https://h/simple/", bad)

    with pytest.raises(IndexRequestError, match="invalid URL"):
        asyncio.run(go())
