"""A real pulsar-lite broker for integration tests, one per session.

A plain module so any conftest can take it in with
``from tests.integration.conftest_pulsar import *``. Tests may stop and start the broker to
prove recovery; it comes back on the same port, and ``pulsar_url`` starts it again for the
next test if one left it stopped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from integrationhub.embedded.pulsar import EmbeddedPulsar

__all__ = ["PulsarBroker", "pulsar_broker", "pulsar_url"]


class PulsarBroker:
    """The session's broker: ``url`` stays the same across ``stop()`` and ``start()``."""

    def __init__(self, data_dir: Path) -> None:
        self._embedded = EmbeddedPulsar(data_dir)

    @property
    def url(self) -> str:
        return self._embedded.url

    @property
    def running(self) -> bool:
        return self._embedded.running

    @property
    def log_file(self) -> Path:
        return self._embedded.log_file

    async def start(self) -> str:
        """Start it (again) and wait until it accepts connections."""
        return await self._embedded.start()

    async def stop(self) -> None:
        await self._embedded.stop()


@pytest.fixture(scope="session")
def pulsar_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PulsarBroker]:
    broker = PulsarBroker(tmp_path_factory.mktemp("pulsar"))
    # EmbeddedPulsar binds to no event loop, so a loop of its own here is fine and tests
    # may call stop()/start() from theirs.
    asyncio.run(broker.start())
    yield broker
    asyncio.run(broker.stop())


@pytest.fixture
async def pulsar_url(pulsar_broker: PulsarBroker) -> str:
    """The broker's URL, with the broker running even if an earlier test stopped it."""
    if not pulsar_broker.running:
        await pulsar_broker.start()
    return pulsar_broker.url
