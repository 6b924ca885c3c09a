"""One way in for every trigger (HTTP, MCP, Pulsar topic, webhook): validate, persist, enqueue.

The run is committed before anything is acknowledged. Publishing its id to the run queue comes
second; if the broker is down the run stays queued in the store and the sweeper publishes it
when the broker is back.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from prometheus_client import Counter

from integrationhub.core.catalog import Catalog, validate_parameters
from integrationhub.core.events import RunEvents
from integrationhub.core.queue import RunQueue
from integrationhub.core.store import Store
from integrationhub.models.run import RunPublic, RunStatus

__all__ = ["Triggers"]

log = structlog.get_logger()

TRIGGERS = Counter(
    "integrationhub_triggers_total", "Triggers accepted, by flow and source", ["flow_id", "source"]
)


class Triggers:
    def __init__(
        self, *, catalog: Catalog, store: Store, queue: RunQueue, events: RunEvents
    ) -> None:
        self.catalog = catalog
        self.store = store
        self.queue = queue
        self.events = events

    async def trigger(
        self,
        *,
        flow_id: str,
        parameters: dict[str, Any],
        idempotency_key: str | None = None,
        source: str,
    ) -> tuple[RunPublic, bool]:
        """Returns ``(run, created)``; a repeated idempotency key returns the first run."""
        flow = await self.catalog.get(flow_id)
        validate_parameters(flow, parameters)
        run, created = await self.store.create_run(
            flow=flow, parameters=parameters, idempotency_key=idempotency_key, source=source
        )
        if created:
            TRIGGERS.labels(flow_id, source).inc()
            log.info("run.queued", run_id=run.run_id, flow_id=flow_id, source=source)
            self.events.emit(
                run_id=run.run_id, flow_id=flow_id, type="run.queued", status=RunStatus.queued
            )
            await self.queue.enqueue(run.run_id)
        return run, created

    async def retry(self, run_id: str) -> RunPublic:
        """Queue a failed or cancelled run again, from its first unfinished step."""
        run = await self.store.retry(run_id)
        log.info("run.retried", run_id=run_id, flow_id=run.flow_id)
        self.events.emit(
            run_id=run_id, flow_id=run.flow_id, type="run.queued", status=RunStatus.queued
        )
        await self.queue.enqueue(run_id, deliveries=run.deliveries)
        return run

    async def wait(self, run_id: str, *, timeout: float) -> RunPublic:
        """The run once it has finished, or as it is when ``timeout`` runs out. Runs finished
        in this process wake the waiter at once; others (finished by a worker process or
        another replica) are seen by polling the store, soon at first, then every 0.5 s."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        interval = 0.05
        while True:
            run = await self.store.get_run(run_id)
            remaining = deadline - loop.time()
            if run.status.finished or remaining <= 0:
                return run
            await self.events.finished(run_id, timeout=min(remaining, interval))
            interval = min(interval * 2, 0.5)
