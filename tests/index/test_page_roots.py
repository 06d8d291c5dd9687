"""IndexClient.page_stamp: the stamp of the cached project page a check would read, for any
kind of index URL, the same on every call of a run (each index URL is looked at once)."""

from __future__ import annotations

from pathlib import Path

from lockfix.index.cache import CachedPage, MetadataCache
from lockfix.index.http import IndexClient
from lockfix.index.local import is_remote, looks_flat, project_page_url

URLS = (
    "https://index.example/simple",
    "https://index.example/simple/",
    "https://user:secret@index.example/private/simple/",
    "https://index.example/find/links.html",
    "file:///srv/wheels",
    "wheels",
)


def _reference(client: IndexClient, index_url: str, name: str, flat: bool) -> object:
    """What the stamp is: that of the page of a remote Simple API root, else None."""
    if not is_remote(index_url):
        return None
    clean = client.credentials.register_index(index_url)
    if flat or looks_flat(clean):
        return None
    return client.pages.stamp(project_page_url(clean, name))


def _store_pages(root: Path) -> None:
    cache = MetadataCache(root)
    for url in URLS:
        page_url = project_page_url(url.replace("user:secret@", ""), "demo")
        body = f"<html>{url}</html>".encode()
        cache.pages.put(CachedPage(page_url, page_url, "text/html", body, 1_800_000_000.0, 600.0))
    cache.close()


def test_a_page_stamp_is_the_same_on_every_call(tmp_path: Path) -> None:
    _store_pages(tmp_path)
    client = IndexClient(cache=MetadataCache(tmp_path), offline=True)
    found = 0
    for preload in (False, True, False):
        if preload:
            client.preload_page_stamps([(u, "Demo", f) for u in URLS for f in (False, True)])
        for url in URLS:
            for flat in (False, True):
                stamp = client.page_stamp(url, "Demo", flat=flat)
                assert stamp == _reference(client, url, "Demo", flat), (url, flat)
                found += stamp is not None
    assert found == 3 * 3  # the three Simple API roots, not flat, each round


def test_an_index_url_with_credentials_registers_them_at_each_call(tmp_path: Path) -> None:
    """As registering the index does: what the URL carries is what a request sends next."""
    _store_pages(tmp_path)
    client = IndexClient(cache=MetadataCache(tmp_path), offline=True)
    page = "https://index.example/private/simple/demo/"
    for other in (None, "https://other:pw@index.example/private/simple/"):
        if other is not None:
            client.credentials.register_index(other)
        assert client.page_stamp(URLS[2], "demo") is not None
        credentials = client.credentials.for_url(page)
        assert credentials is not None and credentials.username == "user"
