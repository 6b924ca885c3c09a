"""Worker processes: ``integrationhub serve`` with ``INTEGRATIONHUB_WORKER_PROCESSES`` takes
triggers and leaves the runs to ``integrationhub worker`` processes it starts, pointed at its
own embedded engines (OpenBao, pulsar-lite, SQLite): nothing else configured.

Each run is executed once, by a worker; their counts reach the hub's ``/metrics``; a worker
killed is started again, and ``/health`` says so meanwhile; stopping the hub stops them.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.hub import API_KEY
from tests.support.polling import poll
from tests.support.process import HubProcess, hub_processes
from tests.support.smtp import SmtpSink

pytestmark = pytest.mark.integration

RUNS = 20


@pytest.fixture
async def hub(tmp_path: Path, smtp: SmtpSink) -> AsyncIterator[HubProcess]:
    env = {"INTEGRATIONHUB_API_KEYS": API_KEY, "INTEGRATIONHUB_WORKER_PROCESSES": "2"}
    async with hub_processes(tmp_path / "hubs", env) as processes:
        (hub,) = await processes.start("hub", timeout=90)
        await hub.put_smtp_credential(smtp)
        yield hub


def workers_of(hub: HubProcess) -> set[int]:
    """The pids of the hub's ``integrationhub worker`` children."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == hub.pid and b"worker" in command and b"integrationhub" in command:
            found.add(int(entry.name))
    return found


async def run_to_end(hub: HubProcess, n: int) -> dict[str, Any]:
    response = await hub.client.post(
        "/api/v1/trigger?wait=30",
        json={
            "flow_id": "send-summary-email",
            "parameters": {"to": f"r{n}@example.com", "subject": f"S {n}", "body": "<p>b</p>"},
        },
    )
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def test_workers_execute_every_run_once_and_count_it_in_the_hubs_metrics(
    hub: HubProcess, smtp: SmtpSink
) -> None:
    health = (await hub.client.get("/health")).json()
    assert health["components"]["workers"] == {"status": "up"}, health
    workers = workers_of(hub)
    assert len(workers) == 2, workers

    runs = await asyncio.gather(*(run_to_end(hub, n) for n in range(RUNS)))

    assert {run["status"] for run in runs} == {"succeeded"}
    ids = Counter(m.message["Message-ID"] for m in smtp.messages)
    assert len(ids) == RUNS and set(ids.values()) == {1}, ids
    executed_by: Counter[int] = Counter()
    for run in runs:
        history = (await hub.client.get(f"/api/v1/runs/{run['run_id']}/history")).json()
        (running,) = [event for event in history if event["event"] == "running"]
        pid = int(running["detail"].split("worker ")[1].split(":")[1])
        executed_by[pid] += 1
    assert set(executed_by) <= workers, (executed_by, workers)  # never the API process
    assert hub.pid not in executed_by
    # Counted by the workers, read through the hub's /metrics.
    assert await hub.metric("integrationhub_runs_total", status="succeeded") == RUNS
    assert await hub.metric("integrationhub_triggers_total") == RUNS


async def test_a_killed_worker_is_started_again_and_stopping_the_hub_stops_the_workers(
    hub: HubProcess, smtp: SmtpSink
) -> None:
    killed, kept = sorted(workers_of(hub))
    os.kill(killed, signal.SIGKILL)

    async def degraded() -> dict[str, Any] | None:
        body = (await hub.client.get("/health")).json()
        return body if body["status"] == "degraded" else None

    body = await poll(degraded, timeout=5, what="/health says a worker is down")
    assert body["components"]["workers"] == {
        "status": "down",
        "error": "1 of 2 worker processes running",
    }

    async def replaced() -> set[int]:
        pids = workers_of(hub)
        return pids if len(pids) == 2 and killed not in pids else set()

    pids = await poll(replaced, timeout=30, what="the killed worker started again")
    assert kept in pids
    await hub.wait_healthy(timeout=30)
    assert (await run_to_end(hub, 0))["status"] == "succeeded"

    await hub.stop()

    async def gone() -> bool:
        return not any(os.path.exists(f"/proc/{pid}") for pid in pids)  # noqa: ASYNC240

    await poll(gone, timeout=15, what=f"workers {pids} stopped with the hub")
