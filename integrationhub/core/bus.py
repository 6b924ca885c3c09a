"""Pulsar producers and consumers: the one event backbone, embedded or clustered.

The same code talks to the pulsar-lite broker the hub starts itself and to an Apache Pulsar
cluster; only the URL (``pulsar://`` or ``pulsar+ssl://``), the optional token and, with TLS,
the CAs to trust differ.

The hub must run while the broker is away, so nothing here waits for it unboundedly:
``start()`` only logs when the broker is down, ``publish`` raises ``BusError`` within about
``operation_timeout`` seconds, and subscriptions keep retrying in the background. The C++
client reconnects producers and consumers by itself once the broker is back; a producer that
failed is dropped and created anew on the next publish all the same.

Outcomes of handlers (ack, ``Reject``, ``Retry``) are described in ``bus_subscription``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from typing import Literal

import pulsar
import structlog
from prometheus_client import Counter, Gauge
from pulsar.asyncio import Client, Consumer, Producer, PulsarException
from typing_extensions import override

from integrationhub.core.bus_subscription import (
    PULSAR_ERRORS,
    Handler,
    Message,
    Publisher,
    RedeliveryPolicy,
    Reject,
    Retry,
    Subscription,
)
from integrationhub.errors import BusError, ConfigurationError
from integrationhub.settings import PulsarSettings

__all__ = ["Bus", "Handler", "Message", "Publisher", "Reject", "Retry", "Subscription"]

log = structlog.get_logger()

PUBLISHED = Counter(
    "integrationhub_bus_messages_published", "Messages the broker accepted.", ["topic"]
)
PUBLISH_ERRORS = Counter(
    "integrationhub_bus_publish_errors", "Publishes that raised BusError.", ["topic"]
)
# With worker processes, the lowest of them: 0 as soon as one cannot reach the broker.
CONNECTED = Gauge(
    "integrationhub_bus_connected",
    "1 while the broker answers, else 0.",
    multiprocess_mode="livemin",
)

_UNREACHABLE = {pulsar.Result.Timeout, pulsar.Result.ConnectError, pulsar.Result.NotConnected}


class Bus:
    """Publishes to and subscribes on Pulsar topics; short topic names get the configured
    tenant and namespace (``settings.topic``)."""

    def __init__(
        self,
        settings: PulsarSettings,
        *,
        url: str,
        operation_timeout: float = 5.0,
        max_redelivery_delay: float = 300.0,
        health_interval: float = 5.0,
        close_timeout: float = 10.0,
    ) -> None:
        self._settings = settings
        self._url = url
        self._timeout = operation_timeout
        self._health_interval = health_interval
        self._close_timeout = close_timeout
        self._policy = RedeliveryPolicy(
            base_delay=settings.redelivery_delay,
            max_delay=max(max_redelivery_delay, settings.redelivery_delay),
            max_redeliveries=settings.max_redeliveries,
            dead_letter_topic=settings.topic(settings.dead_letter_topic),
        )
        self._client: Client | None = None
        self._producers: dict[str, asyncio.Task[Producer]] = {}
        self._subscriptions: set[Subscription] = set()
        self._monitor: asyncio.Task[None] | None = None
        self._connected = False

    @property
    def connected(self) -> bool:
        """Whether the broker answered the last probe or publish."""
        return self._connected

    async def start(self) -> None:
        """Create the client and probe the broker once; a broker that is down is only logged."""
        if self._client is not None:
            return
        token, trust = self._settings.token, self._settings.tls_trust_certs
        if trust is not None and not trust.is_file():
            raise ConfigurationError(f"Pulsar TLS trust certificates not found: {trust}")
        try:
            self._client = Client(
                self._url,
                authentication=pulsar.AuthenticationToken(token.get_secret_value())
                if token
                else None,
                # Used with pulsar+ssl:// only; without a file of its own the client trusts
                # certifi's CAs.
                tls_trust_certs_file_path=str(trust) if trust is not None else None,
                tls_validate_hostname=self._settings.tls_validate_hostname,
                operation_timeout_seconds=max(1, math.ceil(self._timeout)),
                connection_timeout_ms=max(100, int(self._timeout * 1000)),
                logger=_client_logger(),
            )
        except (*PULSAR_ERRORS, ValueError) as exc:
            raise ConfigurationError(f"invalid Pulsar URL or settings: {exc}") from exc
        try:
            await self.check()
        except BusError as exc:
            log.warning("bus.unavailable", url=self._url, error=exc.message)
        self._monitor = asyncio.create_task(self._watch(), name="bus-health")

    async def check(self, *, timeout: float | None = None) -> None:
        """Ask the broker for a topic's metadata; raise BusError unless it answers in time."""
        client = self._require_client()
        topic = self._policy.dead_letter_topic
        try:
            await asyncio.wait_for(client.get_topic_partitions(topic), timeout or self._timeout)
        except (*PULSAR_ERRORS, TimeoutError) as exc:
            self._set_connected(False, error=str(exc) or type(exc).__name__)
            raise BusError(f"Pulsar broker at {self._url} is unavailable: {exc}") from exc
        self._set_connected(True)

    async def publish(
        self,
        topic: str,
        payload: bytes,
        *,
        key: str | None = None,
        properties: dict[str, str] | None = None,
    ) -> None:
        """Publish one message and wait until the broker has persisted it."""
        name = self._settings.topic(topic)
        try:
            producer = await self._producer(name)
            send = producer.send(payload, properties=properties, partition_key=key)
            # The producer's send timeout bounds this already; the guard only backs it up.
            await asyncio.wait_for(send, self._timeout + 1)
        except (*PULSAR_ERRORS, TimeoutError) as exc:
            PUBLISH_ERRORS.labels(name).inc()
            if isinstance(exc, TimeoutError) or _result(exc) in _UNREACHABLE:
                self._set_connected(False, error=str(exc) or type(exc).__name__)
            await self._drop_producer(name)
            raise BusError(f"publishing to {name} failed: {exc}") from exc
        PUBLISHED.labels(name).inc()
        self._set_connected(True)

    def subscribe(
        self,
        topic: str,
        subscription: str,
        handler: Handler,
        *,
        concurrency: int = 1,
        shared: bool = True,
        start_at: Literal["earliest", "latest"] = "earliest",
    ) -> Subscription:
        """Run ``handler`` for each message in a background task, ``concurrency`` at a time.

        ``shared`` lets several hub processes split the work; otherwise one consumer is active
        and the others stand by (failover), which keeps order. A new subscription starts at
        the oldest retained message unless ``start_at="latest"``.
        """
        client = self._require_client()
        name = self._settings.topic(topic)

        async def connect() -> Consumer:
            try:
                return await client.subscribe(
                    name,
                    subscription,
                    consumer_type=pulsar.ConsumerType.Shared
                    if shared
                    else pulsar.ConsumerType.Failover,
                    receiver_queue_size=concurrency,
                    negative_ack_redelivery_delay_ms=int(self._policy.base_delay * 1000),
                    initial_position=pulsar.InitialPosition.Earliest
                    if start_at == "earliest"
                    else pulsar.InitialPosition.Latest,
                )
            except PULSAR_ERRORS as exc:
                raise BusError(f"subscribing to {name} as {subscription} failed: {exc}") from exc

        handle = Subscription(
            topic=name,
            name=subscription,
            handler=handler,
            concurrency=concurrency,
            connect=connect,
            dead_letters=self,
            policy=self._policy,
            close_timeout=self._close_timeout,
            on_closed=self._subscriptions.discard,
        )
        self._subscriptions.add(handle)
        return handle

    async def close(self) -> None:
        """Stop subscriptions (letting handlers finish), then producers, then the client."""
        if self._monitor is not None:
            self._monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._monitor
        await asyncio.gather(*(sub.close() for sub in list(self._subscriptions)))
        await asyncio.gather(*(self._drop_producer(topic) for topic in list(self._producers)))
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(*PULSAR_ERRORS, TimeoutError):
                await asyncio.wait_for(client.close(), self._close_timeout)
        self._set_connected(False)

    async def _producer(self, topic: str) -> Producer:
        """The cached producer for ``topic``; concurrent first publishes share one creation.

        Creation runs in a task of its own and is shielded: a producer that arrived after its
        caller gave up would otherwise never be closed. The client's operation timeout
        bounds it.
        """
        creating = self._producers.get(topic)
        if creating is None:
            creating = asyncio.create_task(
                self._require_client().create_producer(
                    topic,
                    send_timeout_millis=max(1, int(self._timeout * 1000)),
                    # One message per entry, so a nack redelivers only that message.
                    batching_enabled=False,
                )
            )
            self._producers[topic] = creating
        try:
            return await asyncio.shield(creating)
        except PULSAR_ERRORS:
            if self._producers.get(topic) is creating:
                del self._producers[topic]
            raise

    async def _drop_producer(self, topic: str) -> None:
        creating = self._producers.pop(topic, None)
        if creating is None:
            return
        with contextlib.suppress(*PULSAR_ERRORS, TimeoutError):
            producer = await asyncio.wait_for(asyncio.shield(creating), self._close_timeout)
            await asyncio.wait_for(producer.close(), self._close_timeout)

    async def _watch(self) -> None:
        """Probe the broker now and then, so ``connected`` and its gauge stay true when idle."""
        while True:
            await asyncio.sleep(self._health_interval)
            with contextlib.suppress(BusError):
                await self.check()

    def _set_connected(self, connected: bool, *, error: str | None = None) -> None:
        if connected != self._connected:
            if connected:
                log.info("bus.connected", url=self._url)
            elif self._client is not None:
                log.warning("bus.disconnected", url=self._url, error=error)
        self._connected = connected
        CONNECTED.set(1 if connected else 0)

    def _require_client(self) -> Client:
        if self._client is None:
            raise BusError("the bus is not started")
        return self._client


def _result(exc: BaseException) -> pulsar.Result | None:
    return exc.error() if isinstance(exc, PulsarException) else None


def _client_logger() -> logging.Logger:
    """The C++ client logs through this stdlib logger, so structlog's JSON wraps its lines.

    Below WARNING it narrates every (re)connection, so WARNING applies unless logging was
    configured for the ``pulsar`` logger.
    """
    logger = logging.getLogger("pulsar")
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.WARNING)
    if not any(isinstance(existing, _Throttle) for existing in logger.filters):
        logger.addFilter(_Throttle())
    return logger


class _Throttle(logging.Filter):
    """Pass each distinct line at most once a minute: while the broker is down the client
    retries every few hundred milliseconds and logs an ERROR each time. ``bus.disconnected``
    says it once; these lines only add the detail."""

    def __init__(self, interval: float = 60.0) -> None:
        super().__init__()
        self._interval = interval
        self._last: dict[str, float] = {}

    @override
    def filter(self, record: logging.LogRecord) -> bool:
        line, now = record.getMessage(), time.monotonic()
        if now - self._last.get(line, -self._interval) < self._interval:
            return False
        if len(self._last) > 1000:
            self._last.clear()
        self._last[line] = now
        return True
