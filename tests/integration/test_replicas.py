"""Delivery guarantees across replicas: real ``integrationhub serve`` processes sharing one run
store (SQLite file or PostgreSQL), one pulsar-lite broker and one OpenBao.

Every run is executed once, by one replica, and sends one email; a replica killed mid-step is
taken over once its lease expires, repeating the step only where the flow allows it; a broker
outage loses no trigger; a poison message does not stall the trigger topic.

Each hub costs seconds to start, so not every test runs on both stores: those whose outcome
hangs on the database's concurrency (the load, the idempotency race, the migration race) do;
the take-over, outage and poison tests run on one each.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from integrationhub.core.catalog import BUILTIN_FLOWS, load_flow_file
from integrationhub.core.store import Store
from tests.integration.conftest_pulsar import PulsarBroker
from tests.support.polling import poll
from tests.support.process import HubProcess, HubProcesses, hub_env, hub_processes
from tests.support.pulsar import pulsar_peer
from tests.support.smtp import SmtpSink

pytestmark = pytest.mark.integration

FLOW = "send-summary-email"
FROM_DOMAIN = "example.org"
FINISHED = {"succeeded", "failed", "cancelled"}

StartReplicas = Callable[..., Awaitable[HubProcesses]]


@pytest.fixture
async def start_replicas(
    tmp_path: Path,
    openbao: tuple[str, str],
    pulsar_url: str,
    database_url: str,
    smtp: SmtpSink,
) -> AsyncIterator[StartReplicas]:
    """Starts two hub processes, ``a`` and ``b``, together on one store, broker and OpenBao,
    with the SMTP credential pointing at the test's sink; keyword arguments are further
    settings (``RUN_LEASE_SECONDS="20"``). Both are stopped when the test ends."""
    addr, token = openbao
    async with hub_processes(tmp_path / "hubs") as processes:

        async def start(**settings: str) -> HubProcesses:
            env = hub_env(
                database_url=database_url,
                vault_addr=addr,
                vault_token=token,
                pulsar_url=pulsar_url,
                **settings,
            )
            a, _ = await processes.start("a", "b", env=env)
            await a.put_smtp_credential(smtp, domain=FROM_DOMAIN)
            return processes

        yield start


# Helpers ----------------------------------------------------------------------------------------


def parameters(n: int | str) -> dict[str, str]:
    return {
        "to": f"recipient-{n}@example.com",
        "subject": f"Summary {n}",
        "body": f"<p>Summary number {n}.</p>",
    }


def message_id(run_id: str, step_id: str = "send") -> str:
    """The Message-ID the smtp-email action gives a run's step: the same on every attempt."""
    return f"<{run_id}.{step_id}@{FROM_DOMAIN}>"


def emails_for(smtp: SmtpSink, run_id: str) -> list[str]:
    ids = [m.message["Message-ID"] for m in smtp.messages]
    return [mid for mid in ids if mid == message_id(run_id)]


async def trigger(
    hub: HubProcess, params: dict[str, str], *, flow_id: str = FLOW, key: str | None = None
) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key else {}
    return await hub.client.post(
        "/api/v1/trigger", json={"flow_id": flow_id, "parameters": params}, headers=headers
    )


async def all_runs(hub: HubProcess) -> list[dict[str, Any]]:
    """Every run in the store (each test has a store of its own), page by page."""
    runs: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 500}
    while True:
        response = await hub.client.get("/api/v1/runs", params=params)
        assert response.status_code == 200, response.text
        runs.extend(response.json())
        cursor = response.headers.get("X-Next-Cursor")
        if cursor is None:
            return runs
        params["cursor"] = cursor


async def wait_all_finished(hub: HubProcess, count: int, *, timeout: float) -> list[dict[str, Any]]:
    async def finished() -> list[dict[str, Any]] | None:
        runs = await all_runs(hub)
        if len(runs) == count and all(run["status"] in FINISHED for run in runs):
            return runs
        return None

    try:
        return await poll(finished, timeout=timeout, what=f"{count} runs finished", interval=0.5)
    except AssertionError:
        runs = await all_runs(hub)
        states = dict(Counter(run["status"] for run in runs))
        raise AssertionError(f"within {timeout:g}s only: {len(runs)} runs, {states}") from None


async def wait_for_run(hub: HubProcess, run_id: str, *, timeout: float) -> dict[str, Any]:
    async def finished() -> dict[str, Any] | None:
        run = (await hub.client.get(f"/api/v1/runs/{run_id}")).json()
        return run if run["status"] in FINISHED else None

    return await poll(finished, timeout=timeout, what=f"run {run_id} finished")


async def history(hub: HubProcess, run_id: str) -> list[dict[str, Any]]:
    response = await hub.client.get(f"/api/v1/runs/{run_id}/history")
    assert response.status_code == 200, response.text
    return response.json()


def worker_pids(events: list[dict[str, Any]]) -> list[int]:
    """The pid of each worker that claimed the run, in order: a ``running`` entry's detail
    reads ``delivery N, worker host:pid:nonce``."""
    return [
        int(event["detail"].rpartition("worker ")[2].split(":")[-2])
        for event in events
        if event["event"] == "running"
    ]


def attempts_started(events: list[dict[str, Any]]) -> list[str]:
    return [event["detail"] for event in events if event["event"] == "step.sending"]


async def idle(hubs: list[HubProcess]) -> None:
    """Wait until no replica executes a run, so no email of theirs is still on its way."""

    async def nothing_in_progress() -> bool:
        values = [await hub.metric("integrationhub_runs_in_progress") for hub in hubs]
        return all(value == 0 for value in values)

    await poll(nothing_in_progress, timeout=30, what="no run in progress on any replica")


def assert_one_email_per_run(smtp: SmtpSink, runs: list[dict[str, Any]]) -> None:
    ids = Counter(m.message["Message-ID"] for m in smtp.messages)
    sent_twice = {mid: n for mid, n in ids.items() if n > 1}
    assert not sent_twice, f"emails sent more than once: {sent_twice}"
    assert set(ids) == {message_id(run["run_id"]) for run in runs}
    recipients = {m.message["Message-ID"]: m.recipients for m in smtp.messages}
    for run in runs:  # and each went to its own run's recipient
        assert recipients[message_id(run["run_id"])] == [run["parameters"]["to"]]


async def taken_by(replicas: HubProcesses, hub: HubProcess, run_id: str) -> HubProcess:
    """The replica executing the run, once its step's call is under way."""

    async def sending() -> list[dict[str, Any]] | None:
        events = await history(hub, run_id)
        return events if attempts_started(events) else None

    events = await poll(sending, timeout=20, what=f"run {run_id} calling its step", interval=0.05)
    return replicas.by_pid(worker_pids(events)[-1])


async def until(moment: float) -> None:
    """Wait for a moment known in advance (an SMTP transaction's fixed delay to end)."""
    await asyncio.sleep(max(0.0, moment - time.monotonic()))


# Tests ------------------------------------------------------------------------------------------


@pytest.mark.timeout(480)
async def test_two_replicas_split_the_runs_and_each_run_sends_one_email(
    start_replicas: StartReplicas, smtp: SmtpSink
):
    # The 1,000 triggers, on both stores; on a busy 2-core machine they take minutes.
    count = 1000
    # A lease that outlasts the store's worst wait under this load: with 3 s, SQLite's write
    # lock, shared by 32 workers in two processes, kept some workers from renewing in time,
    # and their runs were taken over (see the take-over tests for that path).
    replicas = await start_replicas(RUN_LEASE_SECONDS="20")
    hubs = replicas.processes
    for hub in hubs:  # on pulsar-lite the second replica's consumers join a few seconds late
        await hub.wait_subscribed()
    limit = asyncio.Semaphore(32)
    retried: list[str] = []

    async def send(n: int) -> httpx.Response:
        # As a client behind a load balancer would: a key of its own for each trigger, and
        # a failed request sent again, with the same key, to the other replica.
        async with limit:
            for attempt in range(3):
                hub = hubs[(n + attempt) % 2]
                try:
                    response = await trigger(hub, parameters(n), key=f"load-{n}")
                except httpx.TransportError as exc:
                    retried.append(f"{n} on {hub.name}: {type(exc).__name__}")
                    continue
                if response.status_code < 500:
                    return response
                retried.append(f"{n} on {hub.name}: {response.status_code} {response.text}")
            raise AssertionError(f"trigger {n} failed three times: {retried}")

    responses = await asyncio.gather(*(send(n) for n in range(count)))

    assert Counter(r.status_code for r in responses) == {202: count}, retried
    run_ids = {r.json()["run_id"] for r in responses}
    assert len(run_ids) == count
    runs = await wait_all_finished(hubs[0], count, timeout=360)
    assert {run["run_id"] for run in runs} == run_ids
    not_succeeded = [run for run in runs if run["status"] != "succeeded"]
    assert not not_succeeded, not_succeeded[:5]
    claimed_again = [run["run_id"] for run in runs if run["deliveries"] != 1]
    assert not claimed_again, [(r, await history(hubs[0], r)) for r in claimed_again[:3]]
    await idle(hubs)
    assert len(smtp.messages) == count
    assert_one_email_per_run(smtp, runs)
    # Both replicas executed runs, and between them finished each run once.
    finished = [
        await hub.metric("integrationhub_runs_total", flow_id=FLOW, status="succeeded")
        for hub in hubs
    ]
    assert all(share > 0 for share in finished), finished
    assert sum(finished) == count


@pytest.mark.timeout(120)
async def test_one_idempotency_key_sent_to_both_replicas_at_once_makes_one_run(
    start_replicas: StartReplicas, smtp: SmtpSink
):
    hubs = (await start_replicas()).processes
    key = f"summary-{uuid.uuid4()}"
    for hub in hubs:  # connections open, so the requests below leave together
        await hub.client.get("/health")

    responses = await asyncio.gather(
        *(trigger(hubs[n % 2], parameters("once"), key=key) for n in range(20))
    )

    assert Counter(r.status_code for r in responses) == {202: 20}
    assert len({r.json()["run_id"] for r in responses}) == 1
    created = [r for r in responses if r.headers.get("Idempotent-Replayed") != "true"]
    assert len(created) == 1, "one request created the run, the other 19 were answered with it"
    run = await wait_for_run(hubs[1], responses[0].json()["run_id"], timeout=20)
    assert run["status"] == "succeeded"
    assert run["deliveries"] == 1
    assert len(await all_runs(hubs[0])) == 1
    await idle(hubs)
    assert emails_for(smtp, run["run_id"]) == [message_id(run["run_id"])]
    assert len(smtp.messages) == 1


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.timeout(120)
async def test_replica_killed_mid_step_is_taken_over_and_a_repeatable_step_is_repeated(
    start_replicas: StartReplicas, smtp: SmtpSink
):
    replicas = await start_replicas()
    a, b = replicas.processes
    flow = (await a.client.get(f"/api/v1/flows/{FLOW}")).json()
    flow.pop("source")
    flow["id"] = "summary-at-least-once"
    flow["steps"][0]["on_unknown_outcome"] = "repeat"
    response = await a.client.put("/api/v1/flows/summary-at-least-once", json=flow)
    assert response.status_code == 201, response.text
    smtp.delay = 4.0  # the SMTP server takes its time: the step is in flight when we kill

    response = await trigger(b, parameters("repeat"), flow_id="summary-at-least-once")
    run_id = response.json()["run_id"]
    victim = await taken_by(replicas, b, run_id)
    victim.kill()
    killed_call_over = time.monotonic() + smtp.delay
    smtp.delay = 0.0
    survivor = b if victim is a else a

    run = await wait_for_run(survivor, run_id, timeout=30)

    assert run["status"] == "succeeded", run
    assert run["deliveries"] == 2
    events = await history(survivor, run_id)
    assert worker_pids(events) == [victim.pid, survivor.pid]
    assert attempts_started(events) == ["attempt 1", "attempt 2"]
    await idle([survivor])
    await until(killed_call_over)
    # At least once: the killed call may or may not have reached the server. Either way
    # every copy carries the same Message-ID, so the receiving side can drop the repeat.
    assert 1 <= len(emails_for(smtp, run_id)) <= 2
    assert len(smtp.messages) == len(emails_for(smtp, run_id))


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@pytest.mark.timeout(120)
async def test_replica_killed_mid_step_fails_an_unrepeatable_step_as_unknown_until_retried(
    start_replicas: StartReplicas, smtp: SmtpSink
):
    replicas = await start_replicas()
    a, b = replicas.processes
    smtp.delay = 4.0

    response = await trigger(a, parameters("unknown"))
    run_id = response.json()["run_id"]
    victim = await taken_by(replicas, a, run_id)
    victim.kill()
    killed_call_over = time.monotonic() + smtp.delay
    survivor = b if victim is a else a

    run = await wait_for_run(survivor, run_id, timeout=30)

    assert run["status"] == "failed", run
    assert "outcome unknown" in run["error"]
    assert run["deliveries"] == 2
    events = await history(survivor, run_id)
    assert worker_pids(events) == [victim.pid, survivor.pid]
    assert attempts_started(events) == ["attempt 1"]  # the survivor did not call again
    await until(killed_call_over)
    before = len(emails_for(smtp, run_id))
    assert before <= 1
    smtp.delay = 0.0

    # A person checked the mailbox and decided: run it again.
    response = await survivor.client.post(f"/api/v1/runs/{run_id}/retry")
    assert response.status_code == 202, response.text
    run = await wait_for_run(survivor, run_id, timeout=20)

    assert run["status"] == "succeeded", run
    events = await history(survivor, run_id)
    assert "retried" in [event["event"] for event in events]
    assert attempts_started(events) == ["attempt 1", "attempt 1"]
    await idle([survivor])
    assert emails_for(smtp, run_id) == [message_id(run_id)] * (before + 1)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@pytest.mark.timeout(150)
async def test_broker_outage_loses_no_trigger_and_runs_each_once(
    start_replicas: StartReplicas, smtp: SmtpSink, pulsar_broker: PulsarBroker
):
    hubs = (await start_replicas()).processes
    count = 100
    outage: dict[str, dict[str, Any]] = {}
    quarter_sent = asyncio.Event()

    async def send_all() -> list[httpx.Response]:
        sending = []
        for n in range(count):
            sending.append(asyncio.create_task(trigger(hubs[n % 2], parameters(n))))
            if n == count // 4:
                quarter_sent.set()
            await asyncio.sleep(0.04)
        return await asyncio.gather(*sending)

    async def reports_broker_down(hub: HubProcess) -> bool:
        health = (await hub.client.get("/health")).json()
        if health["components"]["broker"]["status"] == "down":
            outage[hub.name] = health
        return hub.name in outage

    sender = asyncio.create_task(send_all())
    try:
        await asyncio.wait_for(quarter_sent.wait(), 10)
        await pulsar_broker.stop()
        for hub in hubs:
            await poll(lambda hub=hub: reports_broker_down(hub), timeout=15, what=hub.name)
    finally:
        await pulsar_broker.start()
    responses = await sender

    assert Counter(r.status_code for r in responses) == {202: count}
    for health in outage.values():
        assert health["status"] == "degraded"
        assert health["components"]["database"]["status"] == "up"
    runs = await wait_all_finished(hubs[0], count, timeout=60)
    assert Counter(run["status"] for run in runs) == {"succeeded": count}
    assert all(run["deliveries"] == 1 for run in runs), [r for r in runs if r["deliveries"] != 1]
    await idle(hubs)
    assert len(smtp.messages) == count
    assert_one_email_per_run(smtp, runs)
    for hub in hubs:
        await hub.wait_healthy(timeout=15)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.timeout(120)
async def test_poison_message_on_the_trigger_topic_is_dead_lettered_and_later_ones_run(
    start_replicas: StartReplicas, smtp: SmtpSink, pulsar_url: str
):
    replicas = await start_replicas()
    triggers = replicas.env["INTEGRATIONHUB_PULSAR_TRIGGERS_TOPIC"]
    garbage = b"\x00 this is not JSON {"
    count = 20
    with pulsar_peer(pulsar_url) as peer:
        dead = peer.subscribe(replicas.env["INTEGRATIONHUB_PULSAR_DEAD_LETTER_TOPIC"])

        peer.publish(triggers, garbage)
        for n in range(count):
            peer.publish(triggers, {"flow_id": FLOW, "parameters": parameters(n)})

        (letter,) = await peer.receive(dead, 1)
    assert letter.data == garbage
    assert "payload is not JSON" in letter.properties["error"]
    runs = await wait_all_finished(replicas.processes[0], count, timeout=30)
    assert Counter(run["status"] for run in runs) == {"succeeded": count}
    await idle(replicas.processes)
    assert_one_email_per_run(smtp, runs)


# What the replicas rely on in the store, each once found broken by the tests above ------------


async def test_replicas_starting_together_on_a_fresh_store_migrate_it_once(database_url: str):
    stores = await asyncio.gather(*(Store.open(database_url) for _ in range(4)))
    for store in stores:
        await store.check()
        await store.close()


async def test_a_worker_whose_run_was_taken_over_starts_no_step(database_url: str):
    flow = load_flow_file(BUILTIN_FLOWS / f"{FLOW}.yaml")
    store = await Store.open(database_url)
    try:
        run, _ = await store.create_run(flow=flow, parameters=parameters(1), idempotency_key=None)
        assert await store.claim(run.run_id, owner="slow", lease=0.2)
        await asyncio.sleep(0.3)  # the lease runs out while "slow" waits for the database
        assert await store.claim(run.run_id, owner="fast", lease=5)

        started = await store.start_step(run.run_id, "send", attempt=1, owner="slow", lease=5)

        assert started is False
        assert (await store.get_run(run.run_id)).steps[0].status == "pending"
        assert await store.start_step(run.run_id, "send", attempt=1, owner="fast", lease=5)
    finally:
        await store.close()
