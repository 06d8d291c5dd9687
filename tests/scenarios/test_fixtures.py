"""Tests of the test fixtures themselves: real wheels, real loopback index server, real uv."""

from __future__ import annotations

import base64
import hashlib
import http.client
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import time
import zipfile
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin

import pytest

from fixtures.builder import (
    build_scenario,
    build_sdist_bytes,
    build_wheel_bytes,
    load_scenario,
    normalize_name,
    wheel_filename,
)
from fixtures.scenarios import NVIDIA_PINS, get_scenario, make_project, pyproject_text
from fixtures.server import Fault, IndexServer, negotiate
from fixtures.uvrun import run_uv, uv_bin, uv_env

REPO = Path(__file__).resolve().parents[2]
UV_ACCEPT = (
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, "
    "text/html;q=0.01"
)

SMALL = {
    "indexes": [
        {
            "name": "main",
            "packages": [
                {
                    "name": "Demo_Pkg",
                    "version": "1.0",
                    "requires-python": ">=3.8,<4",
                    "requires-dist": ["dep-one>=1", 'dep-two; extra == "fast"'],
                    "sdist": True,
                    "upload-time": "2024-01-02T03:04:05.678901Z",
                },
                {"name": "dep-one", "version": "1.2", "pad": 200_000},
                {"name": "dep-two", "version": "0.1", "yanked": "broken build"},
                {
                    "name": "native",
                    "version": "2.0",
                    "tags": ["cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64"],
                },
            ],
        },
        {"name": "other", "packages": [{"name": "dep-one", "version": "9.0"}]},
    ]
}


# --------------------------------------------------------------------------- helpers


def request(srv: IndexServer, path: str, method: str = "GET", headers: dict | None = None):
    """One raw HTTP request (no redirects, no proxies); returns (status, headers, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    try:
        conn.request(method, path, headers=headers or {})
        resp = conn.getresponse()
        body = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body
    finally:
        conn.close()


class Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.anchors: list[dict[str, str | None]] = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self.anchors.append(dict(attrs))


def anchors(body: bytes) -> list[dict[str, str | None]]:
    p = Anchors()
    p.feed(body.decode())
    return p.anchors


def basic(user: str, pw: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return build_scenario(SMALL, tmp_path_factory.mktemp("small"))


@pytest.fixture
def srv(small):
    with IndexServer(small) as s:
        yield s


@pytest.fixture(scope="module")
def torch_built(tmp_path_factory):
    return build_scenario(get_scenario("torch_groups"), tmp_path_factory.mktemp("torch"))


# --------------------------------------------------------------------------- builder


def test_wheel_bytes_are_deterministic_and_pinned():
    spec = {"name": "filelock", "version": "3.18.0", "requires-python": ">=3.9"}
    a, ma = build_wheel_bytes(spec, "py3-none-any")
    b, mb = build_wheel_bytes(dict(spec), "py3-none-any")
    assert a == b and ma == mb
    # pinned: any change of zip layout/timestamps/permissions/metadata shows up here
    assert hashlib.sha256(a).hexdigest() == (
        "8ecce00910243b2d6fbf8a1278ed3bfb32ad1d3f3d00330b1b34c3c497e0279a"
    )


def test_sdist_bytes_are_deterministic_and_pinned():
    spec = {"name": "filelock", "version": "3.18.0", "requires-dist": ["a"]}
    a, pkg_info = build_sdist_bytes(spec)
    assert a == build_sdist_bytes(dict(spec))[0]
    assert hashlib.sha256(a).hexdigest() == (
        "7fa0d3941a10baae0395e5f75871bcd4bade07a897ecc2f889d44df4d39bbd91"
    )
    with tarfile.open(fileobj=io.BytesIO(a)) as tf:
        names = tf.getnames()
        assert "filelock-3.18.0/PKG-INFO" in names
        assert tf.extractfile("filelock-3.18.0/PKG-INFO").read() == pkg_info
        assert all(m.mtime == 315532800 and m.uid == 0 for m in tf.getmembers())
    assert pkg_info.startswith(b"Metadata-Version: 2.2\n")


def test_scenario_build_is_deterministic_across_dirs(tmp_path):
    a = build_scenario(get_scenario("torch_groups"), tmp_path / "a")
    b = build_scenario(get_scenario("torch_groups"), tmp_path / "b")
    # cheap enough for every test module to build its own: it writes the files it lists and
    # nothing else, 131 KB in all when this was written
    written = sorted(p for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert written == sorted(f.path for idx in a.indexes.values() for f in idx.files.values())
    assert sum(p.stat().st_size for p in written) < 1_000_000
    for name, idx in a.indexes.items():
        for fn, f in idx.files.items():
            g = b.find(name, fn)
            assert f.path.read_bytes() == g.path.read_bytes()
            assert f.sha256 == hashlib.sha256(f.path.read_bytes()).hexdigest() == g.sha256
            assert f.size == f.path.stat().st_size


def test_wheel_structure_record_and_metadata(small):
    f = small.find("main", wheel_filename("Demo_Pkg", "1.0", "py3-none-any"))
    assert f.filename == "demo_pkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(f.path) as zf:
        names = zf.namelist()
        assert names == [
            "demo_pkg/__init__.py",
            "demo_pkg-1.0.dist-info/METADATA",
            "demo_pkg-1.0.dist-info/WHEEL",
            "demo_pkg-1.0.dist-info/RECORD",
        ]
        for info in zf.infolist():
            assert info.date_time == (1980, 1, 1, 0, 0, 0)
            assert info.external_attr >> 16 == 0o100644
        meta = zf.read("demo_pkg-1.0.dist-info/METADATA")
        assert meta == f.metadata
        assert f.metadata_sha256 == hashlib.sha256(meta).hexdigest()
        text = meta.decode()
        assert "Metadata-Version: 2.3\nName: Demo_Pkg\nVersion: 1.0\n" in text
        assert "Requires-Python: >=3.8,<4\n" in text
        assert "Provides-Extra: fast\n" in text
        assert 'Requires-Dist: dep-two; extra == "fast"\n' in text
        wheel = zf.read("demo_pkg-1.0.dist-info/WHEEL").decode()
        assert "Root-Is-Purelib: true\n" in wheel and "Tag: py3-none-any\n" in wheel
        record = zf.read("demo_pkg-1.0.dist-info/RECORD").decode().splitlines()
        assert record[-1] == "demo_pkg-1.0.dist-info/RECORD,,"
        for line in record[:-1]:
            path, h, size = line.rsplit(",", 2)
            data = zf.read(path)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            assert h == "sha256=" + digest.decode() and int(size) == len(data)


def test_platform_wheel_tags(small):
    fn = "native-2.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
    f = small.find("main", fn)
    with zipfile.ZipFile(f.path) as zf:
        wheel = zf.read("native-2.0.dist-info/WHEEL").decode()
    assert "Root-Is-Purelib: false\n" in wheel
    assert "Tag: cp311-cp311-manylinux_2_17_x86_64\n" in wheel
    assert "Tag: cp311-cp311-manylinux2014_x86_64\n" in wheel


def test_built_structure(small, torch_built):
    proj = small["main"].projects["demo-pkg"]
    assert proj.display_name == "Demo_Pkg" and proj.versions == ["1.0"]
    kinds = sorted(f.kind for f in proj.files)
    assert kinds == ["sdist", "wheel"]
    sd = proj.file("demo_pkg-1.0.tar.gz")
    assert sd.upload_time == "2024-01-02T03:04:05.678901Z"
    assert sd.requires_python == ">=3.8,<4"
    assert small["main"].projects["dep-two"].files[0].yanked == "broken build"
    # torch scenario shape
    pypi_torch = torch_built["pypi"].projects["torch"]
    assert len(pypi_torch.files) == 12
    assert {f.metadata for f in pypi_torch.files} == {pypi_torch.files[0].metadata}
    meta = pypi_torch.files[0].metadata.decode()
    for name, version in NVIDIA_PINS:
        assert (
            f'Requires-Dist: {name}=={version}; platform_system == "Linux" and '
            f'platform_machine == "x86_64"\n' in meta
        )
    cpu = torch_built["cpu"].projects["torch"]
    assert cpu.versions == ["2.7.1", "2.7.1+cpu"]
    assert all(b"nvidia" not in f.metadata and b"triton" not in f.metadata for f in cpu.files)
    mac = [f for f in cpu.files if f.version == "2.7.1"]
    assert sorted(f.tag for f in mac) == [f"cp3{v}-none-macosx_11_0_arm64" for v in (11, 12, 13)]
    cu = torch_built["cu126"].projects["torch"]
    assert cu.versions == ["2.7.1+cu126"] and b"nvidia-cudnn-cu12==9.5.1.17" in cu.files[0].metadata


def test_absent_variant_has_no_cuda_deps_on_cu126(tmp_path):
    b = build_scenario(get_scenario("torch_absent"), tmp_path)
    meta = b["cu126"].projects["torch"].files[0].metadata
    assert b"nvidia" not in meta and b"triton" not in meta
    assert b"nvidia" in b["pypi"].projects["torch"].files[0].metadata


def test_load_scenario_from_toml(tmp_path):
    p = tmp_path / "s.toml"
    p.write_text(
        '[[indexes]]\nname = "x"\n[[indexes.packages]]\nname = "a-b"\nversion = "1"\n'
        'requires-dist = ["c"]\ntags = ["py3-none-any", "py2.py3-none-any"]\n'
    )
    sc = load_scenario(p)
    built = build_scenario(p, tmp_path / "out")
    assert sc["indexes"][0]["name"] == "x"
    assert sorted(built["x"].files) == ["a_b-1-py2.py3-none-any.whl", "a_b-1-py3-none-any.whl"]


def test_normalize_name():
    assert normalize_name("Foo.Bar__baz-Q") == "foo-bar-baz-q"


# --------------------------------------------------------------------------- negotiation


@pytest.mark.parametrize(
    ("accept", "json_ok", "html_ok", "expected"),
    [
        (UV_ACCEPT, True, True, "application/vnd.pypi.simple.v1+json"),
        (UV_ACCEPT, False, True, "application/vnd.pypi.simple.v1+html"),
        (UV_ACCEPT, True, False, "application/vnd.pypi.simple.v1+json"),
        (None, True, True, "text/html"),
        ("text/html", True, True, "text/html"),
        ("application/vnd.pypi.simple.v1+json", False, True, None),
        ("text/html", True, False, None),
        ("*/*", True, True, "application/vnd.pypi.simple.v1+json"),
        (
            "application/vnd.pypi.simple.latest+json",
            True,
            True,
            "application/vnd.pypi.simple.v1+json",
        ),
        ("text/html;q=0.9, application/vnd.pypi.simple.v1+json;q=0.5", True, True, "text/html"),
        ("application/vnd.pypi.simple.v1+json;q=0", True, True, None),
    ],
)
def test_negotiate(accept, json_ok, html_ok, expected):
    assert negotiate(accept, json_ok, html_ok) == expected


# --------------------------------------------------------------------------- pages


def test_project_page_json(srv, small):
    st, h, body = request(srv, "/main/simple/demo-pkg/", headers={"Accept": UV_ACCEPT})
    assert st == 200
    assert h["content-type"] == "application/vnd.pypi.simple.v1+json"
    doc = json.loads(body)
    assert doc["meta"] == {"api-version": "1.1"}
    assert doc["name"] == "demo-pkg" and doc["versions"] == ["1.0"]
    by = {f["filename"]: f for f in doc["files"]}
    whl = by["demo_pkg-1.0-py3-none-any.whl"]
    built = small.find("main", "demo_pkg-1.0-py3-none-any.whl")
    assert whl["url"] == "../../files/demo_pkg-1.0-py3-none-any.whl"
    assert whl["hashes"] == {"sha256": built.sha256}
    assert whl["requires-python"] == ">=3.8,<4"
    assert whl["yanked"] is False and whl["size"] == built.size
    assert whl["upload-time"] == "2024-01-02T03:04:05.678901Z"
    assert whl["core-metadata"] == whl["dist-info-metadata"] == {"sha256": built.metadata_sha256}
    assert by["demo_pkg-1.0.tar.gz"]["core-metadata"] is False
    # relative URL resolves to a real file
    url = urljoin("/main/simple/demo-pkg/", whl["url"])
    st, h, data = request(srv, url)
    assert st == 200 and hashlib.sha256(data).hexdigest() == built.sha256
    st, _, y = request(srv, "/main/simple/dep-two/", headers={"Accept": UV_ACCEPT})
    assert json.loads(y)["files"][0]["yanked"] == "broken build"


def test_project_page_html(srv, small):
    for accept, ctype in [
        ("application/vnd.pypi.simple.v1+html", "application/vnd.pypi.simple.v1+html"),
        ("text/html", "text/html; charset=utf-8"),
    ]:
        st, h, body = request(srv, "/main/simple/demo-pkg/", headers={"Accept": accept})
        assert st == 200 and h["content-type"] == ctype
        assert h["vary"] == "Accept"
    assert b'data-requires-python="&gt;=3.8,&lt;4"' in body
    built = small.find("main", "demo_pkg-1.0-py3-none-any.whl")
    a = {x["href"].split("#")[0].rsplit("/", 1)[-1]: x for x in anchors(body)}
    whl = a["demo_pkg-1.0-py3-none-any.whl"]
    assert whl["href"] == f"../../files/demo_pkg-1.0-py3-none-any.whl#sha256={built.sha256}"
    assert whl["data-requires-python"] == ">=3.8,<4"
    assert whl["data-core-metadata"] == f"sha256={built.metadata_sha256}"
    assert whl["data-dist-info-metadata"] == f"sha256={built.metadata_sha256}"
    assert "data-core-metadata" not in a["demo_pkg-1.0.tar.gz"]
    st, _, body = request(srv, "/main/simple/dep-two/", headers={"Accept": "text/html"})
    assert anchors(body)[0]["data-yanked"] == "broken build"


def test_root_pages(srv):
    st, h, body = request(srv, "/main/simple/", headers={"Accept": UV_ACCEPT})
    assert st == 200
    names = [p["name"] for p in json.loads(body)["projects"]]
    assert names == ["Demo_Pkg", "dep-one", "dep-two", "native"]
    st, h, body = request(srv, "/main/simple/")
    assert h["content-type"].startswith("text/html")
    assert [a["href"] for a in anchors(body)] == ["demo-pkg/", "dep-one/", "dep-two/", "native/"]


def test_redirects_and_missing(srv):
    st, h, _ = request(srv, "/main/simple/Demo_Pkg/")
    assert st == 301 and h["location"] == "/main/simple/demo-pkg/"
    st, h, _ = request(srv, "/main/simple/demo-pkg")
    assert st == 301 and h["location"] == "/main/simple/demo-pkg/"
    st, h, _ = request(srv, "/main/simple")
    assert st == 301 and h["location"] == "/main/simple/"
    assert request(srv, "/main/simple/nope/")[0] == 404
    assert request(srv, "/main/files/nope.whl")[0] == 404
    assert request(srv, "/nosuchindex/simple/")[0] == 404
    srv.configure("main", missing_status=403)
    assert request(srv, "/main/simple/nope/")[0] == 403
    srv.configure("main", redirect_non_normalized=False)
    assert request(srv, "/main/simple/Demo_Pkg/")[0] == 200


def test_format_switches(srv):
    srv.configure("main", json=False)
    st, h, _ = request(srv, "/main/simple/demo-pkg/", headers={"Accept": UV_ACCEPT})
    assert st == 200 and h["content-type"] == "application/vnd.pypi.simple.v1+html"
    st, _, _ = request(
        srv, "/main/simple/demo-pkg/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
    )
    assert st == 406
    srv.configure("main", json=True, html=False)
    assert request(srv, "/main/simple/demo-pkg/", headers={"Accept": "text/html"})[0] == 406
    st, h, _ = request(srv, "/main/simple/demo-pkg/", headers={"Accept": UV_ACCEPT})
    assert st == 200 and h["content-type"] == "application/vnd.pypi.simple.v1+json"


def test_absolute_urls(srv):
    srv.configure("main", absolute_urls=True)
    _, _, body = request(srv, "/main/simple/dep-one/", headers={"Accept": UV_ACCEPT})
    url = json.loads(body)["files"][0]["url"]
    assert url == f"{srv.url}/main/files/dep_one-1.2-py3-none-any.whl"
    _, _, body = request(srv, "/main/simple/dep-one/", headers={"Accept": "text/html"})
    assert anchors(body)[0]["href"].startswith(
        f"{srv.url}/main/files/dep_one-1.2-py3-none-any.whl#"
    )


def test_local_versions_are_linked_as_the_pytorch_index_links_them(torch_built):
    """``+`` is percent-encoded in every file URL (HTML href, PEP 691 url, flat page) and
    kept in the link text and the PEP 691 filename, as download.pytorch.org serves it."""
    name = "torch-2.7.1+cu126-cp312-cp312-manylinux_2_28_x86_64.whl"
    quoted = "torch-2.7.1%2Bcu126-cp312-cp312-manylinux_2_28_x86_64.whl"
    built = torch_built.find("cu126", name)
    with IndexServer(torch_built) as s:
        _, _, body = request(s, "/cu126/simple/torch/", headers={"Accept": "text/html"})
        assert f'href="../../files/{quoted}#sha256={built.sha256}"'.encode() in body
        assert f">{name}</a>".encode() in body
        _, _, body = request(s, "/cu126/simple/torch/", headers={"Accept": UV_ACCEPT})
        entry = next(f for f in json.loads(body)["files"] if f["filename"] == name)
        assert entry["url"] == f"../../files/{quoted}"
        _, _, body = request(s, "/cu126/flat/")
        assert f'href="../files/{quoted}#'.encode() in body
        assert s.file_url("cu126", name) == f"{s.url}/cu126/files/{quoted}"
        status, _, data = request(s, f"/cu126/files/{quoted}")
        assert status == 200 and hashlib.sha256(data).hexdigest() == built.sha256
        s.configure("cu126", quote_urls=False)
        _, _, body = request(s, "/cu126/simple/torch/", headers={"Accept": UV_ACCEPT})
        entry = next(f for f in json.loads(body)["files"] if f["filename"] == name)
        assert entry["url"] == f"../../files/{name}"


def test_flat_page(srv, small):
    st, h, body = request(srv, "/main/flat/")
    assert st == 200 and h["content-type"].startswith("text/html")
    hrefs = [a["href"].split("#")[0] for a in anchors(body)]
    assert sorted(hrefs) == sorted(f"../files/{fn}" for fn in small["main"].files)
    assert request(srv, "/main/flat")[0] == 301
    srv.configure("main", flat=False)
    assert request(srv, "/main/flat/")[0] == 404


# --------------------------------------------------------------------------- files, ranges


def test_ranges(srv, small):
    f = small.find("main", "dep_one-1.2-py3-none-any.whl")
    data = f.path.read_bytes()
    n = len(data)
    st, h, body = request(srv, f"/main/files/{f.filename}", "HEAD")
    assert st == 200 and h["accept-ranges"] == "bytes" and int(h["content-length"]) == n
    assert body == b""
    cases = {
        "bytes=0-9": (0, 9),
        "bytes=100-": (100, n - 1),
        "bytes=-22": (n - 22, n - 1),
        f"bytes=10-{n + 500}": (10, n - 1),
    }
    for rng, (a, b) in cases.items():
        st, h, body = request(srv, f"/main/files/{f.filename}", headers={"Range": rng})
        assert st == 206, rng
        assert h["content-range"] == f"bytes {a}-{b}/{n}"
        assert body == data[a : b + 1] and int(h["content-length"]) == b - a + 1
    st, h, _ = request(srv, f"/main/files/{f.filename}", headers={"Range": f"bytes={n}-"})
    assert st == 416 and h["content-range"] == f"bytes */{n}"
    srv.configure("main", ranges=False)
    st, h, body = request(srv, f"/main/files/{f.filename}", headers={"Range": "bytes=0-9"})
    assert st == 200 and body == data and "accept-ranges" not in h


class RangeFile(io.RawIOBase):
    """Seekable file over HTTP range requests (what lazy wheel readers do)."""

    def __init__(self, srv: IndexServer, path: str) -> None:
        self.srv, self.path, self.pos = srv, path, 0
        _, h, _ = request(srv, path, "HEAD")
        self.size = int(h["content-length"])

    def seekable(self):
        return True

    def readable(self):
        return True

    def seek(self, off, whence=0):
        self.pos = {0: off, 1: self.pos + off, 2: self.size + off}[whence]
        return self.pos

    def tell(self):
        return self.pos

    def readinto(self, b):
        if self.pos >= self.size:
            return 0
        end = min(self.pos + len(b), self.size) - 1
        st, _, body = request(self.srv, self.path, headers={"Range": f"bytes={self.pos}-{end}"})
        assert st == 206
        b[: len(body)] = body
        self.pos += len(body)
        return len(body)


def test_metadata_via_range_requests(srv, small):
    f = small.find("main", "dep_one-1.2-py3-none-any.whl")
    srv.reset_log()
    with zipfile.ZipFile(RangeFile(srv, f"/main/files/{f.filename}")) as zf:
        assert zf.read("dep_one-1.2.dist-info/METADATA") == f.metadata
    ranged = [r for r in srv.requests if "Range" in r.headers]
    fetched = sum(len(r.headers["Range"]) for r in ranged)
    assert ranged and fetched < f.size  # did not download the 200 kB body
    assert all(r.status == 206 for r in ranged)


def test_pep658_switches(srv, small):
    f = small.find("main", "dep_one-1.2-py3-none-any.whl")
    st, _, body = request(srv, f"/main/files/{f.filename}.metadata")
    assert st == 200 and body == f.metadata
    srv.configure("main", pep658_wrong_hash=True)
    _, _, page = request(srv, "/main/simple/dep-one/", headers={"Accept": UV_ACCEPT})
    adv = json.loads(page)["files"][0]["core-metadata"]["sha256"]
    assert adv != f.metadata_sha256
    assert request(srv, f"/main/files/{f.filename}.metadata")[2] == f.metadata
    srv.configure("main", pep658=False, pep658_wrong_hash=False)
    _, _, page = request(srv, "/main/simple/dep-one/", headers={"Accept": UV_ACCEPT})
    entry = json.loads(page)["files"][0]
    assert entry["core-metadata"] is False and entry["dist-info-metadata"] is False
    _, _, page = request(srv, "/main/simple/dep-one/", headers={"Accept": "text/html"})
    assert "data-core-metadata" not in anchors(page)[0]
    assert request(srv, f"/main/files/{f.filename}.metadata")[0] == 404
    # sdists never have .metadata
    srv.configure("main", pep658=True)
    assert request(srv, "/main/files/demo_pkg-1.0.tar.gz.metadata")[0] == 404


def test_auth(small):
    with IndexServer(small, options={"main": {"auth": ("alice", "s3cret")}}) as s:
        for path in (
            "/main/simple/",
            "/main/simple/dep-one/",
            "/main/files/dep_one-1.2-py3-none-any.whl",
            "/main/flat/",
            "/main/files/nope",
        ):
            st, h, _ = request(s, path)
            assert st == 401 and h["www-authenticate"] == 'Basic realm="main"', path
            assert request(s, path, headers={"Authorization": basic("alice", "wrong")})[0] == 401
        ok = {"Authorization": basic("alice", "s3cret")}
        assert request(s, "/main/simple/dep-one/", headers=ok)[0] == 200
        assert request(s, "/main/files/dep_one-1.2-py3-none-any.whl", headers=ok)[0] == 200
        # other index unaffected; auth can be dropped at runtime
        assert request(s, "/other/simple/dep-one/")[0] == 200
        s.configure("main", auth=None)
        assert request(s, "/main/simple/dep-one/")[0] == 200


def test_request_log(srv):
    srv.reset_log()
    request(srv, "/main/simple/dep-one/", headers={"Accept": UV_ACCEPT, "X-Test": "1"})
    request(srv, "/main/files/dep_one-1.2-py3-none-any.whl.metadata")
    request(srv, "/main/files/dep_one-1.2-py3-none-any.whl", "HEAD")
    request(srv, "/other/simple/nope/")
    # the server logs a request after answering it: wait for the last entry
    deadline = time.monotonic() + 5
    while len(srv.requests) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    reqs = srv.requests
    assert [(r.method, r.path, r.status) for r in reqs] == [
        ("GET", "/main/simple/dep-one/", 200),
        ("GET", "/main/files/dep_one-1.2-py3-none-any.whl.metadata", 200),
        ("HEAD", "/main/files/dep_one-1.2-py3-none-any.whl", 200),
        ("GET", "/other/simple/nope/", 404),
    ]
    assert reqs[0].headers["X-Test"] == "1"
    assert tuple(reqs[0])[:2] == ("GET", "/main/simple/dep-one/")  # plain tuples too
    assert srv.count(kind="metadata") == len(srv.metadata_requests()) == 1
    assert srv.count(kind="page", index="main") == 1 and srv.count(status=404) == 1
    assert len(srv.file_requests()) == 1
    srv.reset_log()
    assert srv.requests == []


def test_faults(srv):
    srv.add_fault(lambda m, p: 503 if p.endswith("/dep-one/") else None)
    srv.add_fault(
        lambda m, p: Fault(status=429, headers={"Retry-After": "2"}) if "dep-two" in p else None
    )
    assert request(srv, "/main/simple/dep-one/")[0] == 503
    st, h, _ = request(srv, "/main/simple/dep-two/")
    assert st == 429 and h["retry-after"] == "2"
    srv.clear_faults()
    srv.add_fault(lambda m, p: Fault(truncate=10) if p.endswith(".whl") else None)
    with pytest.raises(http.client.IncompleteRead):
        request(srv, "/main/files/dep_one-1.2-py3-none-any.whl")
    srv.clear_faults()
    srv.add_fault(lambda m, p: Fault(reset=True) if p.endswith(".whl") else None)
    with pytest.raises((ConnectionError, http.client.RemoteDisconnected)):
        request(srv, "/main/files/dep_one-1.2-py3-none-any.whl")
    srv.clear_faults()
    t0 = time.perf_counter()
    srv.add_fault(lambda m, p: Fault(delay=0.3))
    assert request(srv, "/main/simple/dep-one/")[0] == 200
    assert time.perf_counter() - t0 >= 0.3
    srv.clear_faults()
    assert request(srv, "/main/simple/dep-one/")[0] == 200


def test_addresses_and_fixed_port(small):
    with IndexServer(small) as s:
        port = s.port
        assert s.url == f"http://127.0.0.1:{port}"
        assert s.index_url("main") == f"http://127.0.0.1:{port}/main/simple"
        with pytest.raises(KeyError):
            s.index_url("nope")
    # a fixed port works (re-use the one the OS just gave us)
    with IndexServer(small, port=port) as s2:
        assert s2.port == port and request(s2, "/main/simple/")[0] == 200


def test_cli_serves_scenario(tmp_path):
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fixtures.server",
            "--scenario",
            "torch_groups",
            "--port",
            "0",
            "--out",
            str(tmp_path / "out"),
            "--project",
            str(tmp_path / "proj"),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = proc.stdout.readline()
        m = re.search(r"at (http://127\.0\.0\.1:(\d+))", first)
        assert m, first + proc.stderr.read() if proc.poll() is not None else first
        port = int(m.group(2))
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/cu126/simple/torch/", headers={"Accept": UV_ACCEPT})
        r = conn.getresponse()
        assert r.status == 200 and json.loads(r.read())["versions"] == ["2.7.1+cu126"]
        for _ in range(50):
            if (tmp_path / "proj" / "pyproject.toml").exists():
                break
            time.sleep(0.05)
        assert m.group(1) + "/cpu/simple" in (tmp_path / "proj" / "pyproject.toml").read_text()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# --------------------------------------------------------------------------- projects


def test_pyproject_text_variants():
    g = pyproject_text("groups", "http://127.0.0.1:1/")
    e = pyproject_text("torch_extras", "http://127.0.0.1:1")
    assert 'conflicts = [[{ group = "cpu" }, { group = "cu126" }]]' in g
    assert "[dependency-groups]" in g and "[project.optional-dependencies]" not in g
    assert 'conflicts = [[{ extra = "cpu" }, { extra = "cu126" }]]' in e
    assert '{ index = "pytorch-cu126", extra = "cu126" }' in e
    for t in (g, e):
        assert 'url = "http://127.0.0.1:1/pypi/simple"\ndefault = true' in t
        assert "package = false" in t
    assert pyproject_text("absent", "http://x") == pyproject_text("groups", "http://x")
    import tomllib

    tomllib.loads(g)
    tomllib.loads(e)


# --------------------------------------------------------------------------- real installers

needs_uv = pytest.mark.skipif(not uv_bin("0.13.9").exists(), reason="vendored uv missing")


@pytest.mark.uv
@needs_uv
def test_uv_pip_install_from_server(tmp_path, torch_built):
    with IndexServer(torch_built) as s:
        venv = tmp_path / "venv"
        run_uv("0.13.9", ["venv", str(venv)], tmp_path, tmp_path)
        run_uv(
            "0.13.9",
            [
                "pip",
                "install",
                "--python",
                str(venv / "bin" / "python"),
                "--index-url",
                s.index_url("pypi") + "/",
                "torch==2.7.1",
            ],
            tmp_path,
            tmp_path,
        )
        out = subprocess.run(
            [
                str(venv / "bin" / "python"),
                "-c",
                "import torch, nvidia_cudnn_cu12, triton, jinja2, markupsafe;"
                "import importlib.metadata as m; print(m.version('torch'))",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        assert out == "2.7.1"
        assert s.count(kind="file", index="pypi") > 10
        assert all(not r.path.startswith("/cpu") for r in s.requests)


def test_pip_installs_built_wheel(tmp_path, small):
    with IndexServer(small) as s:
        env = uv_env(tmp_path)
        env.pop("PIP_FIND_LINKS", None)
        env["PIP_CONFIG_FILE"] = os.devnull
        target = tmp_path / "target"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--no-cache-dir",
                "--target",
                str(target),
                "--index-url",
                s.index_url("main") + "/",
                "--only-binary",
                ":all:",
                "demo-pkg",
            ],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        assert (target / "demo_pkg" / "__init__.py").exists()
        assert (target / "dep_one" / "_pad.bin").stat().st_size == 200_000
        assert any(p.name.startswith("demo_pkg-1.0.dist-info") for p in target.iterdir())


def _pypi_torch_deps(lock_text: str) -> list[str]:
    from fixtures.make_locks import dependency_names, package_block

    return dependency_names(package_block(lock_text, "torch", "/pypi/simple", "2.7.1"))


@pytest.mark.uv
@needs_uv
@pytest.mark.skipif(not uv_bin("0.10.9").exists(), reason="vendored uv missing")
@pytest.mark.parametrize("variant", ["torch_groups", "torch_extras"])
def test_uv_bug_14237_reproduces(tmp_path, variant):
    built = build_scenario(get_scenario(variant), tmp_path / "build")
    nvidia = {n for n, _ in NVIDIA_PINS} | {"triton"}
    with IndexServer(built) as s:
        locks = {}
        for ver in ("0.10.9", "0.13.9"):
            proj = make_project(variant, s, tmp_path / f"p-{ver}")
            run_uv(ver, ["lock"], proj, tmp_path)
            locks[ver] = (proj / "uv.lock").read_text()
            assert "pypi.org" not in locks[ver] and "pythonhosted" not in locks[ver]
        assert not nvidia & set(_pypi_torch_deps(locks["0.10.9"]))
        assert nvidia <= set(_pypi_torch_deps(locks["0.13.9"]))


@pytest.mark.uv
@needs_uv
@pytest.mark.parametrize(
    "opts",
    [
        {"json": False, "pep658": False},  # HTML pages, metadata via HEAD + Range
        {"ranges": False, "pep658": False},  # metadata via full downloads
        {"flat": True},  # defaults: JSON + PEP 658
    ],
)
def test_uv_lock_under_capabilities(tmp_path, torch_built, opts):
    nvidia = {n for n, _ in NVIDIA_PINS} | {"triton"}
    with IndexServer(torch_built, **opts) as s:
        proj = make_project("groups", s, tmp_path / "p")
        run_uv("0.13.9", ["lock"], proj, tmp_path)
        assert nvidia <= set(_pypi_torch_deps((proj / "uv.lock").read_text()))
        reqs = s.requests
        pages = [r for r in reqs if "/simple/" in r.path]
        if opts.get("json") is False:
            assert s.count(kind="metadata") == 0
            assert any(r.headers.get("Range") and r.status == 206 for r in reqs)
        elif opts.get("ranges") is False:
            assert s.count(kind="metadata") == 0
            assert all(r.status == 200 for r in reqs if r.method == "GET")
        else:
            assert s.count(kind="metadata") == len(s.filter(kind="metadata", status=200)) > 20
            assert s.count(kind="file") == 0
        assert all(r.status == 200 for r in pages)


@pytest.mark.uv
@needs_uv
@pytest.mark.skipif(not uv_bin("0.10.9").exists(), reason="vendored uv missing")
@pytest.mark.parametrize("variant", ["torch_groups", "torch_extras", "torch_absent"])
def test_saved_locks_are_current(tmp_path, variant):
    """fixtures/locks/<variant>/ equals a fresh regeneration (modulo the port)."""
    saved = REPO / "fixtures" / "locks" / variant
    built = build_scenario(get_scenario(variant), tmp_path / "build")
    with IndexServer(built) as s:
        for ver, kind in (("0.10.9", "broken"), ("0.13.9", "reference")):
            proj = make_project(variant, s, tmp_path / f"p-{ver}")
            assert (proj / "pyproject.toml").read_text().replace(f":{s.port}/", ":8765/") == (
                saved / "pyproject.toml"
            ).read_text()
            run_uv(ver, ["lock"], proj, tmp_path)
            fresh = (
                (proj / "uv.lock").read_text().replace(f"127.0.0.1:{s.port}/", "127.0.0.1:8765/")
            )
            assert fresh == (saved / f"{kind}.uv.lock").read_text(), (
                f"stale {saved}/{kind}.uv.lock: run `python -m fixtures.make_locks`"
            )
