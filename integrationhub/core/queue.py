"""The run queue on Pulsar: run ids out to a topic, workers in on a shared subscription.

A message is acknowledged only once the run's outcome is persisted. A worker that dies leaves
its message unacknowledged, and the broker hands it to another worker, which takes the run over
once the lease has expired. The sweeper publishes what the queue may have missed: runs persisted
while the broker was down, and runs whose worker died with their lease.
"""

from __future__ import annotations

import uuid

import structlog
from prometheus_client import Counter

from integrationhub.core.bus import Bus, Message, Reject, Subscription
from integrationhub.core.engine import Engine
from integrationhub.core.periodic import Periodic
from integrationhub.core.schema import utcnow
from integrationhub.core.store import Store
from integrationhub.errors import BusError
from integrationhub.settings import Settings

__all__ = ["RunQueue"]

log = structlog.get_logger()

# A queued run whose message has not been handled after this long is published again; a
# duplicate message is harmless (the claim keeps execution single), a lost one is not.
STALE_QUEUE_MESSAGE = 15 * 60.0
MARK_INTERVAL = 0.5

SWEPT = Counter(
    "integrationhub_runs_republished_total",
    "Runs the sweeper published again (missed by the queue or left by a dead worker)",
)


class RunQueue:
    def __init__(self, *, bus: Bus, store: Store, settings: Settings) -> None:
        self.bus = bus
        self.store = store
        self.settings = settings
        self.topic = settings.pulsar.topic(settings.pulsar.runs_topic)
        self._subscription: Subscription | None = None
        self._sweeper = Periodic("runs.sweep", settings.sweep_interval, self.sweep)
        # Published runs by their delivery count, noted in the store in one statement a batch:
        # a transaction per trigger would cost more than the publish itself.
        self._published: dict[int, list[str]] = {}
        self._marker = Periodic("runs.mark_enqueued", MARK_INTERVAL, self._mark_published)

    async def enqueue(self, run_id: str, *, deliveries: int = 0) -> bool:
        """Publish the run id; False (and the sweeper's job) when the broker is unreachable.

        ``deliveries`` is the run's count as published: the note that it was published is
        kept only if no worker has taken the run since.
        """
        if not self.bus.connected:
            # Not worth a publish timeout per trigger: the sweeper publishes it once the
            # broker answers again.
            log.warning("run.enqueue_deferred", run_id=run_id, reason="the broker is unavailable")
            return False
        try:
            await self.bus.publish(self.topic, run_id.encode(), key=run_id)
        except BusError as exc:
            log.warning("run.enqueue_deferred", run_id=run_id, reason=exc.message)
            return False
        self._published.setdefault(deliveries, []).append(run_id)
        return True

    async def start(self, engine: Engine | None, *, sweep: bool = True) -> None:
        """Execute queued runs with ``engine`` (None: runs execute in other processes), and
        ``sweep`` for runs the queue missed (one sweeping process per hub is enough)."""
        if engine is not None:

            async def handle(message: Message) -> None:
                await engine.execute(_run_id(message.payload))

            self._subscription = self.bus.subscribe(
                self.topic,
                self.settings.pulsar.workers_subscription,
                handle,
                concurrency=self.settings.worker_concurrency,
            )
        if sweep:
            self._sweeper.start()
        self._marker.start()

    async def stop(self) -> None:
        await self._sweeper.stop()
        await self._marker.stop()
        if self._subscription is not None:
            await self._subscription.close()
        await self._mark_published()

    async def _mark_published(self) -> None:
        """Until this note is written, the sweeper may publish a run a second time, which
        is harmless: the claim keeps execution single."""
        published, self._published = self._published, {}
        now = utcnow()
        for deliveries, run_ids in published.items():
            await self.store.mark_enqueued(run_ids, deliveries=deliveries, at=now)

    async def sweep(self) -> int:
        published = 0
        for run_id, deliveries in await self.store.runs_to_publish(
            unpublished_for=self.settings.sweep_interval, requeue_after=STALE_QUEUE_MESSAGE
        ):
            if not await self.enqueue(run_id, deliveries=deliveries):
                break
            published += 1
        if published:
            SWEPT.inc(published)
            log.info("runs.republished", count=published)
        return published


def _run_id(data: bytes) -> str:
    try:
        return str(uuid.UUID(data.decode("ascii")))
    except (UnicodeDecodeError, ValueError):
        raise Reject("run queue message is not a run id") from None
