"""Slack through a whole hub (real OpenBao and pulsar-lite, SQLite), against the Slack double
that checks every request with Slack's spec: a flow step posts a message; Slack's 429 with
``Retry-After`` holds back every call with the credential for that long, the step is retried
after it, and nothing fails."""

from __future__ import annotations

import asyncio

import pytest

from tests.doubles.slack import RecordedRequest, SlackDouble
from tests.support.databases import sqlite_only
from tests.support.hub import RunningHub

pytestmark = [pytest.mark.integration, sqlite_only]


async def put_flow(hub: RunningHub, flow_id: str, channel: str) -> None:
    flow = {
        "id": flow_id,
        "parameters": {"type": "object", "properties": {"text": {"type": "string"}}},
        "steps": [
            {
                "id": "post",
                "action": "slack-message",
                "credential": "slack-bot",
                "input": {"channel": channel, "text": "{{ parameters.text }}"},
            }
        ],
    }
    await hub.put_flow(flow)


async def first_post(slack: SlackDouble) -> RecordedRequest:
    """The first request to chat.postMessage, once it has arrived."""
    async with asyncio.timeout(10):
        while not slack.to("api"):
            await asyncio.sleep(0.01)
    return slack.to("api")[0]


async def test_slacks_429_holds_the_credential_back_and_the_runs_still_succeed(
    hub: RunningHub, slack: SlackDouble
) -> None:
    await hub.put_credential(
        "slack-bot", "slack-bot", {"token": slack.token, "base_url": slack.api_url}
    )
    await put_flow(hub, "deployed", "#general")
    await put_flow(hub, "audit", "#random")
    slack.rate_limit_next(1, retry_after=1.5)
    slowdowns = await hub.remote_slowdowns("slack")

    first = await hub.trigger("deployed", {"text": "v2.3 is live"})
    rejected = await first_post(slack)
    second = await hub.trigger("audit", {"text": "v2.3 deployed by the hub"})
    runs = [await hub.wait_for_run(run["run_id"]) for run in (first, second)]

    assert [run["status"] for run in runs] == ["succeeded", "succeeded"], runs
    assert [run["steps"][0]["attempts"] for run in runs] == [2, 1]
    general = [r for r in slack.to("api") if r.form["channel"] == "#general"]
    (other,) = [r for r in slack.to("api") if r.form["channel"] == "#random"]
    assert general[0] is rejected
    retried = general[1]
    assert (rejected.status, retried.status) == (429, 200)
    assert retried.form == rejected.form == {"channel": "#general", "text": "v2.3 is live"}
    assert other.status == 200
    assert retried.at - rejected.at >= 1.45  # the step waited for Retry-After
    assert other.at - rejected.at >= 1.45  # another flow, same credential: it waited too
    assert sorted(m["channel"] for m in slack.messages) == ["C0GENERAL01", "C0RANDOM001"]
    posted = {m["channel"]: m for m in slack.messages}
    assert runs[0]["steps"][0]["output"] == {
        "channel": "C0GENERAL01",
        "ts": posted["C0GENERAL01"]["ts"],
        "thread_ts": None,
    }
    assert await hub.remote_slowdowns("slack") > slowdowns
