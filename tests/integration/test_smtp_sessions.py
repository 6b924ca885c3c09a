"""SMTP sessions kept open across sends through the framework's connection pool."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from integrationhub.connectors.base import ActionContext
from integrationhub.connectors.smtp import SmtpConnector, SmtpCredential
from integrationhub.core.connections import ConnectionPool
from integrationhub.errors import PermanentError
from tests.support.smtp import SmtpSink, start_sink

pytestmark = pytest.mark.integration

ACTION = SmtpConnector.actions["smtp-email"]
PARAMS = {"to": "recipient@example.com", "subject": "Summary", "body": "<p>Summary</p>"}


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    sink = SmtpSink()
    controller = start_sink(sink, idle_timeout=0.5)
    try:
        yield sink
    finally:
        controller.stop()


@pytest.fixture
async def pool() -> AsyncIterator[ConnectionPool]:
    pool = ConnectionPool(max_idle_per_key=4, idle_timeout=30)
    try:
        yield pool
    finally:
        await pool.close()


def credential(port: int, from_address: str = "hub@example.org") -> SmtpCredential:
    return SmtpCredential.model_validate(
        {"host": "127.0.0.1", "port": port, "security": "none", "from_address": from_address}
    )


async def send(cred: SmtpCredential, pool: ConnectionPool | None, step_id: str) -> None:
    async with httpx.AsyncClient() as http:
        context = ActionContext(
            run_id="run-1", step_id=step_id, attempt=1, http=http, connections=pool
        )
        await ACTION.invoke(credential=cred, params=PARAMS, context=context)


async def test_sends_with_one_credential_share_one_session(sink, pool):
    for step in ("a", "b", "c"):
        await send(credential(sink.port), pool, step)

    assert [m.message["Message-ID"] for m in sink.messages] == [
        "<run-1.a@example.org>",
        "<run-1.b@example.org>",
        "<run-1.c@example.org>",
    ]
    assert len({m.peer for m in sink.messages}) == 1


async def test_without_a_pool_every_send_has_its_own_session(sink):
    for step in ("a", "b"):
        await send(credential(sink.port), None, step)

    assert len({m.peer for m in sink.messages}) == 2


async def test_another_credential_never_gets_the_session(sink, pool):
    await send(credential(sink.port), pool, "a")
    await send(credential(sink.port, from_address="other@example.org"), pool, "b")

    assert [m.sender for m in sink.messages] == ["hub@example.org", "other@example.org"]
    assert len({m.peer for m in sink.messages}) == 2


async def test_a_session_the_server_closed_is_replaced_without_failing_the_send(sink, pool):
    await send(credential(sink.port), pool, "a")
    await asyncio.sleep(1.0)  # past the server's idle timeout of 0.5 s: it hangs up

    await send(credential(sink.port), pool, "b")

    assert len(sink.messages) == 2
    assert len({m.peer for m in sink.messages}) == 2


async def test_a_session_that_failed_is_not_reused(sink, pool):
    sink.refuse_next.append("554 5.7.1 Rejected as spam")
    with pytest.raises(PermanentError, match="554"):
        await send(credential(sink.port), pool, "a")

    await send(credential(sink.port), pool, "b")
    await send(credential(sink.port), pool, "c")

    assert [m.message["Message-ID"] for m in sink.messages] == [
        "<run-1.b@example.org>",
        "<run-1.c@example.org>",
    ]
    # b opened a new session after the failure, and c reused it.
    assert len({m.peer for m in sink.messages}) == 1
