"""Inbound Zulip messages become Pulsar messages: a hub on real OpenBao and pulsar-lite runs a
``zulip-messages`` source against the Zulip double, which checks every request with Zulip's spec
(tests/doubles/zulip/), and a plain Pulsar client reads what the hub published."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from integrationhub.core.store import Store
from integrationhub.core.vault_client import VaultCredentialStore
from integrationhub.errors import ConfigurationError
from integrationhub.hub import Hub
from integrationhub.settings import Settings
from tests.doubles.zulip import ZulipDouble
from tests.support.hub import RunningHub, hub_settings, running_hub
from tests.support.pulsar import PulsarPeer, Received, pulsar_peer

pytestmark = pytest.mark.integration

Configure = Callable[..., Awaitable[Settings]]


@pytest.fixture(autouse=True)
async def _no_tasks_left() -> AsyncIterator[None]:
    """Every hub stopped its sources: no poller outlives the test."""
    yield
    left = [t for t in asyncio.all_tasks() if (t.get_name() or "").startswith("source:")]
    assert not left, left


@pytest.fixture
def peer(pulsar_url: str) -> Iterator[PulsarPeer]:
    with pulsar_peer(pulsar_url) as peer:
        yield peer


@pytest.fixture
def configure(
    tmp_path: Path, openbao: tuple[str, str], pulsar_url: str, zulip: ZulipDouble
) -> Configure:
    """Settings for a hub with one ``zulip-messages`` source (its own id and topic) reading
    the double as the bot, whose credential is in OpenBao before the hub starts."""

    async def make(
        options: dict[str, Any] | None = None, *, database_url: str | None = None
    ) -> Settings:
        addr, token = openbao
        suffix = uuid.uuid4().hex[:10]
        source = {
            "id": f"zulip-{suffix}",
            "source": "zulip-messages",
            "credential": "zulip-bot",
            "topic": f"zulip-messages-{suffix}",
            "options": {"longpoll_timeout": 5} | (options or {}),
        }
        settings = hub_settings(
            tmp_path,
            vault_addr=addr,
            vault_token=token,
            pulsar_url=pulsar_url,
            database_url=database_url,
            sources=[source],
            source_lease_seconds=3.0,
            source_backoff_initial=0.05,
            source_backoff_max=0.5,
            source_restart_interval=0.5,
        )
        credentials = VaultCredentialStore(settings.vault, addr=addr, token=token)
        data = {"site": zulip.url, "email": zulip.email, "api_key": zulip.api_key}
        await credentials.write("zulip-bot", type="zulip", data=data)
        await credentials.close()
        return settings

    return make


def source_of(settings: Settings) -> tuple[str, str]:
    """The source's id and (short) topic."""
    (source,) = settings.sources
    assert source.topic is not None
    return source.id, source.topic


async def wait_for(predicate: Callable[[], object], *, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


def requests_to(zulip: ZulipDouble, path: str) -> list[Any]:
    return [r for r in zulip.requests if r.path == path]


async def registered(zulip: ZulipDouble, *, queues: int = 1) -> str:
    """Wait until the hub has registered ``queues`` queues and long-polls the last one."""
    await wait_for(lambda: len(requests_to(zulip, "/api/v1/register")) >= queues)
    await wait_for(lambda: zulip.queue_ids)
    await wait_for(
        lambda: any(r.query.get("queue_id") == zulip.queue_ids[-1]
                    for r in requests_to(zulip, "/api/v1/events"))
    )  # fmt: skip
    return zulip.queue_ids[-1]


def ids(received: list[Received]) -> list[int]:
    return [m.json()["id"] for m in received]


async def wait_for_metric(hub: RunningHub, value: float, name: str, **labels: str) -> None:
    """Counters move just after the broker's acknowledgement, which a reader may beat."""
    async with asyncio.timeout(5):
        while await metric(hub, name, **labels) != value:
            await asyncio.sleep(0.02)


async def metric(hub: RunningHub, name: str, **labels: str) -> float:
    text = (await hub.client.get("/metrics")).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and labels.items() <= sample.labels.items():
                return float(sample.value)
    return 0.0


# --- messages in, messages out ----------------------------------------------------------------


async def test_new_zulip_messages_arrive_on_the_topic_as_json_keyed_by_message_id(
    configure: Configure, zulip: ZulipDouble, peer: PulsarPeer
) -> None:
    settings = await configure({"narrow": [["channel", "general"]], "all_public_streams": True})
    source_id, topic = source_of(settings)
    consumer = peer.subscribe(topic)
    async with running_hub(settings) as hub:
        await registered(zulip)

        first = zulip.push_message(content="**v2.3** is live", topic="deploys")
        zulip.push_message(content="the bot's own words", sender_email=zulip.email)
        second = zulip.push_message(
            content="thanks!", topic="deploys", sender_email="bob@example.com"
        )

        received = await peer.receive(consumer, 2)
        await wait_for_metric(hub, 2, "integrationhub_source_events_total", source=source_id)

    assert [m.key for m in received] == [str(first["id"]), str(second["id"])]
    assert all(m.properties == {"source": source_id} for m in received)
    assert received[0].json() == {
        "id": first["id"],
        "type": "stream",
        "sender_id": 11,
        "sender_email": "alice@example.com",
        "sender_full_name": "alice",
        "stream": "general",
        "stream_id": 1,
        "topic": "deploys",
        "recipients": [],
        "content": "**v2.3** is live",
        "timestamp": first["timestamp"],
        "flags": [],
    }
    (register,) = requests_to(zulip, "/api/v1/register")
    assert register.user == zulip.email
    assert set(register.form) == {"event_types", "narrow", "all_public_streams"}
    assert register.body is not None
    assert (
        register.body
        | {
            "event_types": ["message"],
            "narrow": [["channel", "general"]],
            "all_public_streams": True,
        }
        == register.body
    )


async def test_a_restarted_hub_continues_from_the_persisted_cursor_reading_nothing_twice(
    configure: Configure, zulip: ZulipDouble, peer: PulsarPeer, database_url: str
) -> None:
    settings = await configure(database_url=database_url)
    _, topic = source_of(settings)
    consumer = peer.subscribe(topic)
    async with running_hub(settings):
        queue_id = await registered(zulip)
        before = [zulip.push_message(content="one"), zulip.push_message(content="two", stream=None)]
        assert ids(await peer.receive(consumer, 2)) == [m["id"] for m in before]

    # Sent while no hub runs: the queue on Zulip's side keeps them.
    during = [zulip.push_message(content="three"), zulip.push_message(content="four")]
    async with running_hub(settings):
        resumed = await peer.receive(consumer, 2)
        after = zulip.push_message(content="five")
        last = await peer.receive(consumer, 1)

    # In order, each once: a repeat of one or two would have come before "five".
    assert ids(resumed + last) == [m["id"] for m in [*during, after]]
    assert len(requests_to(zulip, "/api/v1/register")) == 1
    assert {r.query["queue_id"] for r in requests_to(zulip, "/api/v1/events")} == {queue_id}
    direct = (await peer.receive(peer.subscribe(topic, "another-reader"), 2))[1].json()
    assert direct["type"] == "direct"
    assert (direct["stream"], direct["topic"]) == (None, None)
    assert direct["recipients"] == [r["email"] for r in before[1]["display_recipient"]]
    assert set(direct["recipients"]) == {"alice@example.com", zulip.email}


async def test_when_zulip_drops_the_queue_the_source_registers_anew_and_reports_the_gap(
    configure: Configure, zulip: ZulipDouble, peer: PulsarPeer
) -> None:
    settings = await configure()
    source_id, topic = source_of(settings)
    consumer = peer.subscribe(topic)
    async with running_hub(settings) as hub:
        old = await registered(zulip)
        before = zulip.push_message(content="before")
        assert ids(await peer.receive(consumer, 1)) == [before["id"]]

        zulip.expire_queue()  # the next GET /events answers BAD_EVENT_QUEUE_ID
        new = await registered(zulip, queues=2)
        after = zulip.push_message(content="after")

        assert ids(await peer.receive(consumer, 1)) == [after["id"]]
        assert await metric(hub, "integrationhub_source_errors_total", source=source_id,
                            kind="gap") == 1  # fmt: skip
    assert new != old
    gone = [r for r in requests_to(zulip, "/api/v1/events") if r.status == 400]
    assert [r.query["queue_id"] for r in gone] == [old]


async def test_zulip_server_errors_and_rate_limits_back_off_then_nothing_is_lost(
    configure: Configure, zulip: ZulipDouble, peer: PulsarPeer
) -> None:
    settings = await configure()
    source_id, topic = source_of(settings)
    consumer = peer.subscribe(topic)
    async with running_hub(settings) as hub:
        await registered(zulip)
        polls = len(requests_to(zulip, "/api/v1/events"))
        zulip.fail_next(1, status=502)
        zulip.fail_next(1, status=503)
        zulip.rate_limit_next(1, retry_after=0.4)

        # Sent while every poll fails.
        await asyncio.to_thread(zulip.wait_for_request, "/api/v1/events", count=polls + 1)
        failing_since = time.monotonic()
        sent = [zulip.push_message(content="during"), zulip.push_message(content="outage")]

        assert ids(await peer.receive(consumer, 2)) == [m["id"] for m in sent]
        assert time.monotonic() - failing_since >= 0.4  # the 429's retry-after was kept
        errors = {
            kind: await metric(hub, "integrationhub_source_errors_total", source=source_id,
                               kind=kind)
            for kind in ("retryable", "rate_limited", "permanent")
        }  # fmt: skip
    assert errors == {"retryable": 2, "rate_limited": 1, "permanent": 0}
    statuses = [r.status for r in requests_to(zulip, "/api/v1/events")[polls:]]
    assert statuses[:3] == [502, 503, 429]
    # The hub's stop may cut its last long poll short: a request without an answer (None).
    assert None not in statuses[3:-1]
    assert {status for status in statuses[3:] if status is not None} == {200}


async def test_an_inbound_message_triggers_a_flow_listening_on_the_source_topic(
    configure: Configure, zulip: ZulipDouble, peer: PulsarPeer
) -> None:
    settings = await configure()
    _, topic = source_of(settings)
    out = f"zulip-echo-{uuid.uuid4().hex[:10]}"
    echoes = peer.subscribe(out)
    flow = {
        "trigger": {
            "pulsar": {
                "topic": topic,
                "parameters": {
                    "id": "{{ message.id }}",
                    "sender": "{{ message.sender_email }}",
                    "text": "{{ message.content }}",
                },
            }
        },
        "steps": [
            {
                "id": "echo",
                "action": "pulsar-publish",
                "input": {
                    "topic": out,
                    "key": "zulip-{{ parameters.id }}",
                    "payload": {"from": "{{ parameters.sender }}", "said": "{{ parameters.text }}"},
                },
            }
        ],
    }
    async with running_hub(settings) as hub:
        response = await hub.client.put("/api/v1/flows/zulip-echo", json=flow)
        assert response.status_code == 201, response.text
        await registered(zulip)

        message = zulip.push_message(content="ping", sender_email="bob@example.com")

        (echo,) = await peer.receive(echoes, 1)
    assert echo.json() == {"from": "bob@example.com", "said": "ping"}
    assert echo.key == f"zulip-{message['id']}"


# --- one poller among replicas, and the lease that makes it so ---------------------------------


async def test_of_two_replicas_one_polls_and_the_other_takes_over_when_it_stops(
    configure: Configure, zulip: ZulipDouble, peer: PulsarPeer
) -> None:
    settings = await configure()
    _, topic = source_of(settings)
    consumer = peer.subscribe(topic)
    first = await Hub.start(settings)
    try:
        queue_id = await registered(zulip)  # the first hub holds the source's lease
        async with running_hub(settings):
            one = zulip.push_message(content="one")
            assert ids(await peer.receive(consumer, 1)) == [one["id"]]

            await first.stop()  # releases the lease: the replica takes the cursor over
            two = zulip.push_message(content="two")
            assert ids(await peer.receive(consumer, 1)) == [two["id"]]
    finally:
        await first.stop()

    assert len(requests_to(zulip, "/api/v1/register")) == 1
    assert {r.query["queue_id"] for r in requests_to(zulip, "/api/v1/events")} == {queue_id}


async def test_the_cursor_lease_is_held_by_one_owner_until_released_or_expired(
    database_url: str,
) -> None:
    store = await Store.open(database_url)
    try:
        assert await store.claim_cursor("s", owner="a", lease=30)
        assert not await store.claim_cursor("s", owner="b", lease=30)
        assert await store.claim_cursor("s", owner="a", lease=30)  # renewed
        assert await store.get_cursor("s") is None

        assert await store.put_cursor("s", {"at": 1}, owner="a", lease=30)
        assert not await store.put_cursor("s", {"at": 2}, owner="b", lease=30)
        await store.release_cursor("s", owner="b")  # not b's to release
        assert not await store.claim_cursor("s", owner="b", lease=30)

        await store.release_cursor("s", owner="a")
        assert await store.claim_cursor("s", owner="b", lease=0.05)
        await asyncio.sleep(0.1)  # b's lease runs out
        assert await store.claim_cursor("s", owner="a", lease=30)
        assert await store.get_cursor("s") == {"at": 1}
    finally:
        await store.close()


# --- configuration -----------------------------------------------------------------------------


async def test_a_hub_with_an_invalid_source_does_not_start(
    tmp_path: Path, openbao: tuple[str, str], pulsar_url: str
) -> None:
    addr, token = openbao
    source = {"id": "zulip-general", "source": "zulip-messages", "options": {"narrow": "general"}}
    settings = hub_settings(
        tmp_path, vault_addr=addr, vault_token=token, pulsar_url=pulsar_url, sources=[source]
    )

    with pytest.raises(ConfigurationError) as caught:
        await Hub.start(settings)

    assert caught.value.message == (
        "invalid inbound sources: INTEGRATIONHUB_SOURCES[0] (id 'zulip-general'): "
        "invalid options for zulip-messages: narrow: Input should be a valid list"
    )
