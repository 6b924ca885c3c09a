"""Plain pulsar-client access for tests: publish as another service would, and read what the
hub published, independently of the hub's own bus code. And a TLS front for the broker, which
speaks plain text only, so ``pulsar+ssl://`` and token authentication meet a real broker."""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
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


# The Pulsar binary protocol frames each command as [total size][command size][BaseCommand]
# [payload...], sizes as 4-byte big-endian. BaseCommand's field 1 is its type; the field holding
# a command has the number of its type.
_LOOKUP_RESPONSE = 24  # BaseCommand.Type.LOOKUP_RESPONSE and the field lookupTopicResponse
_BROKER_SERVICE_URL_TLS = 2  # CommandLookupTopicResponse.brokerServiceUrlTls


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        if not value:
            out.append(byte)
            return bytes(out)
        out.append(byte | 0x80)


def _bytes_field(number: int, data: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(data)) + data


@dataclass
class TlsFront:
    """A TLS port in front of the plain-text broker, as a cluster's TLS listener would be.

    pulsar-lite answers topic lookups with its plain URL only; a client on ``pulsar+ssl://``
    needs the TLS one, so the front adds its own to each lookup answer (a second occurrence of
    a message field merges into the first). It keeps the first frame each client sends, the
    CONNECT command that carries the client's authentication.
    """

    broker: tuple[str, int]
    url: str = ""
    connects: list[bytes] = field(default_factory=list)

    async def relay(self, client: asyncio.StreamReader, to_client: asyncio.StreamWriter) -> None:
        broker, to_broker = await asyncio.open_connection(*self.broker)
        await asyncio.gather(
            self._upstream(client, to_broker),
            self._downstream(broker, to_client),
            return_exceptions=True,
        )

    async def _upstream(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        first: bytes | None = b""
        try:
            while data := await reader.read(65536):
                if first is not None:
                    first += data
                    if len(first) >= 4 and len(first) >= 4 + int.from_bytes(first[:4], "big"):
                        self.connects.append(first)
                        first = None
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()

    async def _downstream(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        own_url = _bytes_field(_LOOKUP_RESPONSE, _bytes_field(_BROKER_SERVICE_URL_TLS,
                                                              self.url.encode()))  # fmt: skip
        buffer = b""
        try:
            while data := await reader.read(65536):
                buffer += data
                out = bytearray()
                while len(buffer) >= 4 and len(buffer) >= 4 + int.from_bytes(buffer[:4], "big"):
                    total = int.from_bytes(buffer[:4], "big")
                    frame, buffer = buffer[4 : 4 + total], buffer[4 + total :]
                    size = int.from_bytes(frame[:4], "big")
                    command, payload = frame[4 : 4 + size], frame[4 + size :]
                    if command[:2] == bytes([0x08, _LOOKUP_RESPONSE]):  # field 1, varint type
                        command += own_url
                    body = len(command).to_bytes(4, "big") + command + payload
                    out += len(body).to_bytes(4, "big") + body
                writer.write(out)
                await writer.drain()
        finally:
            writer.close()


@asynccontextmanager
async def tls_front(
    broker_url: str, context: ssl.SSLContext, *, host: str = "localhost"
) -> AsyncIterator[TlsFront]:
    """A ``TlsFront`` for the broker at ``broker_url`` (``pulsar://``) on 127.0.0.1, serving
    with ``context``; its ``url`` names it as ``pulsar+ssl://{host}:{port}``."""
    address, port = broker_url.removeprefix("pulsar://").rsplit(":", 1)
    front = TlsFront((address, int(port)))
    server = await asyncio.start_server(front.relay, "127.0.0.1", 0, ssl=context)
    front.url = f"pulsar+ssl://{host}:{server.sockets[0].getsockname()[1]}"
    try:
        yield front
    finally:
        server.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(server.wait_closed(), 5)
