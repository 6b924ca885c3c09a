"""Zulip's rate-limit headers through a whole hub (real OpenBao and pulsar-lite, the hub in this
process): a flow reacts to a message, uploads a file and posts a link to it, against the Zulip
double playing Zulip's limiter (tests/doubles/zulip/limits.py). An answer that leaves no
requests holds the next step until Zulip's reset, and nothing fails."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.doubles.zulip import ZulipDouble
from tests.support.hub import RunningHub, hub_settings, running_hub

pytestmark = pytest.mark.integration

FAST_RETRY = {"initial_delay": 0.01, "max_delay": 0.01}


@pytest.fixture
async def hub(
    tmp_path: Path, openbao: tuple[str, str], pulsar_url: str
) -> AsyncIterator[RunningHub]:
    """A hub on SQLite with its rate limits in this process: the limits are the subject."""
    addr, token = openbao
    settings = hub_settings(tmp_path, vault_addr=addr, vault_token=token, pulsar_url=pulsar_url)
    async with running_hub(settings) as running:
        yield running


async def put_flow(hub: RunningHub, zulip: ZulipDouble, flow_id: str, steps: list[dict]) -> None:
    data = {"site": zulip.url, "email": zulip.email, "api_key": zulip.api_key}
    response = await hub.client.put(
        "/api/v1/credentials/zulip-bot", json={"type": "zulip", "data": data}
    )
    assert response.status_code in (200, 201), response.text
    for step in steps:
        step |= {"credential": "zulip-bot", "retry": FAST_RETRY}
    response = await hub.client.put(
        f"/api/v1/flows/{flow_id}", json={"id": flow_id, "steps": steps}
    )
    assert response.status_code in (200, 201), response.text


async def trigger(hub: RunningHub, flow_id: str) -> dict[str, Any]:
    response = await hub.client.post(f"/api/v1/flows/{flow_id}/trigger?wait=30", json={})
    assert response.status_code in (200, 202), response.text
    return response.json()  # type: ignore[no-any-return]


async def slowdowns(hub: RunningHub) -> float:
    text = (await hub.client.get("/metrics")).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if (
                sample.name == "integrationhub_ratelimit_remote_slowdowns_total"
                and sample.labels.get("connector") == "zulip"
            ):
                return float(sample.value)
    return 0.0


def react(message_id: int) -> dict[str, Any]:
    return {
        "id": "react",
        "action": "zulip-reaction",
        "input": {"message_id": message_id, "emoji_name": "eyes"},
    }


UPLOAD = {
    "id": "upload",
    "action": "zulip-upload",
    "input": {"filename": "report.txt", "content": "all 312 checks green\n"},
}
POST_LINK = {
    "id": "post",
    "action": "zulip-message",
    "input": {
        "type": "stream",
        "to": "general",
        "topic": "reports",
        "content": "Nightly report: {{ steps.upload.output.markdown }}",
    },
}


async def test_each_answer_with_no_requests_left_holds_the_next_step_until_the_reset(
    hub: RunningHub, zulip: ZulipDouble
) -> None:
    message_id = zulip.push_message(content="nightly run done")["id"]
    await put_flow(hub, zulip, "react-upload-post", [react(message_id), UPLOAD, POST_LINK])
    zulip.limit_requests(1, window=1.5, whole_second_reset=False)
    before = await slowdowns(hub)

    run = await trigger(hub, "react-upload-post")

    assert run["status"] == "succeeded", run
    assert [step["attempts"] for step in run["steps"]] == [1, 1, 1]
    assert [r.status for r in zulip.requests] == [200, 200, 200]  # never a 429
    arrivals = [r.at for r in zulip.requests]
    assert arrivals[1] - arrivals[0] >= 1.45
    assert arrivals[2] - arrivals[1] >= 1.45
    assert await slowdowns(hub) - before >= 2
    (upload,) = zulip.uploads
    assert upload.data == b"all 312 checks green\n"
    assert zulip.messages[-1]["content"] == f"Nightly report: [report.txt]({upload.url})"
    assert [r.emoji_name for r in zulip.reactions] == ["eyes"]


async def test_zulips_whole_second_reset_ends_in_a_429_whose_wait_is_honoured(
    hub: RunningHub, zulip: ZulipDouble
) -> None:
    message_id = zulip.push_message(content="nightly run done")["id"]
    await put_flow(hub, zulip, "react-upload", [react(message_id), UPLOAD])
    # Zulip truncates X-RateLimit-Reset to whole seconds, so the hub may come back up to a
    # second before the window frees; Zulip then answers 429 with the rest, in fractions.
    zulip.limit_requests(1, window=2.0)

    run = await trigger(hub, "react-upload")

    assert run["status"] == "succeeded", run
    first, *uploads = zulip.requests
    assert first.status == 200
    assert [r.status for r in uploads][-1] == 200
    assert all(r.status == 429 for r in uploads[:-1])
    assert uploads[0].at - first.at >= 0.95  # held until the (truncated) reset
    assert uploads[-1].at - first.at >= 1.95  # and past the window, after a 429
    assert run["steps"][1]["attempts"] == len(uploads)
    assert len(zulip.uploads) == 1
