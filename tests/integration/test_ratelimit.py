"""Rate limits end to end: hubs on real OpenBao and pulsar-lite with their limits in the real
Redis (127.0.0.1:6379, a key prefix per test), calling the httpbin-like double. A step over
its limit waits and the wait shows in /metrics; two hubs sharing Redis stay within one limit
together; a remote 429 or ``X-RateLimit-Remaining: 0`` holds later calls back, and nothing
fails."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from integrationhub.core.ratelimit import LimitKey, RateLimiter, parse_rate_limit
from integrationhub.settings import RateLimitSettings
from tests.doubles.httpbin import HttpBin
from tests.integration.conftest_httpbin import *  # noqa: F403
from tests.support.hub import RunningHub, hub_settings, running_hub

pytestmark = pytest.mark.integration

REDIS_URL = os.environ.get("INTEGRATIONHUB_TEST_REDIS", "redis://127.0.0.1:6379")
Hubs = Callable[[str], AbstractAsyncContextManager[RunningHub]]


@pytest.fixture
def redis_limits() -> Iterator[RateLimitSettings]:
    """Limits in the real Redis under a prefix of this test's own, removed afterwards."""
    prefix = f"ih-test-{uuid.uuid4().hex[:12]}"
    yield RateLimitSettings(redis_url=REDIS_URL, key_prefix=prefix)
    with redis.Redis.from_url(REDIS_URL) as client:
        for key in client.scan_iter(f"{prefix}:*"):
            client.delete(key)


@pytest.fixture
def hubs(
    tmp_path: Path, openbao: tuple[str, str], pulsar_url: str, redis_limits: RateLimitSettings
) -> Hubs:
    """``async with hubs("a") as hub``: a replica (SQLite, own topics) sharing the Redis limits."""

    def start(name: str) -> AbstractAsyncContextManager[RunningHub]:
        addr, token = openbao
        settings = hub_settings(
            tmp_path / name,
            vault_addr=addr,
            vault_token=token,
            pulsar_url=pulsar_url,
            ratelimit=redis_limits,
        )
        return running_hub(settings)

    return start


@pytest.fixture
async def hub(hubs: Hubs) -> AsyncIterator[RunningHub]:
    async with hubs("hub") as running:
        yield running


async def put_credential(hub: RunningHub, httpbin: HttpBin, **data: Any) -> None:
    body = {"type": "http-bearer", "data": {"token": "t", "base_url": httpbin.url, **data}}
    response = await hub.client.put("/api/v1/credentials/api", json=body)
    assert response.status_code in (200, 201), response.text


async def put_flow(hub: RunningHub, flow_id: str, *paths: str) -> None:
    steps = [
        {"id": f"s{i}", "action": "http-request", "credential": "api", "input": {"url": path}}
        for i, path in enumerate(paths)
    ]
    response = await hub.client.put(
        f"/api/v1/flows/{flow_id}", json={"id": flow_id, "steps": steps}
    )
    assert response.status_code in (200, 201), response.text


async def trigger(hub: RunningHub, flow_id: str, *, wait: float | None = None) -> dict[str, Any]:
    query = f"?wait={wait:g}" if wait else ""
    response = await hub.client.post(f"/api/v1/flows/{flow_id}/trigger{query}", json={})
    assert response.status_code in (200, 202), response.text
    return response.json()  # type: ignore[no-any-return]


async def metric(hub: RunningHub, name: str, **labels: str) -> float:
    text = (await hub.client.get("/metrics")).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and labels.items() <= sample.labels.items():
                return float(sample.value)
    return 0.0


def most_in_any_window(times: list[float], window: float) -> int:
    """The most arrivals within ``window`` seconds. Arrivals lag the limiter's count by the
    step's own bookkeeping, unevenly: tests check a window shorter than the limit's."""
    times = sorted(times)
    return max(sum(1 for t in times if start <= t < start + window) for start in times)


# --- waiting instead of failing ----------------------------------------------------------------


async def test_a_step_over_the_limit_waits_and_the_wait_shows_in_metrics(
    hub: RunningHub, httpbin: HttpBin
):
    await put_credential(hub, httpbin, rate_limit="2/second")
    await put_flow(hub, "four-calls", "/anything/1", "/anything/2", "/anything/3", "/anything/4")
    waited = await metric(hub, "integrationhub_ratelimit_wait_seconds_sum", connector="http")
    calls = await metric(hub, "integrationhub_ratelimit_wait_seconds_count", connector="http")

    run = await trigger(hub, "four-calls", wait=20)

    assert run["status"] == "succeeded", run
    assert [step["attempts"] for step in run["steps"]] == [1, 1, 1, 1]
    arrivals = [r.at for r in httpbin.requests]
    assert most_in_any_window(arrivals, 0.7) <= 2
    assert arrivals[2] - arrivals[0] >= 0.85
    after = await metric(hub, "integrationhub_ratelimit_wait_seconds_sum", connector="http")
    assert after - waited >= 0.8
    count = await metric(hub, "integrationhub_ratelimit_wait_seconds_count", connector="http")
    assert count - calls == 4


# --- shared by replicas ------------------------------------------------------------------------


async def test_two_limiters_sharing_redis_stay_within_the_limit_together(
    redis_limits: RateLimitSettings,
):
    limit = parse_rate_limit("4/second")
    key = LimitKey("http", "api")
    replicas = [RateLimiter.from_settings(redis_limits) for _ in range(2)]
    alone = [RateLimiter.in_process() for _ in range(2)]
    deadline = time.monotonic() + 10

    async def hits(limiters: list[RateLimiter], n: int) -> list[float]:
        async def one(limiter: RateLimiter) -> float:
            await limiter.acquire(key, limit, deadline=deadline)
            return time.monotonic()

        return await asyncio.gather(*(one(limiters[i % 2]) for i in range(n)))

    shared = await hits(replicas, 10)
    separate = await hits(alone, 8)

    assert most_in_any_window(shared, 0.7) <= 4  # a first call's reply lags its count a little
    assert max(shared) - min(shared) >= 1.9  # 10 hits at 4 a second: three windows
    assert max(separate) - min(separate) < 0.5  # each process alone would let all 8 through
    for limiter in replicas + alone:
        await limiter.close()


async def test_two_hubs_with_one_credential_stay_within_its_limit_together(
    hubs: Hubs, httpbin: HttpBin
):
    async with hubs("one") as one, hubs("two") as two:
        for hub in (one, two):
            await put_credential(hub, httpbin, rate_limit="3/second")
            await put_flow(hub, "call", "/anything/shared")

        runs = await asyncio.gather(*(trigger(hub, "call", wait=20) for hub in (one, two) * 4))

    assert [run["status"] for run in runs] == ["succeeded"] * 8
    arrivals = sorted(r.at for r in httpbin.to("/anything/shared"))
    assert len(arrivals) == 8
    # Never four calls within much less than a second, whichever hub made them: the limit is
    # shared (each hub alone would let six through at once). Not a full second: a call leaves
    # a moment after its admission, later when its process is busy.
    assert min(arrivals[i + 3] - arrivals[i] for i in range(len(arrivals) - 3)) >= 0.4
    assert max(arrivals) - min(arrivals) >= 1.8  # 8 calls at 3 a second: three windows


# --- what the remote side says ------------------------------------------------------------------


async def test_a_429_holds_back_every_later_call_with_that_credential_and_nothing_fails(
    hub: RunningHub, httpbin: HttpBin
):
    await put_credential(hub, httpbin)
    await put_flow(hub, "limited", "/anything/limited")
    await put_flow(hub, "other", "/anything/other")
    httpbin.answer_next(
        "/anything/limited",
        429,
        headers={"Retry-After": "1.2", "X-RateLimit-Remaining": "0"},
        body={"error": "slow down"},
    )
    slowdowns = await metric(
        hub, "integrationhub_ratelimit_remote_slowdowns_total", connector="http"
    )

    first = await trigger(hub, "limited")
    async with asyncio.timeout(10):
        while not httpbin.to("/anything/limited"):
            await asyncio.sleep(0.01)
    second = await trigger(hub, "other")
    runs = [await hub.wait_for_run(run["run_id"]) for run in (first, second)]

    assert [run["status"] for run in runs] == ["succeeded", "succeeded"], runs
    assert runs[0]["steps"][0]["attempts"] == 2
    rejected, retried = httpbin.to("/anything/limited")
    (other,) = httpbin.to("/anything/other")
    assert retried.at - rejected.at >= 1.1
    assert other.at - rejected.at >= 1.1  # another flow, same credential: it waited too
    after = await metric(hub, "integrationhub_ratelimit_remote_slowdowns_total", connector="http")
    assert after > slowdowns


async def test_a_success_with_no_requests_remaining_holds_the_next_call_until_the_reset(
    hub: RunningHub, httpbin: HttpBin
):
    await put_credential(hub, httpbin)
    await put_flow(hub, "two-calls", "/anything/a", "/anything/b")
    reset_at = time.monotonic() + 2.0
    reset = f"{time.time() + 2.0:.3f}"  # Unix time, as GitHub and Zulip send it
    httpbin.answer_next(
        "/anything/a", 200, headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset}
    )

    run = await trigger(hub, "two-calls", wait=20)

    assert run["status"] == "succeeded", run
    (a,) = httpbin.to("/anything/a")
    (b,) = httpbin.to("/anything/b")
    assert a.at < reset_at - 0.5  # the second call would have gone long before the reset
    assert b.at >= reset_at - 0.05
