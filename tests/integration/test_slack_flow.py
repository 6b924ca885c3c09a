"""Slack through a whole hub (real OpenBao and pulsar-lite, SQLite), against the Slack double
that checks every request with Slack's spec: a flow step posts a message; Slack's 429 with
``Retry-After`` holds back every call with the credential for that long, the step is retried
after it, and nothing fails."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.doubles.slack import RecordedRequest, SlackDouble
from tests.support.hub import RunningHub, hub_settings, running_hub

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def slack_server() -> Iterator[SlackDouble]:
    with SlackDouble() as double:
        yield double


@pytest.fixture
def slack(slack_server: SlackDouble) -> Iterator[SlackDouble]:
    slack_server.reset()
    yield slack_server
    violations = slack_server.take_violations()
    slack_server.reset()
    assert not violations, "Slack spec violations:\n" + "\n".join(f"  {v}" for v in violations)


@pytest.fixture
async def hub(
    tmp_path: Path, openbao: tuple[str, str], pulsar_url: str
) -> AsyncIterator[RunningHub]:
    addr, token = openbao
    settings = hub_settings(tmp_path, vault_addr=addr, vault_token=token, pulsar_url=pulsar_url)
    async with running_hub(settings) as running:
        yield running


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
    response = await hub.client.put(f"/api/v1/flows/{flow_id}", json=flow)
    assert response.status_code in (200, 201), response.text


async def trigger(hub: RunningHub, flow_id: str, text: str) -> str:
    response = await hub.client.post(
        f"/api/v1/flows/{flow_id}/trigger", json={"parameters": {"text": text}}
    )
    assert response.status_code == 202, response.text
    return str(response.json()["run_id"])


async def remote_slowdowns(hub: RunningHub) -> float:
    text = (await hub.client.get("/metrics")).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "integrationhub_ratelimit_remote_slowdowns_total" and (
                sample.labels.get("connector") == "slack"
            ):
                return float(sample.value)
    return 0.0


async def first_post(slack: SlackDouble) -> RecordedRequest:
    """The first request to chat.postMessage, once it has arrived."""
    async with asyncio.timeout(10):
        while not slack.to("api"):
            await asyncio.sleep(0.01)
    return slack.to("api")[0]


async def test_slacks_429_holds_the_credential_back_and_the_runs_still_succeed(
    hub: RunningHub, slack: SlackDouble
) -> None:
    credential = {"type": "slack-bot", "data": {"token": slack.token, "base_url": slack.api_url}}
    put = await hub.client.put("/api/v1/credentials/slack-bot", json=credential)
    assert put.status_code in (200, 201), put.text
    await put_flow(hub, "deployed", "#general")
    await put_flow(hub, "audit", "#random")
    slack.rate_limit_next(1, retry_after=1.5)
    slowdowns = await remote_slowdowns(hub)

    first = await trigger(hub, "deployed", "v2.3 is live")
    rejected = await first_post(slack)
    second = await trigger(hub, "audit", "v2.3 deployed by the hub")
    runs = [await hub.wait_for_run(run_id) for run_id in (first, second)]

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
    assert await remote_slowdowns(hub) > slowdowns
