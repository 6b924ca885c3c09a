"""Real servers for integration tests: OpenBao and pulsar-lite once per session, an SMTP
server and a hub (in this process, over its HTTP API) per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.integration.conftest_openbao import *  # noqa: F403
from tests.integration.conftest_pulsar import *  # noqa: F403
from tests.support.databases import fresh_database
from tests.support.hub import RunningHub, hub_settings, running_hub
from tests.support.served import served  # noqa: F401  (a fixture)
from tests.support.smtp import SmtpSink, start_sink


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    sink = SmtpSink()
    controller = start_sink(sink)
    yield sink
    controller.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """Each hub test runs on both stores the hub supports."""
    async with fresh_database(request.param, tmp_path) as url:
        yield url


@pytest.fixture
async def hub(
    tmp_path: Path, openbao: tuple[str, str], pulsar_url: str, database_url: str
) -> AsyncIterator[RunningHub]:
    addr, token = openbao
    settings = hub_settings(
        tmp_path,
        vault_addr=addr,
        vault_token=token,
        pulsar_url=pulsar_url,
        database_url=database_url,
    )
    async with running_hub(settings) as running:
        yield running
