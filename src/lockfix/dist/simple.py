"""Index pages → files: PEP 503 HTML, PEP 691 JSON and flat find-links pages.

Parsing only: fetching pages and listing local folders live in :mod:`lockfix.index`.
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any, Final
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

from packaging.version import InvalidVersion, Version

from lockfix.dist.names import canonicalize_name, wheel_name_version
from lockfix.errors import IndexRequestError

SIMPLE_ACCEPT = (
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, "
    "text/html;q=0.01"
)
JSON_CONTENT_TYPES = ("application/vnd.pypi.simple.v1+json", "application/json")

SDIST_EXTENSIONS = (
    ".tar.gz", ".tgz", ".tar.bz2", ".tbz", ".tar.xz", ".txz", ".tar.zst", ".tar.lz", ".tar", ".zip",
)  # fmt: skip


class FileNameInfo:
    __slots__ = ("is_wheel", "name", "version")
    name: Final[str]  # canonicalized
    version: Final[str]
    is_wheel: Final[bool]

    def __init__(self, name: str, version: str, is_wheel: bool) -> None:
        self.name = name
        self.version = version
        self.is_wheel = is_wheel

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FileNameInfo):
            return NotImplemented
        return (self.name, self.version, self.is_wheel) == (
            other.name,
            other.version,
            other.is_wheel,
        )

    def __hash__(self) -> int:
        return hash((self.name, self.version, self.is_wheel))

    def __repr__(self) -> str:
        return f"FileNameInfo({self.name!r}, {self.version!r}, {self.is_wheel})"


@functools.lru_cache(maxsize=4096)
def parse_filename(filename: str) -> FileNameInfo | None:
    """Project name + version from a wheel or sdist filename, or None if it's neither.

    Remembered: a check asks for the name and version of each locked file several times
    (its artifact audit, then its metadata's checks)."""
    if filename.endswith(".whl"):
        wheel = wheel_name_version(filename)
        if wheel is None:
            return None
        return FileNameInfo(wheel[0], str(wheel[1]), True)
    lower = filename.lower()
    for ext in SDIST_EXTENSIONS:
        if lower.endswith(ext):
            stem = filename[: -len(ext)]
            # The version never contains '-', the (legacy, unnormalized) name may.
            name, sep, version = stem.rpartition("-")
            if not sep or not name or not version:
                return None
            with contextlib.suppress(InvalidVersion):
                version = str(Version(version))
            return FileNameInfo(canonicalize_name(name), version, False)
    return None


def file_matches_project(filename: str, name: str) -> bool:
    """For flat pages: does ``filename`` belong to project ``name``?"""
    want = canonicalize_name(name)
    info = parse_filename(filename)
    if info is not None:
        return info.name == want
    # sdists of projects whose names contain '-' followed by digits confuse rpartition; be lenient.
    lower = filename.lower()
    for ext in SDIST_EXTENSIONS:
        if lower.endswith(ext):
            stem = filename[: -len(ext)]
            for i in (m.start() for m in re.finditer("-", stem)):
                if canonicalize_name(stem[:i]) == want:
                    return True
    return False


_EMPTY: Mapping[str, str] = MappingProxyType({})


class IndexFile:
    __slots__ = (
        "core_metadata",
        "filename",
        "hashes",
        "requires_python",
        "size",
        "upload_time",
        "url",
        "yanked",
    )
    filename: Final[str]
    url: Final[str]
    hashes: Final[Mapping[str, str]]
    requires_python: Final[str | None]
    yanked: Final[bool | str]
    size: Final[int | None]
    upload_time: Final[str | None]
    core_metadata: Final[Mapping[str, str] | bool]

    def __init__(
        self,
        filename: str,
        url: str,
        hashes: Mapping[str, str] = _EMPTY,
        requires_python: str | None = None,
        yanked: bool | str = False,
        size: int | None = None,
        upload_time: str | None = None,
        core_metadata: Mapping[str, str] | bool = False,
    ) -> None:
        self.filename = filename
        self.url = url
        self.hashes = hashes
        self.requires_python = requires_python
        self.yanked = yanked
        self.size = size
        self.upload_time = upload_time
        self.core_metadata = core_metadata

    def _key(self) -> tuple[Any, ...]:
        return (
            self.filename,
            self.url,
            self.hashes,
            self.requires_python,
            self.yanked,
            self.size,
            self.upload_time,
            self.core_metadata,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, IndexFile):
            return NotImplemented
        return self._key() == other._key()

    def __repr__(self) -> str:
        return "IndexFile({!r}, {!r}, hashes={!r}, requires_python={!r}, yanked={!r}, size={!r}, upload_time={!r}, core_metadata={!r})".format(  # noqa: E501
            *self._key()
        )

    def __hash__(self) -> int:  # the mappings are not hashable; filename+url identify a file
        return hash((self.filename, self.url))

    def __reduce__(self) -> tuple[Any, ...]:
        # mappingproxy does not pickle; a lockfix._shard worker sends IndexFiles back
        cm = self.core_metadata
        return (
            _index_file,
            (
                self.filename,
                self.url,
                dict(self.hashes),
                self.requires_python,
                self.yanked,
                self.size,
                self.upload_time,
                dict(cm) if isinstance(cm, Mapping) else cm,
            ),
        )

    @property
    def is_wheel(self) -> bool:
        return self.filename.endswith(".whl")

    @property
    def is_sdist(self) -> bool:
        return not self.is_wheel and parse_filename(self.filename) is not None

    @property
    def project_version(self) -> tuple[str, str] | None:
        """(canonical name, normalized version) parsed from the filename."""
        info = parse_filename(self.filename)
        return None if info is None else (info.name, info.version)

    @property
    def sha256(self) -> str | None:
        return self.hashes.get("sha256")

    @property
    def metadata_url(self) -> str:
        parts = urlsplit(self.url)
        return urlunsplit(parts._replace(path=parts.path + ".metadata", fragment=""))


def _index_file(
    filename: str,
    url: str,
    hashes: dict[str, str],
    requires_python: str | None,
    yanked: bool | str,
    size: int | None,
    upload_time: str | None,
    core_metadata: dict[str, str] | bool,
) -> IndexFile:
    return IndexFile(
        filename,
        url,
        MappingProxyType(hashes),
        requires_python,
        yanked,
        size,
        upload_time,
        MappingProxyType(core_metadata) if isinstance(core_metadata, dict) else core_metadata,
    )


def _same_version(a: str, b: str) -> bool:
    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return a.strip().lower() == b.strip().lower()


class ProjectPage:
    """The files one index lists for a project, in page order.

    A PEP 691 page keeps its text and builds an :class:`IndexFile` only when it is looked up:
    a check needs the few locked files of a project among the thousands its page lists
    (PyPI's pydantic-core page has ~15,000), and only choosing a version needs them all."""

    __slots__ = ("_by_filename", "_files", "_json", "_meta", "_name", "_raw", "url")

    def __init__(
        self,
        name: str,
        url: str,
        files: Iterable[IndexFile] = (),
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        self._name = name
        self.url = url
        # PEP 691 "meta" (api-version, …), empty for HTML
        self._meta: Mapping[str, Any] = dict(meta) if meta else {}
        self._files: tuple[IndexFile, ...] | None = tuple(files)
        self._raw: _RawJsonFiles | None = None
        self._json: _JsonFiles | None = None
        self._by_filename: dict[str, IndexFile] | None = None

    @classmethod
    def _from_raw(cls, name: str, url: str, raw: _RawJsonFiles) -> ProjectPage:
        page = cls(name, url)
        page._files, page._raw = None, raw
        return page

    def __repr__(self) -> str:
        return f"ProjectPage(name={self._name!r}, url={self.url!r})"  # no decoding

    @property
    def name(self) -> str:
        self._decode()  # a PEP 691 page's "name" may follow its files
        return self._name

    @property
    def meta(self) -> Mapping[str, Any]:
        self._decode()
        return self._meta

    def _decode(self) -> None:
        """Decode a PEP 691 page in full (once); raises IndexRequestError if it is corrupt."""
        raw = self._raw
        if raw is None:
            return
        doc = _decode_document(raw.text, self.url)
        meta, name = doc.get("meta"), doc.get("name")
        self._meta = dict(meta) if isinstance(meta, Mapping) else {}
        self._name = str(name or self._name)
        self._json = _JsonFiles(doc.get("files", []), self.url, raw.built)
        self._raw = None  # drop the text

    @property
    def files(self) -> tuple[IndexFile, ...]:
        if self._files is None:
            self._decode()
            assert self._json is not None
            self._files = self._json.all()
            self._json = None  # the files built so far are among them; drop the raw entries
        return self._files

    def files_for_version(self, version: str) -> list[IndexFile]:
        """Files whose filename version equals ``version`` under PEP 440.

        Local versions count: ``2.7.1+cpu`` ≠ ``2.7.1``."""
        out = []
        for f in self.files:
            pv = f.project_version
            if pv is not None and _same_version(pv[1], version):
                out.append(f)
        return out

    def file_named(self, filename: str) -> IndexFile | None:
        """The first file listed under ``filename`` (the same object on every call)."""
        if self._raw is not None:
            with contextlib.suppress(_Unproven):
                return self._raw.named(filename)
            self._decode()
        if self._json is not None:
            return self._json.named(filename)
        if self._by_filename is None:
            index: dict[str, IndexFile] = {}
            for f in self.files:
                index.setdefault(f.filename, f)
            self._by_filename = index
        return self._by_filename.get(filename)


# --- hashes and metadata advertisement --------------------------------------------------


def _split_fragment(url: str) -> tuple[str, dict[str, str]]:
    """Strip a ``#sha256=...`` fragment into a hashes dict (PEP 503)."""
    if "#" not in url:
        return url, {}
    parts = urlsplit(url)
    hashes: dict[str, str] = {}
    if parts.fragment:
        algo, sep, value = parts.fragment.partition("=")
        if sep and algo and value:
            hashes[algo.lower()] = value.lower()
    return urlunsplit(parts._replace(fragment="")), hashes


def _clean_hashes(raw: Any) -> dict[str, str]:
    if not isinstance(raw, Mapping):
        return {}
    return {str(k).lower(): str(v).lower() for k, v in raw.items() if isinstance(v, str) and v}


def _parse_html_metadata_attr(value: str | None) -> Mapping[str, str] | bool:
    # PEP 658: "true", or "<algo>=<hex>"; absence → False. An empty attribute counts as "true".
    if value is None:
        return False
    value = value.strip()
    if value.lower() in ("", "true"):
        return True
    algo, sep, digest = value.partition("=")
    if sep and algo and digest:
        return MappingProxyType({algo.lower(): digest.lower()})
    return False  # "false" or garbage: not advertised


def _parse_json_metadata_value(value: Any) -> Mapping[str, str] | bool:
    if value is None or value is False:
        return False
    if value is True:
        return True
    if isinstance(value, Mapping):
        hashes = _clean_hashes(value)
        return MappingProxyType(hashes) if hashes else True
    return False


def _yanked(value: Any) -> bool | str:
    if value is None or value is False:
        return False
    if value is True:
        return True
    if isinstance(value, str):
        # HTML: attribute present (even empty) means yanked; the value is the reason.
        return value if value.strip() else True
    return bool(value)


# --- PEP 691 JSON ---------------------------------------------------------------------


def parse_simple_json(data: bytes | str, page_url: str, name: str) -> ProjectPage:
    """A PEP 691 page, checked only in outline here: its files are decoded on lookup."""
    if isinstance(data, bytes):
        try:
            # as json.loads does for bytes
            text = data.decode(json.detect_encoding(data), "surrogatepass")
        except (UnicodeDecodeError, LookupError) as e:
            raise IndexRequestError(f"invalid PEP 691 JSON ({e})", page_url) from None
    else:
        text = data
    files_at = _check_outline(text, page_url)
    raw = _RawJsonFiles(text, page_url, files_at)
    return ProjectPage._from_raw(canonicalize_name(name), page_url, raw)


def _invalid(page_url: str, why: str) -> IndexRequestError:
    return IndexRequestError(f"invalid PEP 691 JSON ({why})", page_url)


_WS = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


def _after_ws(text: str, pos: int) -> int:
    """The end of the JSON whitespace that starts at ``pos``."""
    found = _WS.match(text, pos)
    assert found is not None  # it matches "" too
    return found.end()


def _before_ws(text: str, pos: int) -> int:
    """The start of the JSON whitespace that ends at ``pos``."""
    while pos > 0 and text[pos - 1] in " \t\n\r":
        pos -= 1
    return pos


def _check_outline(text: str, page_url: str) -> int:
    """Where the "files" list starts; raises for a document that is not an object whose
    "files" is a list (PEP 691 requires the key).

    The top-level keys up to "files" are decoded (PyPI puts at most an empty
    "alternate-locations" first); the rest is checked only when the page is decoded in full."""
    pos = _after_ws(text, 0)
    end = _before_ws(text, len(text))
    if text[pos : pos + 1] != "{" or text[end - 1 : end] != "}":
        raise _invalid(page_url, "not an object")
    pos = _after_ws(text, pos + 1)
    if text[pos : pos + 1] == "}":
        raise _invalid(page_url, "no files list")
    try:
        while True:
            if text[pos : pos + 1] != '"':
                raise ValueError(f"a key expected at {pos}")
            key, pos = _DECODER.raw_decode(text, pos)
            pos = _after_ws(text, pos)
            if text[pos : pos + 1] != ":":
                raise ValueError(f"':' expected at {pos}")
            pos = _after_ws(text, pos + 1)
            if key == "files":
                if text[pos : pos + 1] != "[":
                    raise _invalid(page_url, "no files list")
                return pos
            _, pos = _DECODER.raw_decode(text, pos)
            pos = _after_ws(text, pos)
            if text[pos : pos + 1] == "}":
                raise _invalid(page_url, "no files list")
            if text[pos : pos + 1] != ",":
                raise ValueError(f"',' or '}}' expected at {pos}")
            pos = _after_ws(text, pos + 1)
    except ValueError as e:  # JSONDecodeError included
        raise _invalid(page_url, str(e)) from None
    except RecursionError:
        raise _invalid(page_url, "nested too deeply") from None


def _decode_document(text: str, page_url: str) -> dict[str, Any]:
    """The whole document (its outline was checked by :func:`parse_simple_json`)."""
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise _invalid(page_url, str(e)) from None
    except RecursionError:
        raise _invalid(page_url, "nested too deeply") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("files"), list):
        raise _invalid(page_url, "no files list")
    return doc


# A "filename" key and its string value, or a "files" key. In a valid document a match is
# always a key of some object (an unescaped quote cannot occur inside a string); the object
# is found and checked on lookup. A value with a backslash is cut short at an escaped quote
# and decoded again in full, so that the common value is matched by [^"]* alone.
_FILE_KEYS = re.compile(r'"file(?:name"[ \t\n\r]*:[ \t\n\r]*"([^"]*)"|s"[ \t\n\r]*:)')


# A key spelled with a \u escape ("file\u006eame") is invisible to _FILE_KEYS.
@functools.cache
def _escaped_key() -> re.Pattern[str]:
    return re.compile(r'\\u[0-9a-fA-F]{4}(?:[^"\\]|\\.)*"[ \t\n\r]*:')


_MAX_OBJECT_STARTS = 32  # "{" tried back from a filename key for the entry holding it


class _Unproven(Exception):
    """A lookup in the text of a page that only a full decode can answer."""


class _RawJsonFiles:
    """The text of a PEP 691 page, answering a lookup from the one entry it names.

    :meth:`named` raises :class:`_Unproven` whenever it cannot show that its answer is the
    one a full decode gives; the page is then decoded in full."""

    __slots__ = ("_files_at", "_first", "_page_url", "built", "text")

    def __init__(self, text: str, page_url: str, files_at: int) -> None:
        self.text = text
        self._page_url = page_url
        self._files_at = files_at  # the "[" of the files list
        self._first: dict[str, int] | None = None  # filename → offset of its first key
        self.built: dict[str, IndexFile] = {}  # handed on to _JsonFiles

    def _index(self) -> dict[str, int]:
        if self._first is None:
            self._first = {}  # every lookup unproven, until the index below is complete
            text = self.text
            # (a backslash first: most pages have none, and one character is found fastest)
            if not self._files_at or ("\\" in text and _escaped_key().search(text)):
                return self._first
            first: dict[str, int] = {}
            files_keys = 0
            for m in _FILE_KEYS.finditer(text):
                filename = m[1]
                if filename is None:
                    files_keys += 1
                    continue
                if "\\" in filename:
                    try:
                        filename = _DECODER.raw_decode(text, m.start(1) - 1)[0]
                    except ValueError:
                        return self._first  # a corrupt escape: leave it to the full decode
                if filename not in first:
                    first[filename] = m.start()
            if files_keys == 1:  # else a "files" key again, maybe the one that counts
                self._first = first
        return self._first

    def named(self, filename: str) -> IndexFile | None:
        file = self.built.get(filename)
        if file is not None:
            return file
        at = self._index().get(filename)
        entry = None if at is None else self._entry_at(at)
        if (
            entry is None
            or entry.get("filename") != filename
            or not isinstance(entry.get("url"), str)
        ):
            raise _Unproven  # not listed, or not a usable entry of the list
        try:
            file = self.built[filename] = _json_file(entry, self._page_url)
        except ValueError:
            return None  # a malformed URL lists no usable file (as _JsonFiles.named)
        return file

    def _entry_at(self, key_at: int) -> dict[str, Any] | None:
        """The object whose "filename" key starts at ``key_at``, if it is an element of a
        list; None when that cannot be shown.

        Which list is not checked: that would take a scan of the page up to the key. PEP 691
        has no list of objects but "files", and an index could list such a file anyway."""
        text = self.text
        key = _FILE_KEYS.match(text, key_at)
        assert key is not None  # the caller found a key here
        key_end = key.end()
        pos = key_at
        for _ in range(_MAX_OBJECT_STARTS):
            pos = text.rfind("{", self._files_at, pos)
            if pos < 0:
                return None
            try:
                value, end = _DECODER.raw_decode(text, pos)
            except ValueError:
                continue  # a "{" inside a string
            except RecursionError:
                return None  # left to the full decode, which reports it
            if end <= key_end:
                continue  # an object before the key (e.g. "hashes")
            # the innermost object holding the key: it must be a list element
            i, j = _before_ws(text, pos), _after_ws(text, end)
            before, after = text[i - 1 : i] if i else "", text[j : j + 1]
            if before in ("[", ",") and after in (",", "]") and isinstance(value, dict):
                return value
            return None
        return None


def _json_filename(entry: Any) -> str | None:
    """The filename of a usable PEP 691 file entry; None for one that is skipped."""
    # json.loads makes every object a dict.
    if not isinstance(entry, dict):
        return None
    filename = entry.get("filename")
    if not isinstance(filename, str) or not isinstance(entry.get("url"), str):
        return None
    return filename


class _JsonFiles:
    """The ``files`` list of a PEP 691 page, turned into IndexFiles on demand."""

    __slots__ = ("_built", "_entries", "_first", "_page_url")

    def __init__(
        self, entries: list[Any], page_url: str, built: dict[str, IndexFile] | None = None
    ) -> None:
        self._entries = entries
        self._page_url = page_url
        self._first: dict[str, dict[str, Any]] | None = None
        self._built: dict[str, IndexFile] = built if built is not None else {}

    def _index(self) -> dict[str, dict[str, Any]]:
        """filename → its first entry; may hold an unusable entry (see :meth:`named`)."""
        if self._first is None:
            try:
                # One pass in C for a well-formed page (reversed: the first entry wins).
                self._first = {e["filename"]: e for e in reversed(self._entries)}
            except (TypeError, KeyError):
                self._first = self._checked_index()
        return self._first

    def _checked_index(self) -> dict[str, dict[str, Any]]:
        """filename → its first usable entry."""
        first: dict[str, dict[str, Any]] = {}
        for entry in self._entries:
            filename = _json_filename(entry)
            if filename is not None and filename not in first:
                first[filename] = entry
        return first

    def named(self, filename: str) -> IndexFile | None:
        file = self._built.get(filename)
        if file is None:
            entry = self._index().get(filename)
            if entry is not None and _json_filename(entry) is None:
                self._first = self._checked_index()  # an unusable entry came first
                entry = self._first.get(filename)
            if entry is None:
                return None
            try:
                file = self._built[filename] = _json_file(entry, self._page_url)
            except ValueError:
                return None  # a malformed URL (e.g. a broken IPv6 host) lists no usable file
        return file

    def all(self) -> tuple[IndexFile, ...]:
        first = self._checked_index()
        files = []
        for entry in self._entries:
            filename = _json_filename(entry)
            if filename is None:
                continue
            is_first = first[filename] is entry  # not a later entry under the same name
            file = self._built.get(filename) if is_first else None
            if file is None:
                try:
                    file = _json_file(entry, self._page_url)
                except ValueError:
                    continue  # a malformed URL: as in named()
                if is_first:
                    self._built[filename] = file
            files.append(file)
        return tuple(files)


def _json_file(entry: Mapping[str, Any], page_url: str) -> IndexFile:
    url: str = entry["url"]
    # PyPI's pages list tens of thousands of absolute URLs: skip urljoin for those.
    absolute = url if url.startswith(("https://", "http://")) else urljoin(page_url, url)
    abs_url, frag_hashes = _split_fragment(absolute)
    hashes = {**frag_hashes, **_clean_hashes(entry.get("hashes"))}
    cm = entry.get("core-metadata")
    if cm is None:
        cm = entry.get("dist-info-metadata")
    size = entry.get("size")
    upload_time = entry.get("upload-time")
    rp = entry.get("requires-python")
    return IndexFile(
        filename=entry["filename"],
        url=abs_url,
        hashes=MappingProxyType(hashes),
        requires_python=rp if isinstance(rp, str) and rp.strip() else None,
        yanked=_yanked(entry.get("yanked")),
        size=size if isinstance(size, int) and not isinstance(size, bool) else None,
        upload_time=upload_time if isinstance(upload_time, str) else None,
        core_metadata=_parse_json_metadata_value(cm),
    )


# --- PEP 503 HTML ---------------------------------------------------------------------


def _filename_from_url(url: str) -> str:
    return unquote(urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1])


def parse_simple_html(
    data: bytes | str, page_url: str, name: str, *, flat: bool = False
) -> ProjectPage:
    """Parse a PEP 503 project page, or with ``flat=True`` a find-links page listing files of
    many projects (only files of ``name`` are kept)."""
    from lockfix.dist._html import AnchorParser  # html.parser only for an HTML page

    text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
    parser = AnchorParser()
    parser.feed(text)
    parser.close()
    if not parser.markup:  # an empty page or garbage: no answer about the project's files
        raise IndexRequestError("not an HTML page", page_url)
    base = urljoin(page_url, parser.base) if parser.base else page_url
    files: list[IndexFile] = []
    seen: set[str] = set()
    for attrs, _text in parser.anchors:
        href = attrs.get("href")
        if not href:
            continue
        try:
            abs_url, hashes = _split_fragment(urljoin(base, href.strip()))
        except ValueError:
            continue  # a malformed link (e.g. a broken IPv6 host) lists no usable file
        filename = _filename_from_url(abs_url)
        if not filename or parse_filename(filename) is None:
            continue  # directory links, parent links, unknown formats
        if flat and not file_matches_project(filename, name):
            continue
        if flat and abs_url in seen:
            continue
        seen.add(abs_url)
        cm = attrs.get("data-core-metadata")
        if cm is None:
            cm = attrs.get("data-dist-info-metadata")
        rp = attrs.get("data-requires-python")
        files.append(
            IndexFile(
                filename=filename,
                url=abs_url,
                hashes=MappingProxyType(hashes),
                requires_python=rp.strip() if rp and rp.strip() else None,
                yanked=_yanked(attrs["data-yanked"] or "") if "data-yanked" in attrs else False,
                core_metadata=_parse_html_metadata_attr(cm)
                if ("data-core-metadata" in attrs or "data-dist-info-metadata" in attrs)
                else False,
            )
        )
    return ProjectPage(name=canonicalize_name(name), url=page_url, files=tuple(files))


def parse_page(
    data: bytes, content_type: str | None, page_url: str, name: str, *, flat: bool = False
) -> ProjectPage:
    ctype = (content_type or "").split(";", 1)[0].strip().lower()
    if not flat and ctype in JSON_CONTENT_TYPES:
        return parse_simple_json(data, page_url, name)
    if not flat and not ctype and data.lstrip()[:1] == b"{":
        return parse_simple_json(data, page_url, name)
    return parse_simple_html(data, page_url, name, flat=flat)
