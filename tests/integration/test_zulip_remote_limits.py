"""Zulip's rate-limit headers through a whole hub (real OpenBao and pulsar-lite, the hub in this
process): a flow reacts to a message, uploads a file and posts a link to it, against the Zulip
double playing Zulip's limiter (tests/doubles/zulip/limits.py). An answer that leaves no
requests holds the next step until Zulip's reset, and nothing fails."""

from __future__ import annotations

from typing import Any

import pytest

from tests.doubles.zulip import ZulipDouble
from tests.support.databases import sqlite_only
from tests.support.hub import RunningHub

# A hub on SQLite with its rate limits in this process: the limits are the subject.
pytestmark = [pytest.mark.integration, sqlite_only]

FAST_RETRY = {"initial_delay": 0.01, "max_delay": 0.01}


async def put_flow(hub: RunningHub, zulip: ZulipDouble, flow_id: str, steps: list[dict]) -> None:
    data = {"site": zulip.url, "email": zulip.email, "api_key": zulip.api_key}
    await hub.put_credential("zulip-bot", "zulip", data)
    for step in steps:
        step |= {"credential": "zulip-bot", "retry": FAST_RETRY}
    await hub.put_flow({"id": flow_id, "steps": steps})


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
    before = await hub.remote_slowdowns("zulip")

    run = await hub.run_flow("react-upload-post")

    assert run["status"] == "succeeded", run
    assert [step["attempts"] for step in run["steps"]] == [1, 1, 1]
    assert [r.status for r in zulip.requests] == [200, 200, 200]  # never a 429
    arrivals = [r.at for r in zulip.requests]
    assert arrivals[1] - arrivals[0] >= 1.45
    assert arrivals[2] - arrivals[1] >= 1.45
    assert await hub.remote_slowdowns("zulip") - before >= 2
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

    run = await hub.run_flow("react-upload")

    assert run["status"] == "succeeded", run
    first, *uploads = zulip.requests
    assert first.status == 200
    assert [r.status for r in uploads][-1] == 200
    assert all(r.status == 429 for r in uploads[:-1])
    assert uploads[0].at - first.at >= 0.95  # held until the (truncated) reset
    assert uploads[-1].at - first.at >= 1.95  # and past the window, after a 429
    assert run["steps"][1]["attempts"] == len(uploads)
    assert len(zulip.uploads) == 1
