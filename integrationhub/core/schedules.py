"""Flows started by the clock: ``trigger: {schedule: {cron, timezone?, parameters?}}``.

Every replica runs one scheduler task. It sleeps until the next slot of any scheduled flow, or
until it is time to re-read the flows, and starts a run for each slot that has come due through
the one trigger path, with the idempotency key ``schedule:{flow_id}:{slot in UTC}``. Replicas
that fire a slot together get the same run back, since the key is a unique column: each slot
runs once, on whichever replica gets there first.

What happens to slots that were not fired on time:

- No slot starts more than ``INTEGRATIONHUB_SCHEDULE_CATCH_UP`` seconds late; older ones are
  skipped. A replica that fell behind (a stalled process, the database briefly down) fires the
  slots it missed in order, as long as they are within that window.
- Slots that came due while no replica ran are found when a replica picks the schedule up: those
  after the schedule's cursor (its last slot handled). Of them only the latest fires, and only
  if it is within the window, as a cron job that missed several runs should run once, not in a
  burst; the others are skipped.
- A schedule seen for the first time, or changed while a replica runs, starts from that moment:
  no slot before it fires.

Skipped slots are logged (``schedule.slots_skipped``, with the first and last) and counted in
``integrationhub_schedule_slots_skipped_total``.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog
from prometheus_client import Counter

from integrationhub.core.catalog import Catalog
from integrationhub.core.cron import Cron
from integrationhub.core.schema import utcnow
from integrationhub.core.store import Store
from integrationhub.core.triggers import Triggers
from integrationhub.errors import FlowError, FlowNotFound, IdempotencyConflict
from integrationhub.models.flow import ScheduleTrigger

__all__ = ["Scheduler", "Skipped", "catch_up", "slot_key"]

log = structlog.get_logger()

FIRED = Counter(
    "integrationhub_schedule_slots_fired_total",
    "Schedule slots this replica started a run for",
    ["flow_id"],
)
SKIPPED = Counter(
    "integrationhub_schedule_slots_skipped_total",
    "Schedule slots no run was started for: missed while no replica ran, late beyond the "
    "catch-up window, or failed (parameters refused)",
    ["flow_id", "reason"],
)

RETRY_DELAY = 1.0
COUNT_LIMIT = 1000  # skipped slots are counted one by one up to this many per report
CONCURRENCY = 8  # flows whose slots are fired at once
_TICK = timedelta(microseconds=1)  # slots fall on whole seconds: this excludes one boundary


def slot_key(flow_id: str, slot: datetime) -> str:
    """The idempotency key of a slot's run: the same on every replica."""
    return f"schedule:{flow_id}:{slot.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"


@dataclass(frozen=True)
class Skipped:
    """Slots not fired: how many (counted up to ``COUNT_LIMIT``), the first and the last."""

    count: int = 0
    first: datetime | None = None
    last: datetime | None = None


def _skipped(cron: Cron, after: datetime, until: datetime) -> Skipped:
    """The slots in ``(after, until]``."""
    last = cron.latest(after, until)
    if last is None:
        return Skipped()
    count, first = 0, None
    for slot in cron.slots(after, last):
        first = first or slot
        count += 1
        if count == COUNT_LIMIT:
            break
    return Skipped(count, first, last)


def catch_up(
    cron: Cron, *, handled_until: datetime, now: datetime, window: float
) -> tuple[datetime | None, Skipped]:
    """For the slots in ``(handled_until, now]``, which no replica fired: the one to fire (the
    latest, if at most ``window`` seconds old) and the ones to skip."""
    latest = cron.latest(handled_until, now)
    if latest is None:
        return None, Skipped()
    if now - latest <= timedelta(seconds=window):
        return latest, _skipped(cron, handled_until, latest - _TICK)
    return None, _skipped(cron, handled_until, now)


class _Outcome(enum.Enum):
    done = "done"  # fired, fired elsewhere already, or refused for good
    stale = "stale"  # the flow or its schedule changed: read the flows again


@dataclass
class _Schedule:
    flow_id: str
    trigger: ScheduleTrigger
    cron: Cron
    next_slot: datetime  # the first slot not handled yet


class Scheduler:
    """One task per replica that fires every scheduled flow's slots: ``window`` is the catch-up
    window in seconds, ``reload_interval`` how often the flows are read again."""

    def __init__(
        self,
        *,
        catalog: Catalog,
        store: Store,
        triggers: Triggers,
        window: float,
        reload_interval: float,
    ) -> None:
        self.catalog = catalog
        self.store = store
        self.triggers = triggers
        self.window = window
        self.reload_interval = reload_interval
        self._schedules: dict[str, _Schedule] = {}
        self._reload = asyncio.Event()
        self._reload_at = utcnow()
        self._limit = asyncio.Semaphore(CONCURRENCY)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._reload.set()
        self._task = asyncio.create_task(self._loop(), name="schedules")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def reload(self) -> None:
        """Read the flows again at once: one was changed through this replica."""
        self._reload.set()

    async def _loop(self) -> None:
        while True:
            try:
                retry = not await self._round()
            except Exception:  # a database hiccup must not end the schedules
                log.exception("schedule.failed")
                retry = True
            if retry:
                await asyncio.sleep(RETRY_DELAY)
            else:
                await self._sleep()

    async def _round(self) -> bool:
        """Read the flows if it is time, then fire what is due; False when something must be
        tried again."""
        if self._reload.is_set() or utcnow() >= self._reload_at:
            self._reload.clear()
            await self.reconcile()
            self._reload_at = utcnow() + timedelta(seconds=self.reload_interval)
        now = utcnow()
        due = [schedule for schedule in self._schedules.values() if schedule.next_slot <= now]
        results = await asyncio.gather(*(self._run_due(schedule, now) for schedule in due))
        return all(results)

    async def _sleep(self) -> None:
        wake = min([schedule.next_slot for schedule in self._schedules.values()], default=None)
        wake = self._reload_at if wake is None else min(wake, self._reload_at)
        # Capped, so that a wall clock set back does not stretch the wait.
        delay = min((wake - utcnow()).total_seconds(), self.reload_interval)
        if delay > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._reload.wait()

    async def reconcile(self) -> None:
        """Track each flow's schedule, and only those: flows change through the API, on this
        replica or another, and through files between starts."""
        now = utcnow()
        wanted = {
            flow.id: flow.trigger.schedule
            for flow in await self.catalog.list()
            if flow.trigger is not None and flow.trigger.schedule is not None
        }
        for flow_id, schedule in list(self._schedules.items()):
            trigger = wanted.get(flow_id)
            if trigger == schedule.trigger:
                continue
            if trigger is None:
                await self.store.forget_schedule(flow_id)
                log.info("schedule.removed", flow_id=flow_id)
            else:
                # The old expression's slots not fired yet are no slots of the new one.
                await self.store.advance_schedule(flow_id, to=now)
            del self._schedules[flow_id]
        for flow_id, trigger in wanted.items():
            if flow_id not in self._schedules:
                self._schedules[flow_id] = await self._track(flow_id, trigger, now)

    async def _track(self, flow_id: str, trigger: ScheduleTrigger, now: datetime) -> _Schedule:
        cron = Cron(trigger.cron, trigger.timezone)
        handled_until = await self.store.start_schedule(flow_id, at=now)
        fire, skipped = catch_up(cron, handled_until=handled_until, now=now, window=self.window)
        if skipped.count:
            _report(flow_id, skipped, reason="missed")
            if fire is None:
                await self.store.advance_schedule(flow_id, to=skipped.last or now)
        schedule = _Schedule(flow_id, trigger, cron, next_slot=fire or cron.next_after(now))
        log.info(
            "schedule.started",
            flow_id=flow_id,
            cron=trigger.cron,
            timezone=trigger.timezone,
            next_slot=schedule.next_slot.isoformat(),
        )
        return schedule

    async def _run_due(self, schedule: _Schedule, now: datetime) -> bool:
        """Handle the schedule's slots up to ``now``, in order; False when one failed and is to
        be tried again."""
        try:
            while schedule.next_slot <= now:
                slot = schedule.next_slot
                oldest = now - timedelta(seconds=self.window)
                if slot < oldest:
                    late = _skipped(schedule.cron, slot - _TICK, oldest - _TICK)
                    last = late.last or slot  # never None: slot itself is among them
                    _report(schedule.flow_id, late, reason="late")
                    await self.store.advance_schedule(schedule.flow_id, to=last)
                    schedule.next_slot = schedule.cron.next_after(last)
                    continue
                async with self._limit:
                    outcome = await self._fire(schedule, slot)
                if outcome is _Outcome.stale:
                    self._reload.set()
                    return True
                schedule.next_slot = schedule.cron.next_after(slot)
        except Exception:
            log.exception(
                "schedule.slot_error",
                flow_id=schedule.flow_id,
                slot=schedule.next_slot.isoformat(),
            )
            return False
        return True

    async def _fire(self, schedule: _Schedule, slot: datetime) -> _Outcome:
        flow_id = schedule.flow_id
        try:
            # The flow as it is now: a schedule changed or removed on another replica must
            # not fire here in the meantime.
            flow = await self.catalog.get(flow_id)
            if flow.trigger is None or flow.trigger.schedule != schedule.trigger:
                return _Outcome.stale
            _, created = await self.triggers.trigger(
                flow_id=flow_id,
                parameters=schedule.trigger.parameters_for(slot),
                idempotency_key=slot_key(flow_id, slot),
                source="schedule",
            )
        except FlowNotFound:
            return _Outcome.stale
        except FlowError as exc:  # a template failed, or the parameters break the schema
            SKIPPED.labels(flow_id, "failed").inc()
            log.error(
                "schedule.slot_failed", flow_id=flow_id, slot=slot.isoformat(), error=exc.message
            )
            await self.store.advance_schedule(flow_id, to=slot)
            return _Outcome.done
        except IdempotencyConflict:
            # Fired already, by a replica that read another version of the flow.
            return _Outcome.done
        if created:
            FIRED.labels(flow_id).inc()
            await self.store.advance_schedule(flow_id, to=slot)
        return _Outcome.done


def _report(flow_id: str, skipped: Skipped, *, reason: str) -> None:
    SKIPPED.labels(flow_id, reason).inc(skipped.count)
    log.warning(
        "schedule.slots_skipped",
        flow_id=flow_id,
        reason=reason,
        count=skipped.count,
        capped=skipped.count == COUNT_LIMIT,
        first=skipped.first.isoformat() if skipped.first else None,
        last=skipped.last.isoformat() if skipped.last else None,
    )
