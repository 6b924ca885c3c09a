"""Plain pulsar-client access for tests: publish as another service would, and read what the
hub published, independently of the hub's own bus code."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pulsar


@dataclass
class Received:
    data: bytes
    key: str | None
    properties: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.data)


class PulsarPeer:
    def __init__(self, url: str) -> None:
        self.client = pulsar.Client(url, logger=pulsar.ConsoleLogger(pulsar.LoggerLevel.Error))
        self._producers: dict[str, pulsar.Producer] = {}

    def full(self, topic: str) -> str:
        return topic if "://" in topic else f"persistent://public/default/{topic}"

    def publish(self, topic: str, data: bytes | dict[str, Any], *, key: str | None = None) -> None:
        topic = self.full(topic)
        if topic not in self._producers:
            self._producers[topic] = self.client.create_producer(topic)
        payload = json.dumps(data).encode() if isinstance(data, dict) else data
        kwargs = {"partition_key": key} if key else {}
        self._producers[topic].send(payload, **kwargs)

    def subscribe(self, topic: str, name: str = "test-reader") -> pulsar.Consumer:
        return self.client.subscribe(
            self.full(topic), name, initial_position=pulsar.InitialPosition.Earliest
        )

    async def receive(
        self, consumer: pulsar.Consumer, count: int, *, timeout: float = 15.0
    ) -> list[Received]:
        """Exactly ``count`` messages, acknowledged; fails if fewer arrive in time."""

        def take() -> list[Received]:
            loop_deadline = timeout * 1000
            got: list[Received] = []
            while len(got) < count:
                message = consumer.receive(timeout_millis=int(loop_deadline))
                consumer.acknowledge(message)
                got.append(
                    Received(
                        message.data(), message.partition_key() or None, dict(message.properties())
                    )
                )
            return got

        return await asyncio.to_thread(take)

    def close(self) -> None:
        self.client.close()


@contextmanager
def pulsar_peer(url: str) -> Iterator[PulsarPeer]:
    peer = PulsarPeer(url)
    try:
        yield peer
    finally:
        peer.close()
