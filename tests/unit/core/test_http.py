from __future__ import annotations

import datetime
import email.utils
import time

import httpx
import pytest

from integrationhub.core.http import raise_for_status, retry_after, transport_failure
from integrationhub.errors import PermanentError, RateLimited, RetryableError

NOW = 1_800_000_000.0


def iso(at: float, layout: str) -> str:
    """``at`` as Jira sends ``X-RateLimit-Reset``: an ISO 8601 timestamp in UTC."""
    return datetime.datetime.fromtimestamp(at, datetime.UTC).strftime(layout)


def response(status: int, headers: dict[str, str] | None = None, body: str = "") -> httpx.Response:
    return httpx.Response(status, headers=headers, text=body)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "2"}, 2.0),
        ({"Retry-After": "28.706807374954224"}, 28.706807374954224),
        ({"Retry-After": email.utils.formatdate(NOW + 30, usegmt=True)}, 30.0),
        ({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(NOW + 12)}, 12.0),
        ({"X-RateLimit-Remaining": "5", "X-RateLimit-Reset": str(NOW + 12)}, None),
        (
            {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": iso(NOW + 120, "%Y-%m-%dT%H:%MZ")},
            120,
        ),
        (
            {
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": iso(NOW + 45, "%Y-%m-%dT%H:%M:%SZ"),
            },
            45,
        ),
        ({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": iso(NOW + 9, "%Y-%m-%dT%H:%M:%S")}, 9),
        ({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": iso(NOW - 60, "%Y-%m-%dT%H:%MZ")}, 0),
        ({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "2026-13-45T99:99Z"}, None),
        (
            {
                "Retry-After": "7",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": iso(NOW + 60, "%Y-%m-%dT%H:%MZ"),
            },
            7,
        ),
        ({"Retry-After": "soon"}, None),
        ({}, None),
    ],
)
def test_retry_after_reads_seconds_dates_and_rate_limit_reset(headers, expected):
    assert retry_after(response(429, headers), now=NOW) == pytest.approx(expected, abs=1)


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (429, RateLimited),
        (408, RetryableError),
        (409, RetryableError),
        (425, RetryableError),
        (500, RetryableError),
        (503, RetryableError),
        (400, PermanentError),
        (401, PermanentError),
        (403, PermanentError),
        (404, PermanentError),
        (422, PermanentError),
    ],
)
def test_status_codes_are_classified_retryable_or_permanent(status, error):
    with pytest.raises(error) as caught:
        raise_for_status(response(status, body="nope"), what="Example POST /x")
    assert f"Example POST /x answered {status}: nope" in caught.value.message


@pytest.mark.parametrize(
    ("status", "effect_possible"),
    [
        *((status, False) for status in (408, 409, 425, 429, 503)),
        *((status, True) for status in (500, 502, 504, 507)),
    ],
)
def test_a_retryable_answer_says_whether_the_request_may_have_been_acted_on(
    status, effect_possible
):
    with pytest.raises(RetryableError) as caught:
        raise_for_status(response(status), what="x")
    assert caught.value.effect_possible is effect_possible


REQUEST = httpx.Request("POST", "https://api.example.com/x")


@pytest.mark.parametrize(
    ("exc", "effect_possible"),
    [
        (httpx.ConnectError("refused", request=REQUEST), False),
        (httpx.ConnectTimeout("slow", request=REQUEST), False),
        (httpx.PoolTimeout("busy", request=REQUEST), False),
        (httpx.ReadTimeout("no answer", request=REQUEST), True),
        (httpx.ReadError("reset", request=REQUEST), True),
        (httpx.WriteError("broken pipe", request=REQUEST), True),
        (httpx.RemoteProtocolError("closed", request=REQUEST), True),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else str(value),
)
def test_a_request_without_an_answer_may_have_had_its_effect_once_it_could_have_left(
    exc, effect_possible
):
    error = transport_failure("Example POST /x", exc)

    assert error.effect_possible is effect_possible
    assert error.message == f"Example POST /x failed: {type(exc).__name__}"


@pytest.mark.parametrize("status", [429, 503])
@pytest.mark.parametrize("form", ["seconds", "date"])
def test_429_and_503_carry_their_retry_after_in_seconds_or_as_an_http_date(status, form):
    wait = "30" if form == "seconds" else email.utils.formatdate(time.time() + 30, usegmt=True)
    with pytest.raises(RetryableError) as caught:
        raise_for_status(response(status, {"Retry-After": wait}), what="x")
    assert caught.value.retry_after == pytest.approx(30, abs=2)


def test_success_raises_nothing_and_long_bodies_are_cut():
    raise_for_status(response(204), what="x")
    with pytest.raises(PermanentError) as caught:
        raise_for_status(response(400, body="x" * 10_000), what="x")
    assert len(caught.value.message) < 400
