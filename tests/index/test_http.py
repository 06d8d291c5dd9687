"""IndexClient against real loopback index servers: metadata paths, capabilities, auth,
retries, caching and offline mode. Request counts are taken from the server's log."""

from __future__ import annotations

import asyncio
import base64
import gzip
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import aiohttp
import pytest

from fixtures.builder import BuiltScenario, build_scenario
from fixtures.server import Fault, IndexServer
from lockfix.dist.metadata import CoreMetadata, parse_core_metadata
from lockfix.dist.simple import IndexFile
from lockfix.errors import (
    HashMismatch,
    IndexAuthError,
    IndexRequestError,
    OfflineCacheMiss,
    ProjectNotFound,
)
from lockfix.index.auth import CredentialProvider
from lockfix.index.cache import MetadataCache
from lockfix.index.http import IndexClient
from lockfix.urls import redact

TORCH_DEPS = [
    "filelock",
    "typing-extensions>=4.10.0",
    'nvidia-cudnn-cu12==9.5.1.17; platform_system == "Linux" and platform_machine == "x86_64"',
    'optree>=0.13.0; extra == "optree"',
]
SCENARIO = {
    "indexes": [
        {
            "name": "idx",
            "packages": [
                {
                    "name": "torch",
                    "version": "2.7.1",
                    "requires-python": ">=3.9.0",
                    "requires-dist": TORCH_DEPS,
                    "tags": [
                        "cp311-cp311-manylinux_2_28_x86_64",
                        "cp312-cp312-manylinux_2_28_x86_64",
                    ],
                    "pad": 100_000,
                },
                {"name": "torch", "version": "2.7.1+cpu", "tags": ["cp311-cp311-linux_x86_64"]},
                {"name": "filelock", "version": "3.18.0", "sdist": True},
                {"name": "typing_extensions", "version": "4.14.0"},
            ],
        }
    ]
}
PROJECTS = ("torch", "filelock", "typing-extensions")
SECRET = "s3cr3t-pw"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> BuiltScenario:
    return build_scenario(SCENARIO, tmp_path_factory.mktemp("built"))


@pytest.fixture
def server(built: BuiltScenario) -> Iterator[IndexServer]:
    with IndexServer(built) as srv:
        yield srv


def no_creds() -> CredentialProvider:
    return CredentialProvider(env={}, netrc_path=False)


def client(**kw: Any) -> IndexClient:
    kw.setdefault("cache", None)
    kw.setdefault("credentials", no_creds())
    kw.setdefault("retry_wait", 0.01)
    return IndexClient(**kw)


async def fetch_all(
    c: IndexClient, index_url: str, projects: tuple[str, ...] = PROJECTS
) -> dict[str, CoreMetadata]:
    pages = await asyncio.gather(*(c.project_page(index_url, p) for p in projects))
    files = [f for page in pages for f in page.files]
    mds = await asyncio.gather(*(c.file_metadata(index_url, f) for f in files))
    return {f.filename: md for f, md in zip(files, mds, strict=True)}


def check_all(built: BuiltScenario, got: dict[str, CoreMetadata]) -> None:
    files = built["idx"].files
    assert sorted(got) == sorted(files)
    for name, md in got.items():
        assert md == parse_core_metadata(files[name].metadata), name


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def n_wheels(built: BuiltScenario) -> int:
    return sum(f.kind == "wheel" for f in built["idx"].files.values())


def with_range(srv: IndexServer) -> list[Any]:
    return [r for r in srv.file_requests() if "Range" in r.headers]


# --- metadata paths --------------------------------------------------------------------


def test_pep658_one_request_per_distinct_metadata_then_warm_cache_none(
    built: BuiltScenario, server: IndexServer, tmp_path: Path
) -> None:
    cache = MetadataCache(tmp_path / "cache")

    async def go() -> IndexClient:
        async with client(cache=cache) as c:
            check_all(built, await fetch_all(c, server.index_url("idx")))
            return c

    c = run(go())
    wheels = [f for f in built["idx"].files.values() if f.kind == "wheel"]
    sdists = [f for f in built["idx"].files.values() if f.kind == "sdist"]
    distinct = {f.metadata_sha256 for f in wheels}
    assert len(distinct) < len(wheels)  # torch 2.7.1's two wheels share their METADATA
    assert server.count(kind="metadata") == len(distinct) == c.stats.metadata_pep658
    assert {unquote(r.path.rsplit("/", 1)[1]) for r in server.metadata_requests()} <= {
        f.filename + ".metadata" for f in wheels
    }
    # The fixture index serves no PEP 658 for sdists: those are downloaded once.
    assert server.count(kind="file") == len(sdists) == c.stats.full_download
    assert server.count(kind="page") == len(PROJECTS)

    server.reset_log()
    c = run(go())
    assert server.count(kind="metadata") == 0
    assert server.count(kind="file") == 0
    assert c.stats.metadata_requests == 0
    assert c.stats.metadata_cache_hits == len(built["idx"].files)


SHARED_METADATA = {
    "indexes": [
        {
            "name": "idx",
            "packages": [
                # one METADATA for all three wheels
                {
                    "name": "same",
                    "version": "1.0",
                    "tags": [
                        "cp311-cp311-linux_x86_64",
                        "cp312-cp312-linux_x86_64",
                        "cp313-cp313-linux_x86_64",
                    ],
                },
                # a release whose wheels differ in their dependencies
                {
                    "name": "split",
                    "version": "1.0",
                    "tags": ["cp311-cp311-linux_x86_64"],
                    "requires-dist": ["same"],
                },
                {
                    "name": "split",
                    "version": "1.0",
                    "tags": ["cp312-cp312-linux_x86_64"],
                    "requires-dist": ["same>=1"],
                },
                {"name": "split", "version": "1.0", "tags": ["cp313-cp313-linux_x86_64"]},
            ],
        }
    ]
}


@pytest.mark.parametrize("pages", ["json", "html"])
def test_pep658_fetched_once_per_metadata_hash(tmp_path: Path, pages: str) -> None:
    shared = build_scenario(SHARED_METADATA, tmp_path / "built")
    files = shared["idx"].files
    assert len({f.metadata_sha256 for f in files.values() if f.project == "same"}) == 1
    assert len({f.metadata_sha256 for f in files.values() if f.project == "split"}) == 3

    async def go(index_url: str) -> dict[str, CoreMetadata]:
        async with client() as c:
            return await fetch_all(c, index_url, ("same", "split"))

    with IndexServer(shared, json=pages == "json", html=pages == "html") as srv:
        got = run(go(srv.index_url("idx")))
        meta = [r.path.rsplit("/", 1)[1] for r in srv.metadata_requests()]
    assert sorted(got) == sorted(files)
    for name, md in got.items():
        assert md == parse_core_metadata(files[name].metadata), name
    assert sum(m.startswith("same-") for m in meta) == 1
    assert sum(m.startswith("split-") for m in meta) == 3
    assert srv.count(kind="file") == 0


def test_no_pep658_uses_one_range_request_per_wheel(
    built: BuiltScenario, server: IndexServer
) -> None:
    server.configure("idx", pep658=False)

    async def go() -> IndexClient:
        async with client() as c:
            check_all(built, await fetch_all(c, server.index_url("idx")))
            return c

    c = run(go())
    assert server.count(kind="metadata") == 0
    ranged = with_range(server)
    wheels = [f for f in built["idx"].files.values() if f.kind == "wheel"]
    assert len(ranged) == len(wheels) == c.stats.range
    assert all(r.status == 206 and r.headers["Range"].startswith("bytes=-") for r in ranged)
    assert all(r.headers.get("Accept-Encoding") == "identity" for r in ranged)
    assert all(r.headers.get("User-Agent", "").startswith("lockfix/") for r in ranged)
    assert c.stats.full_download == 1  # the sdist


def test_pages_and_range_reads_share_one_session(
    built: BuiltScenario, server: IndexServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every request of a run, pages and range reads alike, goes through one aiohttp
    session (one connection pool, one proxy choice, one set of timeouts)."""
    server.configure("idx", pep658=False)
    sent: list[tuple[int, str]] = []
    original = aiohttp.ClientSession.get

    def get(self: aiohttp.ClientSession, url: Any, **kw: Any) -> Any:
        sent.append((id(self), kw.get("headers", {}).get("Range", "page")))
        return original(self, url, **kw)

    monkeypatch.setattr(aiohttp.ClientSession, "get", get)

    async def go() -> IndexClient:
        async with client() as c:
            check_all(built, await fetch_all(c, server.index_url("idx")))
            return c

    c = run(go())
    assert c.stats.range == n_wheels(built) > 0
    kinds = {kind.split("=")[0] for _, kind in sent}
    assert kinds == {"page", "bytes"}, kinds
    assert len({session for session, _ in sent}) == 1


def test_range_reads_through_proxy_from_environment(
    built: BuiltScenario, server: IndexServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HTTP_PROXY", server.url)
    server.configure("idx", pep658=False)

    async def go() -> IndexClient:
        async with client() as c:
            check_all(built, await fetch_all(c, "http://index.invalid/idx/simple"))
            return c

    c = run(go())
    ranged = with_range(server)
    assert len(ranged) == c.stats.range == n_wheels(built)
    # absolute-form request targets: each one went through the proxy
    assert all(r.path.startswith("http://") for r in ranged)


def test_small_suffix_needs_central_directory_and_member_ranges(
    built: BuiltScenario, server: IndexServer
) -> None:
    server.configure("idx", pep658=False)

    async def go() -> IndexClient:
        async with client(range_suffix=64) as c:
            page = await c.project_page(server.index_url("idx"), "torch")
            for f in page.files:
                md = await c.file_metadata(server.index_url("idx"), f)
                assert md == parse_core_metadata(built.find("idx", f.filename).metadata)
            return c

    c = run(go())
    assert c.stats.full_download == 0
    assert c.stats.range == len(server.file_requests()) >= 3 * 3  # tail, directory, member
    assert all(r.status == 206 for r in server.file_requests())


def test_wrong_pep658_hash_falls_back_and_is_remembered(
    built: BuiltScenario, server: IndexServer
) -> None:
    server.configure("idx", pep658_wrong_hash=True)

    async def go() -> None:
        async with client(concurrency=1) as c:
            check_all(built, await fetch_all(c, server.index_url("idx")))

    run(go())
    assert server.count(kind="metadata") == 1
    assert len(with_range(server)) == n_wheels(built)  # every wheel by range instead


def test_pep658_404_falls_back_and_is_remembered(built: BuiltScenario, server: IndexServer) -> None:
    server.add_fault(lambda method, path: 404 if path.endswith(".metadata") else None)

    async def go() -> None:
        async with client(concurrency=1) as c:
            check_all(built, await fetch_all(c, server.index_url("idx")))

    run(go())
    assert server.count(kind="metadata") == 1
    assert len(with_range(server)) == n_wheels(built)


def test_no_range_support_downloads_and_verifies(built: BuiltScenario, server: IndexServer) -> None:
    server.configure("idx", pep658=False, ranges=False)

    async def go() -> IndexClient:
        async with client(concurrency=1) as c:
            check_all(built, await fetch_all(c, server.index_url("idx")))
            return c

    c = run(go())
    # One range attempt; its 200 answer is used as the download; no range asked again.
    assert len(with_range(server)) == 1 and c.stats.ranges_ignored == 1
    assert server.count(kind="file") == len(built["idx"].files)
    assert all(r.status == 200 for r in server.file_requests())


def test_download_hash_mismatch(built: BuiltScenario, server: IndexServer) -> None:
    server.configure("idx", pep658=False, ranges=False)
    f = built.find("idx", "typing_extensions-4.14.0-py3-none-any.whl")
    bogus = IndexFile(f.filename, server.file_url("idx", f.filename), {"sha256": "0" * 64})

    async def go() -> None:
        async with client() as c:
            with pytest.raises(HashMismatch) as e:
                await c.file_metadata(server.index_url("idx"), bogus)
            assert e.value.actual == f.sha256
            # Lock hash differing from the index's: refused before any request.
            good = IndexFile(f.filename, bogus.url, {"sha256": f.sha256})
            n = len(server.requests)
            with pytest.raises(HashMismatch):
                await c.file_metadata(server.index_url("idx"), good, {"sha256": "1" * 64})
            assert len(server.requests) == n
            md = await c.file_metadata(server.index_url("idx"), good, {"SHA256": f.sha256.upper()})
            assert md.name == "typing_extensions"

    run(go())


def test_download_size_limit(built: BuiltScenario, server: IndexServer) -> None:
    server.configure("idx", pep658=False, ranges=False)

    async def go() -> None:
        async with client(max_download_size=1000) as c:
            page = await c.project_page(server.index_url("idx"), "torch")
            with pytest.raises(IndexRequestError, match="download limit"):
                await c.file_metadata(server.index_url("idx"), page.files[0])

    run(go())


# --- page formats ------------------------------------------------------------------------


@pytest.mark.parametrize(("json_ok", "html_ok"), [(True, False), (False, True)])
def test_json_only_and_html_only(
    built: BuiltScenario, server: IndexServer, json_ok: bool, html_ok: bool
) -> None:
    server.configure("idx", json=json_ok, html=html_ok)

    async def go() -> None:
        async with client() as c:
            page = await c.project_page(server.index_url("idx"), "Torch")
            want = built["idx"].projects["torch"].files
            assert sorted(f.filename for f in page.files) == sorted(f.filename for f in want)
            for f in page.files:
                b = built.find("idx", f.filename)
                assert f.hashes == {"sha256": b.sha256}
                assert f.core_metadata == {"sha256": b.metadata_sha256}
                assert f.requires_python == b.requires_python
                assert (f.upload_time is not None) == json_ok
            assert len(page.files_for_version("2.7.1")) == 2
            assert len(page.files_for_version("2.7.1+cpu")) == 1
            check_all(built, await fetch_all(c, server.index_url("idx")))

    run(go())
    assert all(r.status == 200 for r in server.page_requests())


def test_flat_page_fetched_once(built: BuiltScenario, server: IndexServer) -> None:
    server.configure("idx", pep658=False)

    async def go() -> None:
        async with client() as c:
            torch, filelock = await asyncio.gather(
                c.project_page(server.flat_url("idx"), "torch", flat=True),
                c.project_page(server.flat_url("idx"), "filelock", flat=True),
            )
            assert len(torch.files) == 3 and len(filelock.files) == 2
            for f in filelock.files:
                md = await c.file_metadata(server.flat_url("idx"), f)
                assert md.name == "filelock"
            with pytest.raises(ProjectNotFound):
                await c.project_page(server.flat_url("idx"), "no-such-project", flat=True)

    run(go())
    assert server.count(kind="flat") == 1


@pytest.mark.parametrize("status", [403, 404])
def test_missing_project(server: IndexServer, status: int) -> None:
    server.configure("idx", missing_status=status)

    async def go() -> None:
        async with client() as c:
            with pytest.raises(ProjectNotFound) as e:
                await c.project_page(server.index_url("idx"), "no-such-project")
            assert e.value.status == status

    run(go())


# --- auth --------------------------------------------------------------------------------


def _authed_index(server: IndexServer) -> str:
    server.configure("idx", auth=("alice", SECRET))
    return server.index_url("idx")


def test_401_without_credentials(server: IndexServer) -> None:
    url = _authed_index(server)

    async def go() -> None:
        async with client() as c:
            with pytest.raises(IndexAuthError) as e:
                await c.project_page(url, "torch")
            assert e.value.status == 401

    run(go())


def _fetch_with(
    built: BuiltScenario, server: IndexServer, url: str, creds: CredentialProvider
) -> None:
    async def go() -> None:
        async with client(credentials=creds) as c:
            check_all(built, await fetch_all(c, url))

    run(go())
    assert server.requests and all(r.status in (200, 206) for r in server.requests)
    assert all("Authorization" in r.headers for r in server.requests)


def test_credentials_in_url(built: BuiltScenario, server: IndexServer) -> None:
    url = _authed_index(server).replace("http://", f"http://alice:{SECRET}@")
    _fetch_with(built, server, url, no_creds())


def test_credentials_in_url_for_a_file_without_its_page(
    built: BuiltScenario, server: IndexServer
) -> None:
    url = _authed_index(server).replace("http://", f"http://alice:{SECRET}@")
    f = built.find("idx", "filelock-3.18.0.tar.gz")
    item = IndexFile(f.filename, server.file_url("idx", f.filename))

    async def go() -> None:
        async with client() as c:
            md = await c.file_metadata(url, item, {"sha256": f.sha256})
            assert md.name == "filelock"

    run(go())
    assert [r.status for r in server.requests] == [200]


def test_credentials_from_netrc(built: BuiltScenario, server: IndexServer, tmp_path: Path) -> None:
    url = _authed_index(server)
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine 127.0.0.1\n  login alice\n  password {SECRET}\n")
    netrc.chmod(0o600)
    _fetch_with(built, server, url, CredentialProvider(env={"NETRC": str(netrc)}))


def test_credentials_from_env(built: BuiltScenario, server: IndexServer) -> None:
    url = _authed_index(server)
    env = {
        "UV_INDEX_MY_PRIVATE_INDEX_USERNAME": "alice",
        "UV_INDEX_MY_PRIVATE_INDEX_PASSWORD": SECRET,
    }
    creds = CredentialProvider({url: "my-private.index"}, env=env, netrc_path=False)
    _fetch_with(built, server, url, creds)


def test_username_in_url_password_from_netrc(
    built: BuiltScenario, server: IndexServer, tmp_path: Path
) -> None:
    url = _authed_index(server)
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine 127.0.0.1 login alice password {SECRET}\n")
    _fetch_with(
        built,
        server,
        url.replace("http://", "http://alice@"),
        CredentialProvider(env={}, netrc_path=netrc),
    )


def test_wrong_credentials_are_redacted(server: IndexServer) -> None:
    url = _authed_index(server).replace("http://", "http://alice:wrong-pw@")

    async def go() -> None:
        async with client() as c:
            with pytest.raises(IndexAuthError) as e:
                await c.project_page(url, "torch")
            assert "wrong-pw" not in str(e.value) and "alice" not in str(e.value)

    run(go())
    assert redact(url) == url.replace("alice:wrong-pw@", "")


def test_redirect_to_other_host_drops_credentials(built: BuiltScenario) -> None:
    with IndexServer(built) as files_host, IndexServer(built) as index_host:
        index_host.configure("idx", auth=("alice", SECRET))

        def to_files_host(method: str, path: str) -> Fault | None:
            if "/files/" in path:
                return Fault(status=302, headers={"Location": files_host.url + path})
            return None

        index_host.add_fault(to_files_host)
        url = index_host.index_url("idx").replace("http://", f"http://alice:{SECRET}@")

        async def go() -> None:
            async with client() as c:
                check_all(
                    built,
                    await fetch_all(c, url, ("torch",))
                    | await fetch_all(c, url, ("filelock", "typing-extensions")),
                )

        run(go())
        assert files_host.requests
        assert not any("Authorization" in r.headers for r in files_host.requests)
        assert all("Authorization" in r.headers for r in index_host.requests)


# --- retries, concurrency -------------------------------------------------------------


def _sequence(*answers: Fault | int | None) -> Callable[[str, str], Fault | int | None]:
    pending = list(answers)
    lock = threading.Lock()

    def hook(method: str, path: str) -> Fault | int | None:
        with lock:
            return pending.pop(0) if pending else None

    return hook


def test_retries_5xx_429_and_resets(built: BuiltScenario, server: IndexServer) -> None:
    server.add_fault(
        _sequence(503, Fault(status=429, headers={"Retry-After": "0"}), Fault(reset=True))
    )

    async def go() -> IndexClient:
        async with client(retries=3) as c:
            page = await c.project_page(server.index_url("idx"), "torch")
            assert len(page.files) == 3
            return c

    c = run(go())
    assert c.stats.retries == 3
    assert [r.status for r in server.page_requests()][-1] == 200


@pytest.mark.parametrize(("first", "second"), [("45", "120"), ("7", "3")])
def test_retry_after_is_waited_as_given_up_to_its_cap(
    server: IndexServer, monkeypatch: pytest.MonkeyPatch, first: str, second: str
) -> None:
    """The first retry (outside stamina's context) and later ones wait what Retry-After
    says, up to MAX_RETRY_AFTER (60 s), not stamina's wait_max for its own backoff."""
    server.add_fault(
        _sequence(
            Fault(status=429, headers={"Retry-After": first}),
            Fault(status=503, headers={"Retry-After": second}),
        )
    )
    waits: list[float] = []
    real_sleep = asyncio.sleep

    async def sleep(delay: float, *args: Any) -> Any:
        if delay > 0:
            waits.append(delay)
        return await real_sleep(0, *args)

    monkeypatch.setattr(asyncio, "sleep", sleep)

    async def go() -> IndexClient:
        async with client(retries=3) as c:
            await c.project_page(server.index_url("idx"), "torch")
            return c

    assert run(go()).stats.retries == 2
    assert waits == [min(float(first), 60.0), min(float(second), 60.0)]


def test_truncated_download_is_retried(built: BuiltScenario, server: IndexServer) -> None:
    server.configure("idx", pep658=False, ranges=False)
    f = built.find("idx", "typing_extensions-4.14.0-py3-none-any.whl")
    server.add_fault(_sequence(Fault(truncate=100)))  # only the first request is cut short
    item = IndexFile(f.filename, server.file_url("idx", f.filename), {"sha256": f.sha256})

    async def go() -> IndexClient:
        async with client() as c:
            md = await c.file_metadata(server.index_url("idx"), item)
            assert md.name == "typing_extensions"
            return c

    assert run(go()).stats.retries == 1
    assert [r.status for r in server.file_requests()] == [200, 200]


def test_retries_exhausted(server: IndexServer) -> None:
    server.add_fault(lambda m, p: 502)
    url = server.index_url("idx").replace("http://", f"http://bob:{SECRET}@")

    async def go() -> None:
        async with client(retries=2) as c:
            with pytest.raises(IndexRequestError) as e:
                await c.project_page(url, "torch")
            assert e.value.status == 502 and SECRET not in str(e.value)
            assert c.stats.page == 3 and c.stats.retries == 2

    run(go())


@pytest.mark.parametrize("concurrency", [2, 6])
def test_concurrency_is_bounded(
    built: BuiltScenario, server: IndexServer, concurrency: int
) -> None:
    state = {"now": 0, "max": 0}
    lock = threading.Lock()

    def slow(method: str, path: str) -> None:
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
        time.sleep(0.05)
        with lock:
            state["now"] -= 1

    server.add_fault(slow)

    async def go() -> None:
        async with client(concurrency=concurrency) as c:
            check_all(built, await fetch_all(c, server.index_url("idx")))

    run(go())
    assert state["max"] <= concurrency
    assert state["max"] >= 2  # requests really overlap


def test_proxy_from_environment(
    built: BuiltScenario, server: IndexServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The fixture server answers absolute-form request targets, so it can act as the proxy.
    for var in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HTTP_PROXY", server.url)
    url = "http://index.invalid/idx/simple"

    async def go() -> None:
        async with client() as c:
            check_all(built, await fetch_all(c, url))

    run(go())
    assert server.count(kind="page") == len(PROJECTS)


def test_no_proxy_exempts_its_hosts(
    built: BuiltScenario, server: IndexServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """NO_PROXY names the index host: its requests go straight to it, not to the proxy
    (here a port that refuses every connection)."""
    for var in ("no_proxy", "ALL_PROXY", "all_proxy", "HTTPS_PROXY", "https_proxy", "http_proxy"):
        monkeypatch.delenv(var, raising=False)
    refused = socket.socket()
    refused.bind(("127.0.0.1", 0))
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{refused.getsockname()[1]}")
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
    server.configure("idx", pep658=False)

    async def go() -> None:
        async with client(retries=0) as c:
            check_all(built, await fetch_all(c, server.index_url("idx")))

    with refused:
        run(go())
    assert all(not r.path.startswith("http://") for r in server.file_requests())


def test_socks_proxy_is_refused_in_one_line(
    server: IndexServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("NO_PROXY", "no_proxy", "HTTP_PROXY", "http_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("ALL_PROXY", f"socks5://bob:{SECRET}@127.0.0.1:9")

    async def go() -> None:
        async with client() as c:
            with pytest.raises(IndexRequestError, match="socks5 proxies are not supported") as e:
                await c.project_page(server.index_url("idx"), "torch")
            assert SECRET not in str(e.value)

    run(go())
    assert server.count(kind="page") == 0


@pytest.mark.parametrize(
    ("url", "no_proxy", "expected"),
    [
        ("http://pypi.example/simple/", "", "http://proxy:3128"),
        ("https://pypi.example/simple/", "", "http://secure:3128"),
        ("https://pypi.example/simple/", "ample", "http://secure:3128"),
        ("https://pypi.example/simple/", "example", None),  # a domain and its subdomains
        ("https://pypi.example/simple/", ".example", None),
        ("https://pypi.example:8443/simple/", "pypi.example", None),
        ("https://files.example/x.whl", "pypi.example", "http://secure:3128"),
        ("https://pypi.example/simple/", "*", None),
    ],
)
def test_proxy_for_each_url(
    url: str, no_proxy: str, expected: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lockfix.index.session import proxy_for

    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.setenv("NO_PROXY", no_proxy)
    proxies = {"http": "http://proxy:3128", "https": "secure:3128"}
    assert proxy_for(url, proxies) == expected
    assert proxy_for(url, {"all": "http://everything:1"}) in (None, "http://everything:1")


def test_uv_http_timeout(server: IndexServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UV_HTTP_TIMEOUT", "0.2")
    server.add_fault(lambda m, p: Fault(delay=1.0))

    async def go() -> None:
        async with client(retries=0) as c:
            assert c.timeout == 0.2
            with pytest.raises(IndexRequestError, match="timed out"):
                await c.project_page(server.index_url("idx"), "torch")

    run(go())


def test_reset_is_retried_and_not_reported_as_a_timeout(server: IndexServer) -> None:
    server.add_fault(lambda m, p: Fault(reset=True))

    async def go() -> IndexClient:
        async with client(retries=1) as c:
            with pytest.raises(IndexRequestError) as e:
                await c.project_page(server.index_url("idx"), "torch")
            assert "timed out" not in str(e.value), e.value
            return c

    assert run(go()).stats.retries == 1
    # exactly two: the HTTP layer resends nothing beneath IndexClient's retries
    assert len(server.page_requests()) == 2


def test_gzip_page_is_decoded(built: BuiltScenario, server: IndexServer) -> None:
    f = built.find("idx", "typing_extensions-4.14.0-py3-none-any.whl")
    html = f'<a href="{server.file_url("idx", f.filename)}#sha256={f.sha256}">{f.filename}</a>'
    body = gzip.compress(html.encode())
    headers = {"Content-Encoding": "gzip", "Content-Type": "text/html"}
    server.add_fault(
        lambda m, p: Fault(status=200, body=body, headers=headers) if "typing" in p else None
    )

    async def go() -> list[str]:
        async with client() as c:
            page = await c.project_page(server.index_url("idx"), "typing-extensions")
            return [x.filename for x in page.files]

    assert run(go()) == [f.filename]


# --- caching and offline ----------------------------------------------------------------


def test_offline(built: BuiltScenario, server: IndexServer, tmp_path: Path) -> None:
    cache = MetadataCache(tmp_path / "cache")

    async def cold_offline() -> None:
        async with client(cache=cache, offline=True) as c:
            with pytest.raises(OfflineCacheMiss, match="project page"):
                await c.project_page(server.index_url("idx"), "torch")
            f = built.find("idx", "filelock-3.18.0.tar.gz")
            item = IndexFile(f.filename, server.file_url("idx", f.filename), {"sha256": f.sha256})
            with pytest.raises(OfflineCacheMiss, match=r"filelock-3\.18\.0\.tar\.gz"):
                await c.file_metadata(server.index_url("idx"), item)

    run(cold_offline())
    assert server.requests == []

    async def warm() -> None:
        async with client(cache=cache) as c:
            await fetch_all(c, server.index_url("idx"))

    run(warm())
    server.reset_log()

    async def warm_offline() -> IndexClient:
        async with client(cache=cache, offline=True) as c:
            check_all(built, await fetch_all(c, server.index_url("idx")))
            return c

    c = run(warm_offline())
    assert server.requests == []
    assert c.stats.requests == 0 and c.stats.page_cache_hits == len(PROJECTS)


class _CachingPageServer:
    """A one-page index that sends cache validators, to test HTTP page caching."""

    def __init__(self, cache_control: str) -> None:
        self.hits: list[tuple[str, int]] = []
        owner = self
        body = b'<a href="/f/demo-1.0-py3-none-any.whl#sha256=' + b"a" * 64 + b'">demo</a>'

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                etag = '"v1"'
                if self.headers.get("If-None-Match") == etag:
                    owner.hits.append((self.path, 304))
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.send_header("Cache-Control", cache_control)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                owner.hits.append((self.path, 200))
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("ETag", etag)
                self.send_header("Cache-Control", cache_control)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/simple"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.mark.parametrize("cache_control", ["max-age=0, must-revalidate", "max-age=600"])
def test_page_http_cache(tmp_path: Path, cache_control: str) -> None:
    srv = _CachingPageServer(cache_control)
    cache = MetadataCache(tmp_path / "cache")

    async def go() -> IndexClient:
        async with client(cache=cache) as c:
            page = await c.project_page(srv.url, "demo")
            assert [f.filename for f in page.files] == ["demo-1.0-py3-none-any.whl"]
            return c

    try:
        run(go())
        second = run(go())
    finally:
        srv.close()
    if cache_control == "max-age=600":
        assert srv.hits == [("/simple/demo/", 200)]
        assert second.stats.page_cache_hits == 1 and second.stats.page == 0
    else:
        assert srv.hits == [("/simple/demo/", 200), ("/simple/demo/", 304)]
        assert second.stats.page_revalidated == 1


def test_basic_header_format() -> None:
    from lockfix.urls import Credentials

    creds = Credentials("alice", SECRET)
    assert base64.b64decode(creds.authorization().split()[1]) == f"alice:{SECRET}".encode()
    assert SECRET not in repr(creds)


# --- real PyPI (opt-in) -------------------------------------------------------------


@pytest.mark.network
def test_torch_271_metadata_from_pypi_by_ranges(tmp_path: Path) -> None:
    async def go() -> tuple[CoreMetadata, IndexClient]:
        async with IndexClient(cache=None, credentials=no_creds()) as c:
            page = await c.project_page("https://pypi.org/simple", "torch")
            (wheel,) = [
                f
                for f in page.files_for_version("2.7.1")
                if f.filename == "torch-2.7.1-cp311-cp311-manylinux_2_28_x86_64.whl"
            ]
            return await c.file_metadata("https://pypi.org/simple", wheel), c

    md, c = run(go())
    assert c.stats.full_download == 0 and c.stats.range >= 1
    nvidia = [r for r in md.requires_dist if r.startswith("nvidia-")]
    assert len(nvidia) == 14
    assert all("==" in r and 'platform_system == "Linux"' in r for r in nvidia)
    assert any(r.startswith("triton==3.3.1") for r in md.requires_dist)


def test_close_cancels_work_started_while_closing() -> None:
    """A run that fails closes its client while sibling tasks still run: work they start
    while the client cancels the rest (here, as a cancelled request cleans up) is cancelled
    too, and the failure is what propagates."""
    late: list[asyncio.Future[Any]] = []

    async def run() -> None:
        release = asyncio.Event()

        async def request() -> None:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                release.set()  # cleaning up takes a few turns of the loop
                for _ in range(3):
                    await asyncio.sleep(0)
                raise

        async def sibling(client: IndexClient) -> None:
            await release.wait()
            late.append(asyncio.ensure_future(client.memo.once(("late",), asyncio.Event().wait)))
            await late[0]

        async def failing() -> None:
            await asyncio.sleep(0)
            raise RuntimeError("the run failed")

        async with IndexClient() as client:
            task = asyncio.ensure_future(sibling(client))
            try:
                await asyncio.gather(client.memo.once(("first",), request), failing())
            finally:
                await asyncio.sleep(0)
        task.cancel()

    with pytest.raises(RuntimeError, match="the run failed"):
        asyncio.run(run())
    assert late and late[0].done()
