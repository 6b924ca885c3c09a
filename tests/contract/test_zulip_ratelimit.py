"""Zulip's rate limit, for every action: a 429 becomes ``RateLimited`` with Zulip's fractional
wait, and any answer, success or not, that leaves no requests reports its reset to the hub's
rate limiter (``core/http.py``'s ``reporting_remote_limits``, which the engine sets around
each call). The double plays Zulip's limiter, headers included (``tests/doubles/zulip/limits.py``);
tests/integration/test_zulip_remote_limits.py shows a whole hub holding its calls back."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from integrationhub.core.http import reporting_remote_limits
from integrationhub.errors import RateLimited
from tests.contract.zulip_support import *  # noqa: F403
from tests.contract.zulip_support import Invoke
from tests.doubles.zulip import ZulipDouble

pytestmark = pytest.mark.contract

ParamsFor = Callable[[ZulipDouble], dict[str, Any]]
ACTIONS: dict[str, ParamsFor] = {
    "zulip-message": lambda _: {"type": "direct", "to": [11], "content": "hi"},
    "zulip-reaction": lambda zulip: {
        "message_id": zulip.push_message(content="react to me")["id"],
        "emoji_name": "octopus",
    },
    "zulip-upload": lambda _: {"filename": "a.txt", "content": "hi"},
}


def stored(zulip: ZulipDouble) -> int:
    """What the double keeps of any action: messages sent, reactions, uploads."""
    return len(zulip.messages) + len(zulip.reactions) + len(zulip.uploads)


@contextmanager
def reporting() -> Iterator[list[float]]:
    """The waits that answers within the block report to the rate limiter."""
    waits: list[float] = []

    async def sink(seconds: float) -> None:
        waits.append(seconds)

    with reporting_remote_limits(sink):
        yield waits


@pytest.mark.parametrize("action", list(ACTIONS))
@pytest.mark.parametrize("header", [True, False], ids=["with-header", "body-only"])
async def test_429_is_rate_limited_waiting_zulips_fractional_retry_after(
    zulip: ZulipDouble, invoke: Invoke, action: str, header: bool
) -> None:
    params = ACTIONS[action](zulip)
    zulip.rate_limit_next(1, retry_after=0.37, header=header)

    with pytest.raises(RateLimited) as caught:
        await invoke(action, params)

    assert caught.value.retry_after == pytest.approx(0.37)
    assert "answered 429: API usage exceeded rate limit (RATE_LIMIT_HIT)" in caught.value.message
    assert stored(zulip) == 0


@pytest.mark.parametrize("action", list(ACTIONS))
async def test_a_request_over_the_limit_is_rate_limited_until_the_window_frees(
    zulip: ZulipDouble, invoke: Invoke, action: str
) -> None:
    zulip.limit_requests(1, window=30.0)
    await invoke(action, ACTIONS[action](zulip))
    params = ACTIONS[action](zulip)

    with reporting() as waits, pytest.raises(RateLimited) as caught:
        await invoke(action, params)

    assert caught.value.retry_after is not None and 29.0 < caught.value.retry_after <= 30.0
    assert waits == [pytest.approx(caught.value.retry_after, abs=0.1)]  # from Retry-After
    assert zulip.requests[-1].status == 429
    assert stored(zulip) == 1


@pytest.mark.parametrize("action", list(ACTIONS))
@pytest.mark.parametrize("whole_seconds", [True, False], ids=["zulip-whole-seconds", "fraction"])
async def test_a_success_that_leaves_no_requests_reports_the_reset(
    zulip: ZulipDouble, invoke: Invoke, action: str, whole_seconds: bool
) -> None:
    zulip.limit_requests(1, window=3.0, whole_second_reset=whole_seconds)
    params = ACTIONS[action](zulip)
    before = time.time()

    with reporting() as waits:
        await invoke(action, params)

    (wait,) = waits
    if whole_seconds:  # Zulip truncates the reset: up to a second early
        assert int(before + 3.0) - time.time() - 0.05 <= wait <= 3.0
    else:
        assert wait == pytest.approx(3.0, abs=0.1)
    assert stored(zulip) == 1


@pytest.mark.parametrize("action", list(ACTIONS))
async def test_answers_with_requests_remaining_report_nothing(
    zulip: ZulipDouble, invoke: Invoke, action: str
) -> None:
    zulip.limit_requests(200, window=60.0)
    params = ACTIONS[action](zulip)

    with reporting() as waits:
        await invoke(action, params)

    assert waits == []
    assert zulip.requests[-1].status == 200


async def test_an_already_existing_reaction_that_leaves_no_requests_reports_the_reset(
    zulip: ZulipDouble, invoke: Invoke
) -> None:
    zulip.limit_requests(2, window=5.0, whole_second_reset=False)
    params = ACTIONS["zulip-reaction"](zulip)
    await invoke("zulip-reaction", params)

    with reporting() as waits:
        again = await invoke("zulip-reaction", params)

    assert again.changed is False  # type: ignore[attr-defined]
    assert zulip.requests[-1].status == 400  # REACTION_ALREADY_EXISTS, with the limit's headers
    (wait,) = waits
    assert wait == pytest.approx(5.0, abs=0.2)
