"""Real servers for integration tests: OpenBao and pulsar-lite once per session, an SMTP
server and a hub (in this process, over its HTTP API) per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager
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
def start_hub(
    tmp_path: Path, openbao: tuple[str, str], pulsar_url: str, database_url: str
) -> Callable[..., AbstractAsyncContextManager[RunningHub]]:
    """``async with start_hub(run_lease_seconds=1.0) as hub``: a hub with further settings."""
    addr, token = openbao

    def start(**settings: object) -> AbstractAsyncContextManager[RunningHub]:
        return running_hub(
            hub_settings(
                tmp_path,
                vault_addr=addr,
                vault_token=token,
                pulsar_url=pulsar_url,
                database_url=database_url,
                **settings,
            )
        )

    return start


@pytest.fixture
async def hub(
    start_hub: Callable[..., AbstractAsyncContextManager[RunningHub]],
) -> AsyncIterator[RunningHub]:
    async with start_hub() as running:
        yield running
