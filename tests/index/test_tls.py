"""TLS of the index session against a real loopback index served over https: the trust
store is the one lockfix loads (certifi's, or SSL_CERT_FILE's), and a run against plain
http indexes never loads one."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures.builder import BuiltScenario, build_scenario
from fixtures.server import IndexServer
from lockfix.errors import IndexRequestError
from lockfix.index.auth import CredentialProvider
from lockfix.index.http import IndexClient

SCENARIO = {"indexes": [{"name": "idx", "packages": [{"name": "six", "version": "1.17.0"}]}]}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> BuiltScenario:
    return build_scenario(SCENARIO, tmp_path_factory.mktemp("built"))


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("no openssl command to make a certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def https_server(built: BuiltScenario, certificate: tuple[Path, Path]) -> Iterator[str]:
    """The index over https (its certificate is trusted by no default store)."""
    server = IndexServer(built).bind()
    httpd = server._httpd
    assert httpd is not None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    serving = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    serving.start()
    try:
        yield server.index_url("idx").replace("http://", "https://", 1)
    finally:
        server.stop()


def _page(index_url: str) -> tuple[int, IndexClient]:
    async def go() -> tuple[int, IndexClient]:
        async with IndexClient(cache=None, retries=0, credentials=CredentialProvider()) as c:
            page = await c.project_page(index_url, "six")
            return len(page.files), c

    return asyncio.run(go())


def test_https_index_trusted_through_ssl_cert_file(
    https_server: str, certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    files, _ = _page(https_server)
    assert files == 1


def test_https_index_not_trusted_by_default(
    https_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("SSL_CERT_FILE", "SSL_CERT_DIR", "SSL_CLIENT_CERT"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(IndexRequestError, match="ConnectError"):
        _page(https_server)


def test_plain_http_index_loads_no_trust_store(
    built: BuiltScenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("SSL_CERT_FILE", "SSL_CERT_DIR", "SSL_CLIENT_CERT"):
        monkeypatch.delenv(name, raising=False)
    with IndexServer(built) as server:
        files, client = _page(server.index_url("idx"))
    assert files == 1
    assert client.session._tls is None
