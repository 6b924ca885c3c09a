"""Schedule triggers on real engines: one run per slot across replicas, flows changed and
deleted through the API, and the slots missed while no replica ran.

Per-second expressions keep each test to a few seconds of schedule. Every assertion counts runs
in the database (or the API's view of it); none depends on when a run happened to be made.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from prometheus_client import REGISTRY

from integrationhub.core.cron import Cron
from integrationhub.core.schedules import slot_key
from integrationhub.core.schema import runs, utcnow
from integrationhub.core.store import Store
from tests.support.hub import RunningHub, hub_settings, running_hub
from tests.support.polling import poll
from tests.support.process import HubProcess, hub_env, hub_processes
from tests.support.smtp import SmtpSink

pytestmark = pytest.mark.integration


def ticking(flow_id: str, *, cron: str, tag: str, timezone: str = "UTC") -> dict[str, Any]:
    """A flow that mails one line per slot; its runs' parameters name their slot."""
    return {
        "id": flow_id,
        "parameters": {
            "type": "object",
            "properties": {"tag": {"type": "string"}, "slot": {"type": "string"}},
            "required": ["tag", "slot"],
        },
        "steps": [
            {
                "id": "send",
                "action": "smtp-email",
                "credential": "smtp-credentials",
                "input": {
                    "to": "ticks@example.com",
                    "subject": "{{ parameters.tag }} {{ parameters.slot }}",
                    "body": "<p>tick</p>",
                },
            }
        ],
        "trigger": {
            "schedule": {
                "cron": cron,
                "timezone": timezone,
                "parameters": {"tag": tag, "slot": "{{ slot }}"},
            }
        },
    }


async def stored_runs(store: Store, flow_id: str) -> list[tuple[datetime, str | None]]:
    """Each of the flow's runs in the database: the slot its parameters name, and its key."""
    async with store.engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.select(runs.c.parameters, runs.c.idempotency_key).where(
                    runs.c.flow_id == flow_id
                )
            )
        ).all()
    return [(datetime.fromisoformat(row.parameters["slot"]), row.idempotency_key) for row in rows]


async def api_runs(hub: RunningHub, flow_id: str) -> list[tuple[str, datetime]]:
    response = await hub.client.get("/api/v1/runs", params={"flow_id": flow_id, "limit": 500})
    assert response.status_code == 200, response.text
    return [
        (run["parameters"]["tag"], datetime.fromisoformat(run["parameters"]["slot"]))
        for run in response.json()
    ]


def whole_second_after(moment: datetime) -> datetime:
    return moment.replace(microsecond=0) + timedelta(seconds=1)


def skipped(flow_id: str, reason: str) -> float | None:
    return REGISTRY.get_sample_value(
        "integrationhub_schedule_slots_skipped_total", {"flow_id": flow_id, "reason": reason}
    )


@pytest.mark.timeout(180)
async def test_two_replicas_fire_each_slot_of_a_per_second_schedule_exactly_once(
    tmp_path: Path,
    openbao: tuple[str, str],
    pulsar_url: str,
    database_url: str,
    smtp: SmtpSink,
):
    addr, token = openbao
    env = hub_env(
        database_url=database_url,
        vault_addr=addr,
        vault_token=token,
        pulsar_url=pulsar_url,
        SCHEDULE_RELOAD_INTERVAL="0.5",
    )
    store = await Store.open(database_url)
    async with hub_processes(tmp_path / "hubs") as processes:
        a, b = await processes.start("a", "b", env=env)
        hubs: list[HubProcess] = [a, b]
        await a.put_smtp_credential(smtp)

        response = await a.client.put(
            "/api/v1/flows/ticks", json=ticking("ticks", cron="* * * * * *", tag="ticks")
        )
        assert response.status_code == 201, response.text
        for hub in hubs:  # b reads the flows again within its reload interval
            await hub.wait_for_event("schedule.started", flow_id="ticks", timeout=20)
        first = whole_second_after(utcnow())
        window = [first + timedelta(seconds=n) for n in range(5)]

        async def window_fired() -> bool:
            slots = {slot for slot, _ in await stored_runs(store, "ticks")}
            return set(window) <= slots

        try:
            await poll(window_fired, timeout=30, what=f"a run for each slot of {window}")
            response = await a.client.delete("/api/v1/flows/ticks")
            assert response.status_code == 204, response.text
            # Removal and firing happen in one task per replica: once both have logged the
            # removal, no run of theirs for this flow is still on its way.
            for hub in hubs:
                await hub.wait_for_event("schedule.removed", flow_id="ticks", timeout=20)
            stored = await stored_runs(store, "ticks")
        finally:
            await store.close()

        per_slot = Counter(slot for slot, _ in stored)
        assert all(count == 1 for count in per_slot.values()), per_slot.most_common(3)
        # From the first slot after the flow was created to the last before it was deleted,
        # not one is missing: every slot in between was fired by one replica or the other.
        slots = sorted(per_slot)
        assert len(slots) >= len(window)
        assert slots == [slots[0] + timedelta(seconds=n) for n in range(len(slots))]
        assert all(key == slot_key("ticks", slot) for slot, key in stored)
        fired = [
            await hub.metric("integrationhub_schedule_slots_fired_total", flow_id="ticks")
            for hub in hubs
        ]
        assert sum(fired) == len(stored), fired


async def test_a_schedule_changed_through_the_api_fires_anew_and_stops_once_deleted(
    hub: RunningHub, smtp: SmtpSink
):
    await hub.put_smtp_credential(smtp.port)
    flow_id = f"ticks-{uuid.uuid4().hex[:8]}"

    async def tagged(tag: str, count: int) -> bool:
        return sum(1 for t, _ in await api_runs(hub, flow_id) if t == tag) >= count

    response = await hub.client.put(
        f"/api/v1/flows/{flow_id}", json=ticking(flow_id, cron="* * * * * *", tag="before")
    )
    assert response.status_code == 201, response.text
    await poll(lambda: tagged("before", 2), timeout=15, what="two runs of the first schedule")

    change_sent = utcnow()
    response = await hub.client.put(
        f"/api/v1/flows/{flow_id}",
        json=ticking(flow_id, cron="*/2 * * * * *", tag="after", timezone="Asia/Kolkata"),
    )
    assert response.status_code == 200, response.text
    change_done = utcnow()
    await poll(lambda: tagged("after", 2), timeout=15, what="two runs of the changed schedule")

    response = await hub.client.delete(f"/api/v1/flows/{flow_id}")
    assert response.status_code == 204, response.text
    delete_done = utcnow()
    await asyncio.sleep(2.5)  # two more slots of the old schedules, had they stayed

    fired = await api_runs(hub, flow_id)
    before = [slot for tag, slot in fired if tag == "before"]
    after = [slot for tag, slot in fired if tag == "after"]
    assert len(before) >= 2 and len(after) >= 2
    assert len({*before, *after}) == len(fired)
    assert all(slot <= change_done for slot in before), (change_done, before)
    assert all(slot > change_sent for slot in after), (change_sent, after)
    # The new expression, on the new zone's clock.
    assert all(slot.second % 2 == 0 for slot in after)
    assert all(slot.utcoffset() == timedelta(hours=5, minutes=30) for slot in after)
    assert all(slot <= delete_done for slot in before + after), delete_done


def flow_file(directory: Path, flow: dict[str, Any]) -> None:
    (directory / f"{flow['id']}.json").write_text(json.dumps(flow))


async def test_slots_missed_while_no_replica_ran_fire_once_when_recent_and_are_skipped_when_not(
    tmp_path: Path,
    openbao: tuple[str, str],
    pulsar_url: str,
    database_url: str,
    smtp: SmtpSink,
):
    suffix = uuid.uuid4().hex[:8]
    minutely, yearly, fresh = f"minutely-{suffix}", f"new-year-{suffix}", f"fresh-{suffix}"
    flows_dir = tmp_path / "flows"
    flows_dir.mkdir()
    flow_file(flows_dir, ticking(minutely, cron="* * * * *", tag="minutely"))
    flow_file(flows_dir, ticking(yearly, cron="0 0 1 1 *", tag="yearly"))
    flow_file(flows_dir, ticking(fresh, cron="* * * * *", tag="fresh"))
    # Every replica was down for a while: the schedules were handled up to then. The third
    # flow is new: no replica has seen its schedule.
    now = utcnow()
    minutely_since = now - timedelta(minutes=5, seconds=30)
    yearly_since = datetime(now.year - 1, 6, 1, tzinfo=UTC)
    store = await Store.open(database_url)
    try:
        await store.start_schedule(minutely, at=minutely_since)
        await store.start_schedule(yearly, at=yearly_since)
    finally:
        await store.close()
    addr, token = openbao
    settings = hub_settings(
        tmp_path / "hub",
        vault_addr=addr,
        vault_token=token,
        pulsar_url=pulsar_url,
        database_url=database_url,
        flows_dir=flows_dir,
        schedule_catch_up=300,
    )

    started = utcnow()
    async with running_hub(settings) as hub:
        caught_up = await poll(
            lambda: api_runs(hub, minutely), timeout=15, what="the missed minute's run"
        )
        fresh_runs = await api_runs(hub, fresh)
        yearly_runs = await api_runs(hub, yearly)
        done = utcnow()

    # The latest missed minute fired, at once: the earliest run is for a slot before the
    # hub started (or the minute it started in), and no earlier minute has a run.
    fired = min(slot for _, slot in caught_up)
    assert started - timedelta(minutes=1) < fired <= done
    assert len({slot for _, slot in caught_up}) == len(caught_up)
    missed = list(Cron("* * * * *").slots(minutely_since, fired - timedelta(seconds=1)))
    assert len(missed) >= 4
    assert skipped(minutely, "missed") == len(missed)
    # New Year's slot was missed by months: far beyond the window, so skipped, not fired.
    assert yearly_runs == []
    assert skipped(yearly, "missed") == len(list(Cron("0 0 1 1 *").slots(yearly_since, done)))
    # A schedule no replica had seen starts now: nothing before it fires or counts as missed.
    assert all(slot > started for _, slot in fresh_runs)
    assert skipped(fresh, "missed") is None
