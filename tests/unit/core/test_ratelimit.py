"""The rate limiter in process: which limit applies, waiting instead of failing, remote blocks.
Redis-backed and shared limits are in tests/integration/test_ratelimit.py."""

from __future__ import annotations

import time
from typing import ClassVar

import httpx
import pytest
from pydantic import SecretStr

from integrationhub.connectors.base import BaseConnector
from integrationhub.connectors.http import HttpBearerCredential
from integrationhub.connectors.zulip import ZulipConnector, ZulipCredential
from integrationhub.core.http import remote_slow_down
from integrationhub.core.ratelimit import LimitKey, RateLimiter, parse_rate_limit
from integrationhub.errors import PermanentError, RateLimited

NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("text", "amount", "seconds"),
    [
        ("50/minute", 50, 60),
        ("200 per 60 seconds", 200, 60),
        ("5/second", 5, 1),
        ("1000/hour", 1000, 3600),
    ],
)
def test_rate_limits_are_read_by_the_limits_library(text: str, amount: int, seconds: int):
    limit = parse_rate_limit(text)
    assert limit is not None and (limit.amount, limit.get_expiry()) == (amount, seconds)


def test_none_is_no_limit_and_nonsense_is_refused():
    assert parse_rate_limit("none") is None
    with pytest.raises(ValueError, match="not like '50/minute'"):
        parse_rate_limit("fast please")


class _Unlimited(BaseConnector[HttpBearerCredential]):
    name = "unlimited-test"


class _Limited(BaseConnector[HttpBearerCredential]):
    name = "limited-test"
    rate_limit: ClassVar[str | None] = "10/second"


def zulip(rate_limit: str | None = None) -> ZulipCredential:
    return ZulipCredential(
        site="https://z.example.com",
        email="b@z.example.com",
        api_key=SecretStr("k"),
        rate_limit=rate_limit,
    )


@pytest.mark.parametrize(
    ("connector", "overrides", "credential", "expected"),
    [
        (ZulipConnector, {}, zulip(), "200 per 60 second"),
        (ZulipConnector, {"zulip": "100/minute"}, zulip(), "100 per 1 minute"),
        (ZulipConnector, {"zulip": "100/minute"}, zulip("5/second"), "5 per 1 second"),
        (ZulipConnector, {"zulip": "none"}, zulip(), None),
        (ZulipConnector, {}, zulip("none"), None),
        (_Unlimited, {}, None, None),
        (_Limited, {}, None, "10 per 1 second"),
    ],
    ids=[
        "default",
        "settings",
        "credential-wins",
        "settings-lift",
        "credential-lifts",
        "none",
        "no-credential",
    ],
)
def test_the_credential_wins_over_settings_which_win_over_the_connector(
    connector: type[BaseConnector],
    overrides: dict[str, str],
    credential: ZulipCredential | None,
    expected: str | None,
):
    limiter = RateLimiter.in_process(overrides=overrides)

    limit = limiter.limit_for(connector, credential)

    assert (str(limit) if limit else None) == expected


async def test_a_call_over_the_limit_waits_for_the_window_instead_of_failing():
    limiter = RateLimiter.in_process()
    key, limit = LimitKey("t", "cred"), parse_rate_limit("2/second")
    deadline = time.monotonic() + 10

    waits = [await limiter.acquire(key, limit, deadline=deadline) for _ in range(3)]

    assert waits[:2] == [pytest.approx(0, abs=0.05)] * 2
    assert 0.8 < waits[2] < 1.5
    await limiter.close()


async def test_limits_count_per_connector_and_credential():
    limiter = RateLimiter.in_process()
    limit = parse_rate_limit("1/minute")
    deadline = time.monotonic() + 1
    for key in (LimitKey("t", "a"), LimitKey("t", "b"), LimitKey("u", "a"), LimitKey("t", None)):
        assert await limiter.acquire(key, limit, deadline=deadline) < 0.05
    await limiter.close()


async def test_a_wait_past_the_deadline_fails_at_once_saying_so():
    limiter = RateLimiter.in_process()
    key, limit = LimitKey("t", "cred"), parse_rate_limit("1/minute")
    await limiter.acquire(key, limit, deadline=time.monotonic() + 5)
    started = time.monotonic()

    with pytest.raises(
        PermanentError, match=r"t with credential 'cred' may call again in .*deadline"
    ):
        await limiter.acquire(key, limit, deadline=time.monotonic() + 5)

    assert time.monotonic() - started < 0.5
    await limiter.close()


async def test_a_remote_block_holds_calls_back_and_a_shorter_one_does_not_shorten_it():
    limiter = RateLimiter.in_process()
    key = LimitKey("t", "cred")
    await limiter.block(key, 0.4)
    await limiter.block(key, 0.05)

    waited = await limiter.acquire(key, None, deadline=time.monotonic() + 5)

    assert 0.3 < waited < 0.8
    await limiter.close()


async def test_rate_limited_errors_block_the_credential_but_not_calls_without_one():
    limiter = RateLimiter.in_process()
    with pytest.raises(RateLimited):
        async with limiter.reporting(LimitKey("t", "cred")):
            raise RateLimited("429", retry_after=30)
    with pytest.raises(RateLimited):
        async with limiter.reporting(LimitKey("t", None)):
            raise RateLimited("429", retry_after=30)

    with pytest.raises(PermanentError, match="remote side asked to slow down"):
        await limiter.acquire(LimitKey("t", "cred"), None, deadline=time.monotonic() + 1)
    assert await limiter.acquire(LimitKey("t", None), None, deadline=time.monotonic() + 1) < 0.05
    await limiter.close()


async def test_a_remote_block_is_bounded_by_max_remote_wait():
    limiter = RateLimiter.in_process(max_remote_wait=0.3)
    key = LimitKey("t", "cred")
    await limiter.block(key, 86_400)  # a Retry-After of a day

    waited = await limiter.acquire(key, None, deadline=time.monotonic() + 5)

    assert 0.2 < waited < 0.7
    await limiter.close()


@pytest.mark.parametrize(
    ("status", "headers", "expected"),
    [
        (429, {"Retry-After": "3"}, 3.0),
        (503, {"Retry-After": "1.5"}, 1.5),
        (429, {}, None),
        (200, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(NOW + 20)}, 20.0),
        (200, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "7"}, 7.0),  # seconds from now
        (200, {"X-RateLimit-Remaining": "4", "X-RateLimit-Reset": str(NOW + 20)}, None),
        (200, {"Retry-After": "3"}, None),
        (500, {"Retry-After": "3"}, None),
    ],
)
def test_answers_that_ask_to_slow_down_are_recognised(
    status: int, headers: dict[str, str], expected: float | None, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(time, "time", lambda: NOW)
    assert remote_slow_down(httpx.Response(status, headers=headers)) == (
        pytest.approx(expected) if expected is not None else None
    )
