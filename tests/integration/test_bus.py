"""The bus against a real pulsar-lite broker: delivery, sharing, redelivery, dead letters and
recovery from broker outages. Each test uses topics of its own, so they share one broker."""

from __future__ import annotations

import asyncio
import itertools
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import trustme
from prometheus_client import REGISTRY

from integrationhub.core.bus import Bus, Handler, Message, Reject, Retry
from integrationhub.errors import BusError, ConfigurationError
from integrationhub.settings import PulsarSettings
from tests.integration.conftest_pulsar import PulsarBroker
from tests.support.pulsar import tls_front

pytestmark = pytest.mark.integration

WAIT = 15.0  # upper bound for anything the broker should do "soon"

MakeBus = Callable[..., Awaitable[Bus]]


class Inbox:
    """A handler that records what it received, with a way to wait for it."""

    def __init__(self, fail: Callable[[Message], None] | None = None) -> None:
        self.messages: list[Message] = []
        self.times: list[float] = []
        self._fail = fail
        self._changed = asyncio.Condition()

    async def __call__(self, message: Message) -> None:
        async with self._changed:
            self.messages.append(message)
            self.times.append(time.monotonic())
            self._changed.notify_all()
        if self._fail is not None:
            self._fail(message)

    @property
    def payloads(self) -> list[bytes]:
        return [message.payload for message in self.messages]

    async def wait_for(self, count: int, *, timeout: float = WAIT) -> list[Message]:
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: len(self.messages) >= count)
        return self.messages

    async def wait_for_payloads(self, payloads: set[bytes], *, timeout: float = WAIT) -> None:
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: payloads <= set(self.payloads))


def recording(seen: Inbox, received: list[bytes]) -> Handler:
    """A handler that notes which consumer got the message, then passes it to ``seen``."""

    async def handle(message: Message) -> None:
        received.append(message.payload)
        await seen(message)

    return handle


def sample(name: str, topic: str, subscription: str | None = None, outcome: str = "") -> float:
    labels = {"topic": topic}
    if subscription is not None:
        labels |= {"subscription": subscription, "outcome": outcome}
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def eventually(check: Callable[[], bool], *, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


@pytest.fixture
def settings() -> PulsarSettings:
    run = uuid.uuid4().hex[:8]
    return PulsarSettings(
        dead_letter_topic=f"test.{run}.dead-letter",
        max_redeliveries=3,
        redelivery_delay=0.2,
    )


@pytest.fixture
async def make_bus(settings: PulsarSettings, pulsar_url: str) -> AsyncIterator[MakeBus]:
    buses: list[Bus] = []

    async def make(**options: object) -> Bus:
        bus = Bus(settings, url=pulsar_url, **options)  # type: ignore[arg-type]
        buses.append(bus)
        await bus.start()
        return bus

    yield make
    await asyncio.gather(*(bus.close() for bus in buses))


@pytest.fixture
def topic() -> str:
    return f"test.{uuid.uuid4().hex[:8]}.events"


async def test_published_message_arrives_with_key_and_properties(
    make_bus: MakeBus, topic: str
) -> None:
    bus = await make_bus()
    inbox = Inbox()
    subscription = bus.subscribe(topic, "readers", inbox)
    await subscription.wait_subscribed(WAIT)

    await bus.publish(topic, b'{"run_id": "r1"}', key="r1", properties={"type": "run.queued"})

    [message] = await inbox.wait_for(1)
    assert message.payload == b'{"run_id": "r1"}'
    assert message.key == "r1"
    assert message.properties == {"type": "run.queued"}
    assert message.topic == f"persistent://public/default/{topic}"
    assert message.redelivery_count == 0
    assert bus.connected


async def test_shared_subscription_splits_messages_between_buses_and_handles_each_once(
    make_bus: MakeBus, topic: str
) -> None:
    seen = Inbox()
    by_bus: list[list[bytes]] = [[], []]
    # pulsar-lite 0.2.0 refuses a consumer whose id another client already uses on the
    # subscription; the bus then resubscribes with a fresh id, after the operation timeout.
    buses = [await make_bus(), await make_bus(operation_timeout=1.0)]
    for bus, received in zip(buses, by_bus, strict=True):
        handler = recording(seen, received)
        await bus.subscribe(topic, "workers", handler, concurrency=2).wait_subscribed(WAIT)
    sent = {f"run-{n}".encode() for n in range(40)}

    await asyncio.gather(*(buses[0].publish(topic, payload) for payload in sent))

    await seen.wait_for(len(sent))
    await asyncio.sleep(0.5)  # a duplicate, if any, would arrive now
    assert sorted(seen.payloads) == sorted(sent)
    assert by_bus[0] and by_bus[1]


async def test_unshared_subscription_delivers_to_one_consumer_in_order(
    make_bus: MakeBus, topic: str
) -> None:
    seen = Inbox()
    by_bus: list[list[bytes]] = [[], []]
    buses = [await make_bus(), await make_bus(operation_timeout=1.0)]
    for bus, received in zip(buses, by_bus, strict=True):
        handler = recording(seen, received)
        await bus.subscribe(topic, "ordered", handler, shared=False).wait_subscribed(WAIT)
    sent = [f"event-{n}".encode() for n in range(10)]

    for payload in sent:
        await buses[0].publish(topic, payload)

    await seen.wait_for(len(sent))
    assert sorted(by_bus) == [[], sent]


async def test_failing_handler_is_redelivered_with_growing_delay_then_dead_lettered(
    make_bus: MakeBus, settings: PulsarSettings, topic: str
) -> None:
    bus = await make_bus()
    dead = Inbox()
    await bus.subscribe(settings.dead_letter_topic, "audit", dead).wait_subscribed(WAIT)

    def fail(message: Message) -> None:
        raise RuntimeError("smtp down")

    attempts = Inbox(fail)
    await bus.subscribe(topic, "workers", attempts).wait_subscribed(WAIT)

    await bus.publish(topic, b"run-1", key="run-1", properties={"flow_id": "f"})

    [letter] = await dead.wait_for(1)
    counts = [message.redelivery_count for message in attempts.messages]
    assert counts == list(range(settings.max_redeliveries + 1))
    # The client redelivers on a coarse clock (up to ~0.35 s late), so only the lower bounds
    # and the overall growth are exact.
    gaps = [later - earlier for earlier, later in itertools.pairwise(attempts.times)]
    for count, gap in enumerate(gaps):
        assert gap >= 0.9 * settings.redelivery_delay * 2**count
    assert gaps[-1] > gaps[0] + settings.redelivery_delay
    assert letter.payload == b"run-1"
    assert letter.key == "run-1"
    assert letter.properties == {
        "flow_id": "f",
        "error": "RuntimeError: smtp down",
        "topic": f"persistent://public/default/{topic}",
        "subscription": "workers",
    }
    full = f"persistent://public/default/{topic}"
    consumed = "integrationhub_bus_messages_consumed_total"
    await eventually(lambda: sample(consumed, full, "workers", "dead_letter") == 1)
    assert sample(consumed, full, "workers", "nack") == settings.max_redeliveries
    assert sample("integrationhub_bus_messages_published_total", full) == 1


async def test_retry_uses_its_own_delay(make_bus: MakeBus, topic: str) -> None:
    bus = await make_bus()

    def retry_once(message: Message) -> None:
        if message.redelivery_count == 0:
            raise Retry("rate limited", delay=1.0)

    inbox = Inbox(retry_once)
    await bus.subscribe(topic, "workers", inbox).wait_subscribed(WAIT)

    await bus.publish(topic, b"run-1")

    await inbox.wait_for(2)
    assert inbox.times[1] - inbox.times[0] >= 0.9


async def test_redeliveries_are_counted_and_each_receipt_measures_the_lag(
    make_bus: MakeBus, topic: str
) -> None:
    bus = await make_bus()

    def retry_twice(message: Message) -> None:
        if message.redelivery_count < 2:
            raise Retry("not yet", delay=0.5)

    inbox = Inbox(retry_twice)
    await bus.subscribe(topic, "workers", inbox).wait_subscribed(WAIT)

    await bus.publish(topic, b"run-1")

    await inbox.wait_for(3)
    full = f"persistent://public/default/{topic}"
    labels = {"topic": full, "subscription": "workers"}
    await eventually(
        lambda: (
            REGISTRY.get_sample_value("integrationhub_bus_consumer_lag_seconds_count", labels) == 3
        )
    )
    assert REGISTRY.get_sample_value("integrationhub_bus_messages_redelivered_total", labels) == 2
    # The third receipt came at least two retry delays after the publication.
    lag = REGISTRY.get_sample_value("integrationhub_bus_consumer_lag_seconds_sum", labels)
    assert lag is not None and lag >= 0.9 * (0.5 + 1.0)


async def test_rejected_message_is_dead_lettered_at_once_and_later_messages_flow(
    make_bus: MakeBus, settings: PulsarSettings, topic: str
) -> None:
    bus = await make_bus()
    dead = Inbox()
    await bus.subscribe(settings.dead_letter_topic, "audit", dead).wait_subscribed(WAIT)

    def reject_poison(message: Message) -> None:
        if message.payload == b"poison":
            raise Reject("not JSON")

    inbox = Inbox(reject_poison)
    await bus.subscribe(topic, "workers", inbox).wait_subscribed(WAIT)

    for payload in (b"poison", b"ok-1", b"ok-2"):
        await bus.publish(topic, payload)

    await inbox.wait_for_payloads({b"ok-1", b"ok-2"})
    [letter] = await dead.wait_for(1)
    assert letter.payload == b"poison"
    assert letter.properties["error"] == "not JSON"
    assert inbox.payloads.count(b"poison") == 1


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(context)
    return context


async def test_pulsar_ssl_with_a_token_from_the_settings_reaches_the_broker(
    pulsar_url: str,
    ca: trustme.CA,
    tls: ssl.SSLContext,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    topic: str,
) -> None:
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    monkeypatch.setenv("INTEGRATIONHUB_PULSAR_TOKEN", "token-from-the-environment")
    monkeypatch.setenv("INTEGRATIONHUB_PULSAR_TLS_TRUST_CERTS", str(ca_file))
    settings = PulsarSettings()
    async with tls_front(pulsar_url, tls) as front:
        bus = Bus(settings, url=front.url, operation_timeout=2.0)
        await bus.start()
        try:
            assert bus.connected
            inbox = Inbox()
            await bus.subscribe(topic, "readers", inbox).wait_subscribed(WAIT)
            await bus.publish(topic, b"over TLS", key="k")
            [message] = await inbox.wait_for(1)
            assert (message.payload, message.key) == (b"over TLS", "k")
        finally:
            await bus.close()

        # Every connection went through the TLS front and authenticated with the token.
        assert front.connects
        for connect in front.connects:
            assert b"token" in connect
            assert b"token-from-the-environment" in connect

        # The broker's certificate is checked: its CA must be trusted, and it must name the host.
        for url, trust in [
            (front.url, None),  # certifi's CAs do not know the test's
            (front.url.replace("localhost", "127.0.0.1"), ca_file),
        ]:
            untrusting = Bus(PulsarSettings(tls_trust_certs=trust), url=url, operation_timeout=1.0)
            await untrusting.start()
            try:
                assert not untrusting.connected
                with pytest.raises(BusError):
                    await untrusting.publish(topic, b"refused")
            finally:
                await untrusting.close()
    assert inbox.payloads == [b"over TLS"]


async def test_missing_trust_certificates_are_a_configuration_error(tmp_path: Path) -> None:
    settings = PulsarSettings(tls_trust_certs=tmp_path / "missing.pem")
    with pytest.raises(ConfigurationError, match=r"missing\.pem"):
        await Bus(settings, url="pulsar+ssl://localhost:6651").start()


async def test_bus_starts_while_broker_is_down_and_works_once_it_is_back(
    pulsar_broker: PulsarBroker, make_bus: MakeBus, topic: str
) -> None:
    await pulsar_broker.stop()
    try:
        started = time.monotonic()
        bus = await make_bus(operation_timeout=1.0)
        assert time.monotonic() - started < 3.0
        assert not bus.connected
        inbox = Inbox()
        subscription = bus.subscribe(topic, "workers", inbox)

        started = time.monotonic()
        with pytest.raises(BusError):
            await bus.publish(topic, b"lost")
        assert time.monotonic() - started < 3.0
        full = f"persistent://public/default/{topic}"
        assert sample("integrationhub_bus_publish_errors_total", full) == 1
        assert REGISTRY.get_sample_value("integrationhub_bus_connected") == 0
        with pytest.raises(BusError):
            await bus.check()
    finally:
        await pulsar_broker.start()

    await bus.publish(topic, b"run-1")
    assert bus.connected
    await subscription.wait_subscribed(WAIT)
    await inbox.wait_for_payloads({b"run-1"})


async def test_consumer_resumes_after_broker_restart(
    pulsar_broker: PulsarBroker, make_bus: MakeBus, topic: str
) -> None:
    bus = await make_bus()
    inbox = Inbox()
    await bus.subscribe(topic, "workers", inbox).wait_subscribed(WAIT)
    before = {f"before-{n}".encode() for n in range(5)}
    for payload in before:
        await bus.publish(topic, payload)
    await inbox.wait_for_payloads(before)

    await pulsar_broker.stop()
    await pulsar_broker.start()

    after = {f"after-{n}".encode() for n in range(5)}
    for payload in after:
        await bus.publish(topic, payload)
    await inbox.wait_for_payloads(after)


async def test_unacked_message_of_closed_consumer_is_redelivered_to_another(
    make_bus: MakeBus, topic: str
) -> None:
    dying = await make_bus(close_timeout=0.2)
    started = asyncio.Event()

    async def hang(message: Message) -> None:
        started.set()
        await asyncio.Event().wait()

    await dying.subscribe(topic, "workers", hang).wait_subscribed(WAIT)
    await dying.publish(topic, b"run-1")
    await asyncio.wait_for(started.wait(), WAIT)
    survivor = await make_bus(operation_timeout=1.0)  # see the shared-subscription test
    inbox = Inbox()
    await survivor.subscribe(topic, "workers", inbox).wait_subscribed(WAIT)

    await dying.close()

    [message] = await inbox.wait_for(1)
    assert message.payload == b"run-1"


DYING_WORKER = """
import asyncio, os, sys
from integrationhub.core.bus import Bus
from integrationhub.settings import PulsarSettings

async def main():
    bus = Bus(PulsarSettings(), url=sys.argv[1])
    await bus.start()

    async def handle(message):
        print(message.payload.decode(), flush=True)
        os._exit(3)  # dies mid-handler: no ack, no close

    bus.subscribe(sys.argv[2], "workers", handle)
    await asyncio.sleep(30)

asyncio.run(main())
"""


async def test_unacked_message_of_a_killed_process_is_redelivered(
    make_bus: MakeBus, pulsar_url: str, topic: str
) -> None:
    bus = await make_bus()
    await bus.publish(topic, b"run-1")

    worker = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", DYING_WORKER, pulsar_url, topic],
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )
    assert worker.returncode == 3, worker.stderr[-2000:]
    assert worker.stdout.splitlines()[-1] == "run-1"  # structlog logs to stdout too

    inbox = Inbox()
    bus.subscribe(topic, "workers", inbox)
    [message] = await inbox.wait_for(1)
    assert message.payload == b"run-1"
    assert message.redelivery_count >= 1
