"""The consume loop behind ``Bus.subscribe``: what happens to a message after its handler.

A handler's outcome decides the message's fate, as in faststream:

    handler returns        -> acknowledge
    handler raises Reject  -> publish to the dead-letter topic (reason in property ``error``),
                              then acknowledge: a poison message never stalls the subscription
    handler raises Retry   -> negative acknowledgement, redelivered after
      or anything else        ``redelivery_delay * 2**redelivery_count`` (capped); once
                              ``redelivery_count >= max_redeliveries`` -> dead letter instead

The C++ client only knows one fixed negative-ack delay per consumer, so the consumer is given
the base delay and the growth is added here: the nack itself is sent ``delay - base`` later,
from a timer that holds no handler slot. The client's own clock is coarse (it rounds to 256 ms
and ticks every third of the delay, at least every 100 ms), so a redelivery may come about a
third of a second late. A message that is never acked (a process that dies, a consumer that
closes) is redelivered by the broker to the other consumers. Delivery is at least once:
handlers must tolerate a repeat.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import pulsar
import structlog
from prometheus_client import Counter, Histogram
from pulsar.asyncio import Consumer, PulsarException

from integrationhub.errors import BusError

__all__ = ["Handler", "Message", "Publisher", "RedeliveryPolicy", "Reject", "Retry", "Subscription"]

log = structlog.get_logger()

CONSUMED = Counter(
    "integrationhub_bus_messages_consumed",
    "Messages handled by a subscription, by outcome (ack, nack, dead_letter).",
    ["topic", "subscription", "outcome"],
)
REDELIVERED = Counter(
    "integrationhub_bus_messages_redelivered",
    "Messages received again: after a negative acknowledgement, or from a consumer that went away.",
    ["topic", "subscription"],
)
# The client exposes no backlog, only each message's publish time: lag is a message's age when
# a subscription receives it (redelivery delays included).
LAG = Histogram(
    "integrationhub_bus_consumer_lag_seconds",
    "Time from a message's publication to its receipt by a subscription.",
    ["topic", "subscription"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600),
)

_MAX_REASON = 2000
# The asyncio API raises its own PulsarException; calls it passes through (negative_acknowledge)
# raise the C extension's.
PULSAR_ERRORS = (PulsarException, pulsar.exceptions.PulsarException)


class Reject(Exception):
    """Raised by a handler for a message that can never succeed: dead-letter it at once."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Retry(Exception):
    """Raised by a handler when a later attempt may succeed: redeliver after a delay.

    ``delay`` overrides the growing default, e.g. with a remote side's ``Retry-After``.
    """

    def __init__(self, reason: str, *, delay: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.delay = delay


@dataclass(frozen=True, slots=True)
class Message:
    """A received message, detached from the client so handlers can be tested without it."""

    payload: bytes = field(repr=False)
    topic: str
    key: str | None
    properties: Mapping[str, str]
    redelivery_count: int
    message_id: str
    published_at: datetime


Handler = Callable[[Message], Awaitable[None]]


class Publisher(Protocol):
    """What the engine and the dead-letter path need from the bus: ``Bus`` is one."""

    async def publish(
        self,
        topic: str,
        payload: bytes,
        *,
        key: str | None = None,
        properties: dict[str, str] | None = None,
    ) -> None: ...


@dataclass(frozen=True, slots=True)
class RedeliveryPolicy:
    base_delay: float
    max_delay: float
    max_redeliveries: int
    dead_letter_topic: str

    def delay(self, redelivery_count: int) -> float:
        return min(self.base_delay * 2 ** min(redelivery_count, 32), self.max_delay)


class Subscription:
    """A running subscription; ``close()`` stops it, letting in-flight handlers finish."""

    def __init__(
        self,
        *,
        topic: str,
        name: str,
        handler: Handler,
        concurrency: int,
        connect: Callable[[], Awaitable[Consumer]],
        dead_letters: Publisher,
        policy: RedeliveryPolicy,
        close_timeout: float,
        on_closed: Callable[[Subscription], None] = lambda _: None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.topic = topic
        self.name = name
        self._handler = handler
        self._connect = connect
        self._dead_letters = dead_letters
        self._policy = policy
        self._close_timeout = close_timeout
        self._on_closed = on_closed
        self._slots = asyncio.Semaphore(concurrency)
        self._handling: set[asyncio.Task[None]] = set()
        self._timers: set[asyncio.Task[None]] = set()
        self._subscribed = asyncio.Event()
        self._log = log.bind(topic=topic, subscription=name)
        self._task = asyncio.create_task(self._run(), name=f"bus-subscription:{name}:{topic}")

    @property
    def subscribed(self) -> bool:
        return self._subscribed.is_set()

    async def wait_subscribed(self, timeout: float | None = None) -> None:
        """Wait until the broker has registered the consumer (tests, start-up ordering)."""
        try:
            await asyncio.wait_for(self._subscribed.wait(), timeout)
        except TimeoutError as exc:
            raise BusError(f"not subscribed to {self.topic} within {timeout}s") from exc

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._on_closed(self)

    async def _run(self) -> None:
        """Subscribe, consume, and subscribe again with backoff whenever the consumer fails."""
        backoff = 0.5
        while True:
            connecting = asyncio.ensure_future(self._connect())
            try:
                consumer = await asyncio.shield(connecting)
            except asyncio.CancelledError:
                # Closed while subscribing: a consumer that arrives later must still be closed,
                # or the client warns that it was destroyed unclosed.
                with contextlib.suppress(Exception):
                    orphan = await connecting
                    await asyncio.wait_for(orphan.close(), self._close_timeout)
                raise
            except BusError as exc:
                self._log.warning("bus.subscribe_failed", error=str(exc), retry_in=backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            backoff = 0.5
            self._subscribed.set()
            self._log.info("bus.subscribed")
            try:
                await self._consume(consumer)
            except Exception as exc:  # the loop outlives anything a consumer can raise
                self._log.warning("bus.consumer_failed", error=str(exc), exc_info=exc)
            finally:
                self._subscribed.clear()
                await asyncio.shield(self._shutdown(consumer))
            await asyncio.sleep(backoff)

    async def _consume(self, consumer: Consumer) -> None:
        while True:
            await self._slots.acquire()
            try:
                received = await consumer.receive()
            except BaseException:
                self._slots.release()
                raise
            task = asyncio.create_task(self._handle(consumer, received))
            self._handling.add(task)
            task.add_done_callback(self._handling.discard)

    async def _handle(self, consumer: Consumer, received: Any) -> None:
        try:
            message = _detach(received)
            if message.redelivery_count:
                REDELIVERED.labels(self.topic, self.name).inc()
            age = (datetime.now(UTC) - message.published_at).total_seconds()
            LAG.labels(self.topic, self.name).observe(max(age, 0.0))  # clocks may disagree
            outcome = "ack"
            try:
                await self._handler(message)
            except Reject as exc:
                outcome = await self._dead_letter(consumer, received, message, exc.reason)
            except asyncio.CancelledError:
                raise  # closing: the broker redelivers what was not acknowledged
            except Exception as exc:
                outcome = await self._retry(consumer, received, message, exc)
            else:
                await self._ack(consumer, received)
            CONSUMED.labels(self.topic, self.name, outcome).inc()
        finally:
            self._slots.release()

    async def _retry(
        self, consumer: Consumer, received: Any, message: Message, exc: Exception
    ) -> str:
        reason = exc.reason if isinstance(exc, Retry) else f"{type(exc).__name__}: {exc}"
        if message.redelivery_count >= self._policy.max_redeliveries:
            return await self._dead_letter(consumer, received, message, reason)
        delay = self._policy.delay(message.redelivery_count)
        if isinstance(exc, Retry) and exc.delay is not None:
            delay = max(exc.delay, self._policy.base_delay)
        self._log.warning(
            "bus.handler_failed",
            message_id=message.message_id,
            redelivery_count=message.redelivery_count,
            retry_in=delay,
            error=reason,
            exc_info=None if isinstance(exc, Retry) else exc,
        )
        self._nack_later(consumer, received, delay - self._policy.base_delay)
        return "nack"

    async def _dead_letter(
        self, consumer: Consumer, received: Any, message: Message, reason: str
    ) -> str:
        properties = {
            **message.properties,
            "error": reason[:_MAX_REASON],
            "topic": self.topic,
            "subscription": self.name,
        }
        try:
            await self._dead_letters.publish(
                self._policy.dead_letter_topic, message.payload, key=message.key,
                properties=properties,
            )  # fmt: skip
        except BusError as exc:
            self._log.warning(
                "bus.dead_letter_failed", message_id=message.message_id, error=str(exc)
            )
            wait = self._policy.delay(message.redelivery_count) - self._policy.base_delay
            self._nack_later(consumer, received, wait)
            return "nack"
        self._log.warning(
            "bus.dead_lettered",
            message_id=message.message_id,
            redelivery_count=message.redelivery_count,
            error=reason,
        )
        await self._ack(consumer, received)
        return "dead_letter"

    async def _ack(self, consumer: Consumer, received: Any) -> None:
        try:
            await consumer.acknowledge(received)
        except PULSAR_ERRORS as exc:
            # The broker redelivers it: handlers must tolerate a repeat (at-least-once).
            self._log.warning("bus.ack_failed", error=str(exc))

    def _nack_later(self, consumer: Consumer, received: Any, wait: float) -> None:
        async def nack() -> None:
            await asyncio.sleep(max(wait, 0.0))
            with contextlib.suppress(*PULSAR_ERRORS):
                await consumer.negative_acknowledge(received)

        timer = asyncio.create_task(nack())
        self._timers.add(timer)
        timer.add_done_callback(self._timers.discard)

    async def _shutdown(self, consumer: Consumer) -> None:
        """Let in-flight handlers finish (bounded), then close the consumer.

        Pending delayed nacks are dropped: closing the consumer hands those messages back to
        the broker, which redelivers them at once.
        """
        if self._handling:
            _, late = await asyncio.wait(set(self._handling), timeout=self._close_timeout)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        for timer in set(self._timers):
            timer.cancel()
        await asyncio.gather(*self._timers, return_exceptions=True)
        try:
            await asyncio.wait_for(consumer.close(), self._close_timeout)
        except (*PULSAR_ERRORS, TimeoutError) as exc:
            self._log.warning("bus.consumer_close_failed", error=str(exc))
        self._log.info("bus.unsubscribed")


def _detach(received: Any) -> Message:
    return Message(
        payload=received.data(),
        topic=received.topic_name(),
        key=received.partition_key() or None,
        properties=dict(received.properties()),
        redelivery_count=received.redelivery_count(),
        message_id=str(received.message_id()),
        published_at=datetime.fromtimestamp(received.publish_timestamp() / 1000, tz=UTC),
    )
