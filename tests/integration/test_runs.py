"""People acting on runs, and retries that respect the remote side."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from prometheus_client import REGISTRY

from integrationhub.core.retention import delete_expired_runs
from integrationhub.core.schema import runs
from tests.support.hub import SEED, hub_settings, running_hub

pytestmark = pytest.mark.integration

TWO_STEPS = {
    "parameters": {"type": "object"},
    "steps": [
        {
            "id": "first",
            "action": "smtp-email",
            "credential": "first-smtp",
            "input": {"to": "one@example.com", "subject": "first", "body": "<p>1</p>"},
        },
        {
            "id": "second",
            "action": "smtp-email",
            "credential": "second-smtp",
            "input": {"to": "two@example.com", "subject": "second", "body": "<p>2</p>"},
        },
    ],
}


def history_events(history: list[dict]) -> list[str]:
    return [entry["event"] for entry in history]


async def test_retry_reruns_from_the_failed_step_without_repeating_earlier_ones(hub, smtp):
    await hub.put_smtp_credential(smtp.port, credential_id="first-smtp")
    await hub.client.put("/api/v1/flows/two-steps", json=TWO_STEPS)
    failed = (
        await hub.client.post("/api/v1/trigger?wait=10", json={"flow_id": "two-steps"})
    ).json()
    assert failed["status"] == "failed"
    assert [s["status"] for s in failed["steps"]] == ["succeeded", "failed"]
    assert "second-smtp" in failed["error"]

    await hub.put_smtp_credential(smtp.port, credential_id="second-smtp")
    retried = await hub.client.post(f"/api/v1/runs/{failed['run_id']}/retry")
    assert retried.status_code == 202
    run = await hub.wait_for_run(failed["run_id"])

    assert run["status"] == "succeeded"
    assert run["steps"][0] == failed["steps"][0]  # untouched: not run again
    assert run["steps"][1]["status"] == "succeeded"
    assert [m.message["Subject"] for m in smtp.messages] == ["first", "second"]
    history = (await hub.client.get(f"/api/v1/runs/{run['run_id']}/history")).json()
    assert history_events(history) == [
        "queued",
        "running",
        "step.sending",
        "step.succeeded",
        "step.failed",
        "failed",
        "retried",
        "running",
        "step.sending",
        "step.succeeded",
        "succeeded",
    ]
    assert all(entry["at"] for entry in history)
    causes = {entry["event"]: entry["detail"] for entry in history}
    assert causes["queued"] == "triggered via http"
    assert "second-smtp" in causes["step.failed"] and causes["failed"] == failed["error"]
    assert causes["retried"] == "through the API"
    again = await hub.client.post(f"/api/v1/runs/{run['run_id']}/retry")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "run_state_conflict"


async def test_cancel_stops_a_running_run_between_steps(hub, smtp):
    await hub.put_smtp_credential(smtp.port, credential_id="first-smtp")
    await hub.put_smtp_credential(smtp.port, credential_id="second-smtp")
    await hub.client.put("/api/v1/flows/two-steps", json=TWO_STEPS)
    smtp.delay = 1.0
    run_id = (await hub.client.post("/api/v1/trigger", json={"flow_id": "two-steps"})).json()[
        "run_id"
    ]
    async with asyncio.timeout(10):
        while (await hub.client.get(f"/api/v1/runs/{run_id}")).json()["status"] != "running":
            await asyncio.sleep(0.02)

    response = await hub.client.post(f"/api/v1/runs/{run_id}/cancel")

    assert response.status_code == 202
    run = await hub.wait_for_run(run_id)
    assert run["status"] == "cancelled"
    assert [s["status"] for s in run["steps"]] == ["succeeded", "pending"]
    assert [m.message["Subject"] for m in smtp.messages] == ["first"]
    history = history_events((await hub.client.get(f"/api/v1/runs/{run_id}/history")).json())
    assert "cancel_requested" in history and history[-1] == "cancelled"
    assert (await hub.client.post(f"/api/v1/runs/{run_id}/cancel")).status_code == 409


async def test_cancel_of_a_queued_run_is_immediate_and_it_never_runs(
    tmp_path: Path, openbao, pulsar_url, smtp
):
    addr, token = openbao
    settings = hub_settings(
        tmp_path, vault_addr=addr, vault_token=token, pulsar_url=pulsar_url, worker_concurrency=1
    )
    async with running_hub(settings) as hub:
        await hub.put_smtp_credential(smtp.port)
        smtp.delay = 1.5
        first = (await hub.client.post("/api/v1/trigger", json=SEED)).json()["run_id"]
        second = (await hub.client.post("/api/v1/trigger", json=SEED)).json()["run_id"]

        cancelled = (await hub.client.post(f"/api/v1/runs/{second}/cancel")).json()

        assert cancelled["status"] == "cancelled"
        assert (await hub.wait_for_run(first))["status"] == "succeeded"
        await asyncio.sleep(0.5)  # time for a wrongly queued run to be taken up
        assert (await hub.client.get(f"/api/v1/runs/{second}")).json()["status"] == "cancelled"
        assert len(smtp.messages) == 1
        retried = await hub.client.post(f"/api/v1/runs/{second}/retry")
        assert retried.status_code == 202
        assert (await hub.wait_for_run(second))["status"] == "succeeded"


async def test_runs_page_through_with_a_cursor_and_filter_by_flow_and_time(hub):
    ids = [(await hub.client.post("/api/v1/trigger", json=SEED)).json()["run_id"] for _ in range(5)]
    await hub.put_flow(
        {"id": "other", "steps": [{"id": "noop", "action": "transform", "input": {"value": 1}}]}
    )
    other = (await hub.trigger("other"))["run_id"]
    seen: list[str] = []
    url = f"/api/v1/runs?limit=2&flow_id={SEED['flow_id']}"
    while url:
        response = await hub.client.get(url)
        seen += [run["run_id"] for run in response.json()]
        url = response.links.get("next", {}).get("url")
    assert seen == ids[::-1]
    listed = (await hub.client.get("/api/v1/runs", params={"flow_id": "other"})).json()
    assert [run["run_id"] for run in listed] == [other]

    first = (await hub.client.get(f"/api/v1/runs/{ids[0]}")).json()
    later = (
        await hub.client.get("/api/v1/runs", params={"created_after": first["created_at"]})
    ).json()
    assert {r["run_id"] for r in later} == {*ids, other}
    earlier = (
        await hub.client.get("/api/v1/runs", params={"created_before": first["created_at"]})
    ).json()
    assert earlier == []
    bad = await hub.client.get("/api/v1/runs?cursor=not-a-cursor")
    assert bad.status_code == 400
    naive = await hub.client.get("/api/v1/runs?created_after=2026-01-01T00:00:00")
    assert naive.status_code == 422


async def test_retention_deletes_only_runs_finished_before_the_age(hub):
    ids = [
        (await hub.client.post("/api/v1/trigger?wait=10", json=SEED)).json()["run_id"]
        for _ in range(3)
    ]
    old = datetime.now(UTC) - timedelta(days=40)
    async with hub.hub.store.engine.begin() as conn:
        await conn.execute(runs.update().where(runs.c.id.in_(ids[:2])).values(finished_at=old))

    counted_before = REGISTRY.get_sample_value("integrationhub_runs_deleted_total") or 0
    deleted = await delete_expired_runs(hub.hub.store, max_age_days=30)

    assert deleted == 2
    for run_id in ids[:2]:
        assert (await hub.client.get(f"/api/v1/runs/{run_id}")).status_code == 404
    assert (await hub.client.get(f"/api/v1/runs/{ids[2]}")).status_code == 200
    async with hub.hub.store.engine.connect() as conn:
        orphans = await conn.scalar(
            sa.text("SELECT count(*) FROM run_history WHERE run_id NOT IN (SELECT id FROM runs)")
        )
    assert orphans == 0
    assert REGISTRY.get_sample_value("integrationhub_runs_deleted_total") == counted_before + 2
    assert "integrationhub_runs_deleted_total" in (await hub.client.get("/metrics")).text


async def test_retention_runs_by_itself_every_interval(start_hub, smtp):
    settings = {"run_retention_days": 1 / 86400, "retention_interval": 0.2}  # a second
    async with start_hub(**settings) as hub:
        await hub.put_smtp_credential(smtp.port)
        counted_before = REGISTRY.get_sample_value("integrationhub_runs_deleted_total") or 0
        run = (await hub.client.post("/api/v1/trigger?wait=10", json=SEED)).json()
        assert run["status"] == "succeeded", run

        async with asyncio.timeout(10):
            while (await hub.client.get(f"/api/v1/runs/{run['run_id']}")).status_code != 404:
                await asyncio.sleep(0.1)

        assert REGISTRY.get_sample_value("integrationhub_runs_deleted_total") >= counted_before + 1
        assert (
            REGISTRY.get_sample_value(
                "integrationhub_runs_total", {"flow_id": SEED["flow_id"], "status": "succeeded"}
            )
            or 0
        ) >= 1  # the deleted run still counts


async def test_a_step_longer_than_the_lease_keeps_its_run_through_renewals(start_hub, smtp):
    async with start_hub(run_lease_seconds=1.0) as hub:
        await hub.put_smtp_credential(smtp.port)
        smtp.delay = 3.0  # three leases: the sweeper would hand the run out again unrenewed

        run = await hub.run_flow(SEED["flow_id"], SEED["parameters"])

    assert run["status"] == "succeeded", run
    assert run["deliveries"] == 1
    assert len(smtp.messages) == 1


async def test_step_left_sending_by_a_dead_worker_fails_as_outcome_unknown(hub, smtp):
    await hub.put_smtp_credential(smtp.port)
    store = hub.hub.store
    flow = await hub.hub.catalog.get("send-summary-email")
    run, _ = await store.create_run(flow=flow, parameters=SEED["parameters"], idempotency_key=None)
    # What a worker leaves when it dies during the call: claimed, step sending, no outcome.
    assert await store.claim(run.run_id, owner="dead-worker", lease=0.2)
    await store.start_step(run.run_id, "send", attempt=1, owner="dead-worker", lease=0.2)

    finished = await hub.wait_for_run(run.run_id)

    assert finished["status"] == "failed"
    assert "outcome unknown" in finished["error"]
    assert smtp.messages == []
    assert finished["deliveries"] == 2


async def test_flow_may_declare_a_step_repeatable_after_an_unknown_outcome(hub, smtp):
    await hub.put_smtp_credential(smtp.port)
    flow = (await hub.hub.catalog.get("send-summary-email")).model_dump(exclude={"source"})
    flow["id"] = "summary-at-least-once"
    flow["steps"][0]["on_unknown_outcome"] = "repeat"
    await hub.client.put("/api/v1/flows/summary-at-least-once", json=flow)
    store = hub.hub.store
    run, _ = await store.create_run(
        flow=await hub.hub.catalog.get("summary-at-least-once"),
        parameters=SEED["parameters"],
        idempotency_key=None,
    )
    assert await store.claim(run.run_id, owner="dead-worker", lease=0.2)
    await store.start_step(run.run_id, "send", attempt=1, owner="dead-worker", lease=0.2)

    finished = await hub.wait_for_run(run.run_id)

    assert finished["status"] == "succeeded"
    assert finished["steps"][0]["attempts"] == 2
    assert len(smtp.messages) == 1


async def test_step_of_an_action_safe_to_repeat_left_sending_by_a_dead_worker_is_repeated(hub):
    await hub.put_flow(
        {
            "id": "shape",
            "parameters": {"type": "object"},
            "steps": [
                {"id": "shape", "action": "transform", "input": {"value": "{{ parameters.name }}"}}
            ],
        }
    )
    assert hub.hub.registry.action("transform").safe_to_repeat
    store = hub.hub.store
    run, _ = await store.create_run(
        flow=await hub.hub.catalog.get("shape"), parameters={"name": "x"}, idempotency_key=None
    )
    assert await store.claim(run.run_id, owner="dead-worker", lease=0.2)
    await store.start_step(run.run_id, "shape", attempt=1, owner="dead-worker", lease=0.2)

    finished = await hub.wait_for_run(run.run_id)

    assert finished["status"] == "succeeded", finished
    assert finished["steps"][0]["attempts"] == 2
    assert finished["steps"][0]["output"] == {"value": "x"}
    assert finished["deliveries"] == 2


async def test_per_attempt_timeout_and_max_attempts_come_from_the_flow(hub, smtp):
    await hub.put_smtp_credential(smtp.port)
    await hub.put_flow(
        {
            "id": "slow-smtp",
            "parameters": {"type": "object"},
            "steps": [
                {
                    **TWO_STEPS["steps"][0],
                    "credential": "smtp-credentials",
                    "timeout": 0.5,
                    "retry": {"max_attempts": 2, "initial_delay": 0.01, "max_delay": 0.01},
                    "on_unknown_outcome": "repeat",  # an email that timed out may be sent again
                }
            ],
        }
    )
    smtp.delay = 5.0  # the server answers DATA long after each attempt's timeout
    started = time.monotonic()

    run = await hub.run_flow("slow-smtp")

    assert time.monotonic() - started < 4.0  # no attempt waited for the server
    assert run["status"] == "failed", run
    assert run["steps"][0]["attempts"] == 2
    assert run["error"].endswith("timed out after 0.5s (after 2 attempts)"), run["error"]


ZULIP_FLOW = {
    "parameters": {"type": "object"},
    "steps": [
        {
            "id": "post",
            "action": "zulip-message",
            "credential": "zulip-bot",
            "input": {"type": "stream", "to": "general", "topic": "deploys", "content": "done"},
            "retry": {"initial_delay": 0.01, "max_delay": 0.01},
        }
    ],
}


async def put_zulip(hub, zulip, flow):
    await hub.client.put(
        "/api/v1/credentials/zulip-bot",
        json={
            "type": "zulip",
            "data": {"site": zulip.url, "email": zulip.email, "api_key": zulip.api_key},
        },
    )
    await hub.client.put("/api/v1/flows/zulip-post", json=flow)


@pytest.mark.parametrize(
    ("status", "outcome"),
    [(503, "succeeded"), (500, "failed"), (502, "failed"), (504, "failed")],
)
async def test_a_message_is_posted_again_only_after_an_answer_that_says_it_was_not(
    hub, zulip, status, outcome
):
    """A 503 refused the request: retried. After a 500, 502 or 504 the message may have been
    posted, and zulip-message is not safe to repeat: the run fails as outcome unknown."""
    await put_zulip(hub, zulip, ZULIP_FLOW)
    zulip.fail_next(1, status=status)

    run = (await hub.client.post("/api/v1/trigger?wait=20", json={"flow_id": "zulip-post"})).json()

    assert run["status"] == outcome, run
    if outcome == "succeeded":
        assert run["steps"][0]["attempts"] == 2
        assert len(zulip.messages) == 1
    else:
        assert run["steps"][0]["attempts"] == 1
        assert f"outcome unknown: Zulip POST /messages answered {status}" in run["error"]
        assert zulip.messages == []


async def test_429_with_retry_after_makes_the_next_attempt_wait_at_least_that_long(hub, zulip):
    await put_zulip(hub, zulip, ZULIP_FLOW)
    zulip.rate_limit_next(1, retry_after=2)

    run = (await hub.client.post("/api/v1/trigger?wait=20", json={"flow_id": "zulip-post"})).json()

    assert run["status"] == "succeeded", run
    assert run["steps"][0]["attempts"] == 2
    history = (await hub.client.get(f"/api/v1/runs/{run['run_id']}/history")).json()
    sending = [datetime.fromisoformat(e["at"]) for e in history if e["event"] == "step.sending"]
    assert (sending[1] - sending[0]).total_seconds() >= 2.0
    assert len(zulip.messages) == 1


async def test_retry_that_cannot_fit_in_the_deadline_fails_the_step_at_once(hub, zulip):
    flow = {
        **ZULIP_FLOW,
        "steps": [{**ZULIP_FLOW["steps"][0], "retry": {"deadline": 1, "initial_delay": 0.01}}],
    }
    await put_zulip(hub, zulip, flow)
    zulip.rate_limit_next(1, retry_after=30)

    run = (await hub.client.post("/api/v1/trigger?wait=10", json={"flow_id": "zulip-post"})).json()

    assert run["status"] == "failed"
    assert "deadline" in run["error"]
    assert run["steps"][0]["attempts"] == 1


async def test_permanent_errors_fail_at_once_without_retry(hub, zulip):
    await put_zulip(
        hub,
        zulip,
        {
            **ZULIP_FLOW,
            "steps": [
                {
                    **ZULIP_FLOW["steps"][0],
                    "input": {**ZULIP_FLOW["steps"][0]["input"], "to": "no-such-stream"},
                }
            ],
        },
    )

    run = (await hub.client.post("/api/v1/trigger?wait=10", json={"flow_id": "zulip-post"})).json()

    assert run["status"] == "failed"
    assert run["steps"][0]["attempts"] == 1
