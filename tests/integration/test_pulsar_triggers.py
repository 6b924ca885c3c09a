"""Pulsar in and out: the trigger topic, flows' own topic triggers, run events, dead letters,
and the pulsar-publish action; against a real pulsar-lite broker with the official client."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from tests.support.hub import SEED
from tests.support.pulsar import PulsarPeer, pulsar_peer

pytestmark = pytest.mark.integration


@pytest.fixture
def peer(pulsar_url: str) -> Iterator[PulsarPeer]:
    with pulsar_peer(pulsar_url) as peer:
        yield peer


async def wait_for(predicate, *, timeout: float = 15.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.05)


async def test_trigger_topic_message_runs_the_flow(hub, smtp, peer):
    await hub.put_smtp_credential(smtp.port)

    peer.publish(hub.hub.settings.pulsar.triggers_topic, SEED)

    await wait_for(lambda: len(smtp.messages) == 1)
    (run,) = (await hub.client.get("/api/v1/runs")).json()
    assert run["parameters"] == SEED["parameters"]
    await hub.wait_for_run(run["run_id"])


@pytest.mark.parametrize("outcome", ["succeeded", "failed"])
async def test_run_events_let_another_service_follow_a_run(hub, smtp, peer, outcome):
    if outcome == "succeeded":  # without the credential the step fails for good, and the run
        await hub.put_smtp_credential(smtp.port)
    events = peer.subscribe(hub.hub.settings.pulsar.run_events_topic)

    run_id = (await hub.client.post("/api/v1/trigger", json=SEED)).json()["run_id"]

    received = await peer.receive(events, 4)
    assert [m.json()["type"] for m in received] == [
        "run.queued",
        "run.running",
        "step.finished",
        f"run.{outcome}",
    ]
    assert {m.key for m in received} == {run_id}
    assert received[2].json()["step"] == {"id": "send", "status": outcome}
    assert received[3].json()["status"] == outcome
    assert all(m.json()["flow_id"] == "send-summary-email" and m.json()["at"] for m in received)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"not json at all", "payload is not JSON"),
        (b"\xff\xfe", "payload is not JSON"),
        (b"[1, 2]", "not a trigger request"),
        (b'{"flow_id": "no-such-flow", "parameters": {}}', "flow 'no-such-flow' does not exist"),
        (b'{"flow_id": "send-summary-email", "parameters": {"to": "x"}}', "parameters"),
        (b'{"flow_id": "send-summary-email", "parameters": {}, "extra": 1}', "extra"),
    ],
)
async def test_poison_trigger_is_dead_lettered_with_its_reason_and_does_not_block(
    hub, smtp, peer, payload, reason
):
    await hub.put_smtp_credential(smtp.port)
    settings = hub.hub.settings.pulsar
    dead = peer.subscribe(settings.dead_letter_topic)

    peer.publish(settings.triggers_topic, payload)
    peer.publish(settings.triggers_topic, SEED)

    (letter,) = await peer.receive(dead, 1)
    assert letter.data == payload
    assert reason in letter.properties["error"]
    await wait_for(lambda: len(smtp.messages) == 1)
    metrics = (await hub.client.get("/metrics")).text
    assert 'outcome="dead_letter"' in metrics


def alert_flow(topic: str, subscription: str) -> dict[str, object]:
    return {
        "description": "Mail each alert published on the alerts topic",
        "trigger": {
            "pulsar": {
                "topic": topic,
                "subscription": subscription,
                "parameters": {
                    "to": "{{ message.owner }}",
                    "subject": "Alert: {{ message.title }}",
                    "body": "<p>{{ message.detail }}</p>",
                },
            }
        },
        "parameters": {"type": "object", "required": ["to", "subject", "body"]},
        "steps": [
            {
                "id": "mail",
                "action": "smtp-email",
                "credential": "smtp-credentials",
                "input": {
                    "to": "{{ parameters.to }}",
                    "subject": "{{ parameters.subject }}",
                    "body": "{{ parameters.body }}",
                },
            }
        ],
    }


async def test_flow_declaring_a_topic_trigger_runs_for_each_message(hub, smtp, peer):
    await hub.put_smtp_credential(smtp.port)
    suffix = hub.hub.settings.pulsar.runs_topic.removeprefix("runs-")
    flow = alert_flow(f"alerts-{suffix}", f"alert-mailers-{suffix}")
    response = await hub.client.put("/api/v1/flows/alert-mail", json=flow)
    assert response.status_code == 201

    peer.publish(
        f"alerts-{suffix}",
        {"owner": "ops@example.com", "title": "disk full", "detail": "92% on db-1"},
    )
    peer.publish(f"alerts-{suffix}", {"title": "no owner: fails the flow's schema"})

    await wait_for(lambda: len(smtp.messages) == 1)
    message = smtp.messages[0].message
    assert message["Subject"] == "Alert: disk full"
    assert smtp.messages[0].recipients == ["ops@example.com"]
    dead = peer.subscribe(hub.hub.settings.pulsar.dead_letter_topic)
    (letter,) = await peer.receive(dead, 1)
    assert "parameters.to" in letter.properties["error"] or "owner" in letter.properties["error"]
    assert letter.properties["subscription"] == f"alert-mailers-{suffix}"  # the flow's own


async def test_pulsar_publish_step_sends_json_to_any_topic(hub, peer):
    suffix = hub.hub.settings.pulsar.runs_topic.removeprefix("runs-")
    out = peer.subscribe(f"out-{suffix}")
    flow = {
        "parameters": {"type": "object", "properties": {"n": {"type": "integer"}}},
        "steps": [
            {
                "id": "announce",
                "action": "pulsar-publish",
                "input": {
                    "topic": f"out-{suffix}",
                    "key": "k-{{ parameters.n }}",
                    "payload": {"n": "{{ parameters.n }}", "run": "{{ run.id }}"},
                    "properties": {"source": "integrationhub"},
                },
            }
        ],
    }
    await hub.client.put("/api/v1/flows/announce", json=flow)

    run = (
        await hub.client.post(
            "/api/v1/trigger?wait=10", json={"flow_id": "announce", "parameters": {"n": 7}}
        )
    ).json()

    assert run["status"] == "succeeded", run
    (message,) = await peer.receive(out, 1)
    assert message.json() == {"n": 7, "run": run["run_id"]}
    assert message.key == "k-7"
    assert message.properties == {"source": "integrationhub"}
