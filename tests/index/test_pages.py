"""The page cache policy on its own, without a network: how long an index page stays
fresh, when a stored page answers without a request, and what a revalidation asks."""

from __future__ import annotations

import email.utils

import pytest

from lockfix.index.cache import CachedPage
from lockfix.index.pages import PagePolicy, page_freshness

NOW = 1_800_000_000.0


def http_date(when: float) -> str:
    return email.utils.formatdate(when, usegmt=True)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, 600.0),  # says nothing: the TTL
        ({"Cache-Control": "max-age=60"}, 60.0),
        ({"Cache-Control": 'public, max-age="90"'}, 90.0),
        ({"Cache-Control": "max-age=60", "Age": "50"}, 10.0),
        ({"Cache-Control": "max-age=60", "Age": "500"}, 0.0),
        ({"Cache-Control": "no-cache, max-age=60"}, 0.0),
        ({"Cache-Control": "no-store"}, None),
        ({"Expires": http_date(NOW + 30), "Date": http_date(NOW)}, 30.0),
        ({"Expires": "0"}, 0.0),  # invalid: already expired
        (
            {"Cache-Control": "max-age=5", "Expires": http_date(NOW + 30), "Date": http_date(NOW)},
            5.0,
        ),
    ],
)
def test_freshness_of_a_response(headers: dict[str, str], expected: float | None) -> None:
    lowered = {k.lower(): v for k, v in headers.items()}
    assert page_freshness(lowered, 600.0) == expected
    assert PagePolicy(ttl=600.0).freshness(lowered) == expected


def test_a_stored_page_answers_while_fresh() -> None:
    policy = PagePolicy(ttl=600.0)
    assert policy.answers(fetched_at=NOW - 10, max_age=60, now=NOW)
    assert not policy.answers(fetched_at=NOW - 60, max_age=60, now=NOW)
    assert not policy.answers(fetched_at=NOW + 10, max_age=60, now=NOW)  # clock went back
    assert policy.fresh_until(NOW - 10, 60) == NOW + 50


def test_ttl_zero_revalidates_every_page() -> None:
    assert not PagePolicy(ttl=0).answers(fetched_at=NOW - 1, max_age=3600, now=NOW)


def test_offline_any_stored_page_answers_for_this_run_only() -> None:
    policy = PagePolicy(ttl=0, offline=True)
    assert policy.answers(fetched_at=NOW - 86_400 * 365, max_age=0, now=NOW)
    assert policy.fresh_until(NOW - 10, 60) == 0


def test_revalidation_sends_the_stored_validators() -> None:
    page = CachedPage(
        url="https://example.org/simple/demo/",
        final_url="https://example.org/simple/demo/",
        content_type="text/html",
        body=b"",
        fetched_at=NOW,
        max_age=0,
        etag='"abc"',
        last_modified=http_date(NOW - 100),
    )
    assert PagePolicy.revalidation(page) == {
        "If-None-Match": '"abc"',
        "If-Modified-Since": http_date(NOW - 100),
    }
    page.etag = None
    assert PagePolicy.revalidation(page) == {"If-Modified-Since": http_date(NOW - 100)}
    assert PagePolicy.revalidation(None) == {}
