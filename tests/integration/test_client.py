"""``integrationhub.client`` against a hub served by uvicorn: every method of both clients,
and the typed errors the API's answers become."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from integrationhub.client import (
    AsyncClient,
    Client,
    Conflict,
    CredentialPublic,
    Flow,
    FlowPublic,
    HubUnreachable,
    InvalidRequest,
    NotFound,
    RunAccepted,
    RunPublic,
    RunStatus,
    Unauthorized,
    WaitTimedOut,
)
from tests.support.hub import API_KEY, SEED
from tests.support.served import ServedHub

pytestmark = pytest.mark.integration


class EitherClient:
    """One test body for both clients: the blocking client's calls run in a worker thread."""

    def __init__(self, client: Client | AsyncClient) -> None:
        self.client = client

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.client, name)
        if isinstance(self.client, AsyncClient):
            return method

        async def call(*args: Any, **kwargs: Any) -> Any:
            return await asyncio.to_thread(method, *args, **kwargs)

        return call


@pytest.fixture(params=["sync", "async"])
async def client(request: pytest.FixtureRequest, served: ServedHub) -> AsyncIterator[Any]:
    if request.param == "sync":
        with Client(served.url, api_key=API_KEY) as sync:
            yield EitherClient(sync)
    else:
        async with AsyncClient(served.url, api_key=API_KEY) as async_:
            yield EitherClient(async_)


def email_flow(flow_id: str, *, steps: int = 1) -> dict[str, Any]:
    return {
        "id": flow_id,
        "description": "test flow",
        "parameters": {"type": "object", "required": ["to"]},
        "steps": [
            {
                "id": f"send{n}",
                "action": "smtp-email",
                "credential": "smtp-credentials",
                "input": {"to": "{{ parameters.to }}", "subject": f"step {n}", "body": "<p>hi</p>"},
            }
            for n in range(1, steps + 1)
        ],
    }


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def test_trigger_then_wait_for_run_delivers_the_email(client, served):
    served.smtp.messages.clear()
    seen: list[RunStatus] = []

    accepted = await client.trigger(SEED["flow_id"], SEED["parameters"])
    run = await client.wait_for_run(
        accepted.run_id, timeout=20, on_poll=lambda r: seen.append(r.status)
    )

    assert isinstance(accepted, RunAccepted)
    assert accepted.status == RunStatus.queued
    assert isinstance(run, RunPublic)
    assert run.status == RunStatus.succeeded
    assert run.steps[0].output["recipients"] == ["recipient@example.com"]
    assert seen[-1] == RunStatus.succeeded
    assert [m.message["Subject"] for m in served.smtp.messages] == [SEED["parameters"]["subject"]]
    assert await client.get_run(accepted.run_id) == run


async def test_trigger_with_wait_returns_the_finished_run_and_keys_give_one_run(client):
    key = unique("client-key")

    first = await client.trigger(SEED["flow_id"], SEED["parameters"], idempotency_key=key, wait=15)
    again = await client.trigger(SEED["flow_id"], SEED["parameters"], idempotency_key=key)

    assert isinstance(first, RunPublic)
    assert first.status == RunStatus.succeeded
    assert again.run_id == first.run_id
    with pytest.raises(Conflict) as raised:
        await client.trigger(
            SEED["flow_id"], {**SEED["parameters"], "subject": "other"}, idempotency_key=key
        )
    assert raised.value.code == "idempotency_conflict"
    assert raised.value.status == 409


async def test_list_runs_follows_the_next_links_newest_first(client):
    flow = await client.put_flow(email_flow(unique("client-pages")))
    run_ids = []
    for n in range(5):
        accepted = await client.trigger(flow.id, {"to": f"r{n}@example.com"})
        run_ids.append(accepted.run_id)

    every = await client.list_runs(flow_id=flow.id, limit=None, page_size=2)
    first_three = await client.list_runs(flow_id=flow.id, limit=3, page_size=2)

    assert [run.run_id for run in every] == run_ids[::-1]
    assert [run.run_id for run in first_three] == run_ids[::-1][:3]
    assert all(isinstance(run, RunPublic) for run in every)
    for run_id in run_ids:
        await client.wait_for_run(run_id, timeout=20)
    succeeded = await client.list_runs(flow_id=flow.id, status="succeeded", limit=10)
    assert len(succeeded) == 5


async def test_cancel_a_running_run_then_retry_it_from_the_unfinished_step(client, served):
    flow = await client.put_flow(email_flow(unique("client-cancel"), steps=2))
    served.smtp.delay = 1.0  # keeps the first step sending while we cancel
    try:
        accepted = await client.trigger(flow.id, {"to": "someone@example.com"})
        async with asyncio.timeout(10):
            while (await client.get_run(accepted.run_id)).status != RunStatus.running:
                await asyncio.sleep(0.05)
        cancelling = await client.cancel_run(accepted.run_id)
    finally:
        served.smtp.delay = 0.0
    cancelled = await client.wait_for_run(accepted.run_id, timeout=20)

    assert cancelling.status == RunStatus.running  # cancelled when the current step ends
    assert cancelled.status == RunStatus.cancelled
    assert [step.status for step in cancelled.steps] == ["succeeded", "pending"]

    retried = await client.retry_run(accepted.run_id)
    finished = await client.wait_for_run(accepted.run_id, timeout=20)

    assert retried.status == RunStatus.queued
    assert finished.status == RunStatus.succeeded
    assert [step.attempts for step in finished.steps] == [1, 1]  # the first step not repeated
    with pytest.raises(Conflict) as raised:
        await client.retry_run(accepted.run_id)
    assert raised.value.code == "run_state_conflict"
    with pytest.raises(Conflict):
        await client.cancel_run(accepted.run_id)


async def test_wait_for_run_gives_up_with_the_run_as_it_is(client, served):
    served.smtp.delay = 1.0
    try:
        accepted = await client.trigger(SEED["flow_id"], SEED["parameters"])
        with pytest.raises(WaitTimedOut) as raised:
            await client.wait_for_run(accepted.run_id, timeout=0.3)
    finally:
        served.smtp.delay = 0.0

    assert raised.value.run.run_id == accepted.run_id
    assert raised.value.run.status in {RunStatus.queued, RunStatus.running}
    assert (await client.wait_for_run(accepted.run_id, timeout=20)).status == "succeeded"


async def test_flows_put_list_get_delete(client):
    flow_id = unique("client-flow")

    created = await client.put_flow(email_flow(flow_id))
    replaced = await client.put_flow(
        Flow.model_validate({**email_flow(flow_id), "description": "v2"})
    )
    listed = await client.list_flows()
    got = await client.get_flow(flow_id)
    await client.delete_flow(flow_id)

    assert isinstance(created, FlowPublic)
    assert created.source == "api"
    assert replaced.description == "v2"
    assert flow_id in {flow.id for flow in listed}
    assert "send-summary-email" in {flow.id for flow in listed}
    assert got == replaced
    with pytest.raises(NotFound) as raised:
        await client.get_flow(flow_id)
    assert (raised.value.code, raised.value.message) == (
        "flow_not_found",
        f"flow {flow_id!r} does not exist",
    )


@pytest.mark.parametrize(
    ("call", "error", "code"),
    [
        pytest.param(
            lambda c: c.put_flow({**email_flow("client-bad"), "steps": []}),
            InvalidRequest,
            "flow_invalid",
            id="flow-without-steps",
        ),
        pytest.param(
            lambda c: c.put_flow(
                {**email_flow("client-bad"), "steps": [{"id": "x", "action": "no-such-action"}]}
            ),
            InvalidRequest,
            "flow_invalid",
            id="unknown-action",
        ),
        pytest.param(
            lambda c: c.delete_flow("send-summary-email"),
            Conflict,
            "flow_read_only",
            id="delete-builtin-flow",
        ),
        pytest.param(
            lambda c: c.trigger("send-summary-email", {"to": "not-an-address"}),
            InvalidRequest,
            "parameters_invalid",
            id="parameters-break-the-schema",
        ),
        pytest.param(
            lambda c: c.trigger("no-such-flow", {}), NotFound, "flow_not_found", id="unknown-flow"
        ),
        pytest.param(
            lambda c: c.get_run("no-such-run"), NotFound, "run_not_found", id="unknown-run"
        ),
        pytest.param(
            lambda c: c.put_credential("client-bad", type="nope", data={"a": "b"}),
            InvalidRequest,
            "credential_invalid",
            id="unknown-credential-type",
        ),
        pytest.param(
            lambda c: c.get_credential("no-such-credential"),
            NotFound,
            "credential_not_found",
            id="unknown-credential",
        ),
    ],
)
async def test_api_errors_become_typed_errors_with_code_and_message(client, call, error, code):
    with pytest.raises(error) as raised:
        await call(client)

    assert raised.value.code == code
    assert raised.value.message
    assert raised.value.status in {404, 409, 422}
    assert raised.value.message in str(raised.value)


async def test_credentials_put_list_get_delete_return_metadata_only(client):
    credential_id = unique("client-cred")
    data = {
        "host": "127.0.0.1",
        "port": 2525,
        "security": "none",
        "from_address": "hub@example.org",
        "password": "client-test-secret-value",
    }

    created = await client.put_credential(credential_id, type="smtp", data=data)
    listed = await client.list_credentials()
    got = await client.get_credential(credential_id)
    await client.delete_credential(credential_id)

    assert isinstance(created, CredentialPublic)
    assert created.type == "smtp"
    assert set(created.fields) >= {"host", "port", "password"}
    assert credential_id in {meta.id for meta in listed}
    assert got.id == credential_id
    assert "client-test-secret-value" not in repr([created, listed, got])
    with pytest.raises(NotFound):
        await client.get_credential(credential_id)


async def test_connectors_are_listed_with_credential_fields(client):
    connectors = {c["name"]: c for c in await client.list_connectors()}

    fields = {f["name"]: f for f in connectors["smtp"]["credential_fields"]}
    assert fields["password"]["secret"] is True
    assert fields["host"]["required"] is True
    assert "smtp-email" in {a["name"] for a in connectors["smtp"]["actions"]}


@pytest.mark.parametrize("key", ["wrong-key", None], ids=["wrong-key", "no-key"])
async def test_a_wrong_or_missing_key_raises_unauthorized(served, key, monkeypatch, tmp_path):
    monkeypatch.delenv("INTEGRATIONHUB_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)  # no .integrationhub/api-key to fall back on
    async with AsyncClient(served.url, api_key=key) as hub:
        with pytest.raises(Unauthorized) as raised:
            await hub.list_flows()

    assert raised.value.status == 401
    assert raised.value.code == "unauthorized"


def test_the_key_and_url_come_from_the_environment_or_the_key_file(served, monkeypatch, tmp_path):
    monkeypatch.setenv("INTEGRATIONHUB_URL", served.url)
    monkeypatch.delenv("INTEGRATIONHUB_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".integrationhub").mkdir()
    (tmp_path / ".integrationhub" / "api-key").write_text(API_KEY + "\n")

    with Client() as hub:
        assert hub.url == served.url
        assert "send-summary-email" in {flow.id for flow in hub.list_flows()}


def test_a_hub_that_is_not_there_raises_hub_unreachable():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused

        with (
            Client(f"http://127.0.0.1:{port}", api_key="k") as hub,
            pytest.raises(HubUnreachable) as raised,
        ):
            hub.list_flows()

    assert raised.value.status is None
    assert f"127.0.0.1:{port}" in raised.value.message
