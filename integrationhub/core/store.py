"""Runs and flows in SQL (SQLAlchemy async; SQLite by default, PostgreSQL at scale).

Every state change that matters is one conditional UPDATE, so it is atomic on both databases
without read-then-write races: a run is claimed only if it is queued or its lease expired, and
only the lease owner may finish it.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from integrationhub.core import migrations
from integrationhub.core.schema import (
    flows,
    run_history,
    run_steps,
    runs,
    schedule_cursors,
    source_cursors,
    utcnow,
)
from integrationhub.errors import FlowNotFound, IdempotencyConflict, RunNotFound, RunStateConflict
from integrationhub.models.flow import Flow
from integrationhub.models.run import RunEvent, RunPublic, RunStatus, StepPublic, StepStatus

__all__ = ["ClaimedRun", "StepOutcome", "Store"]


@dataclass(frozen=True, slots=True)
class ClaimedRun:
    """A run this worker holds the lease on, with what it needs to execute it."""

    id: str
    flow: Flow
    parameters: dict[str, Any]
    deliveries: int
    steps: dict[str, StepPublic]
    cancel_requested: bool = False


@dataclass(frozen=True, slots=True)
class StepOutcome:
    step_id: str
    status: StepStatus
    output: dict[str, Any] | None = None
    error: str | None = None


class Store:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    @classmethod
    async def open(cls, url: str, *, migrate: bool = True) -> Store:
        engine = create_async_engine(url, **_engine_options(url))
        if url.startswith("sqlite"):
            _tune_sqlite(engine)
        try:
            if migrate:
                await migrations.upgrade(engine)
            else:
                await migrations.require_current(engine)
        except BaseException:
            await engine.dispose()
            raise
        return cls(engine)

    async def close(self) -> None:
        await self.engine.dispose()

    async def check(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))

    # Runs -------------------------------------------------------------------------------------

    async def create_run(
        self,
        *,
        flow: Flow,
        parameters: dict[str, Any],
        idempotency_key: str | None,
        source: str = "api",
    ) -> tuple[RunPublic, bool]:
        """Persist a queued run with its pending steps. Returns ``(run, created)``: with a known
        idempotency key, the run created first and ``False``."""
        run_id = str(uuid.uuid4())
        now = utcnow()
        try:
            async with self.engine.begin() as conn:
                await conn.execute(
                    runs.insert().values(
                        id=run_id,
                        flow_id=flow.id,
                        status=RunStatus.queued,
                        parameters=parameters,
                        flow=flow.model_dump(mode="json", include=set(Flow.model_fields)),
                        idempotency_key=idempotency_key,
                        deliveries=0,
                        created_at=now,
                    )
                )
                await conn.execute(
                    run_steps.insert(),
                    [
                        {
                            "run_id": run_id,
                            "step_id": step.id,
                            "position": position,
                            "status": StepStatus.pending,
                            "attempts": 0,
                        }
                        for position, step in enumerate(flow.steps)
                    ],
                )
                await _history(conn, run_id, "queued", detail=f"triggered via {source}", at=now)
        except IntegrityError:
            if idempotency_key is None:
                raise
            existing = await self._run_by_key(idempotency_key)
            if existing.flow_id != flow.id or existing.parameters != parameters:
                raise IdempotencyConflict(
                    "Idempotency-Key was already used for a different flow or parameters"
                ) from None
            return existing, False
        # What was just inserted, without reading it back.
        pending = {"status": StepStatus.pending, "attempts": 0, "output": None, "error": None}
        run = RunPublic(
            run_id=run_id,
            flow_id=flow.id,
            status=RunStatus.queued,
            parameters=parameters,
            steps=[
                StepPublic(id=step.id, **pending, started_at=None, finished_at=None)
                for step in flow.steps
            ],
            error=None,
            deliveries=0,
            created_at=now,
            started_at=None,
            finished_at=None,
        )
        return run, True

    async def _run_by_key(self, key: str) -> RunPublic:
        async with self.engine.connect() as conn:
            run_id = await conn.scalar(sa.select(runs.c.id).where(runs.c.idempotency_key == key))
        return await self.get_run(run_id)

    async def mark_enqueued(
        self, run_ids: Collection[str], *, deliveries: int, at: datetime
    ) -> None:
        """Note that the runs' messages were published, so the sweeper leaves them be.

        Only runs still queued with the ``deliveries`` they had when published: a worker may
        have taken a run since, or given it back for the sweeper to publish (``release``).
        """
        async with self.engine.begin() as conn:
            await conn.execute(
                runs.update()
                .where(
                    runs.c.id.in_(run_ids),
                    runs.c.status == RunStatus.queued,
                    runs.c.deliveries == deliveries,
                    runs.c.enqueued_at.is_(None),
                )
                .values(enqueued_at=at)
            )

    async def claim(self, run_id: str, *, owner: str, lease: float) -> ClaimedRun | None:
        """Take the run if it is queued, or running under an expired lease. None if it is
        finished, unknown, or another worker holds a live lease."""
        now = utcnow()
        takeable = sa.or_(
            runs.c.status == RunStatus.queued,
            sa.and_(runs.c.status == RunStatus.running, runs.c.lease_expires_at < now),
        )
        async with self.engine.begin() as conn:
            row = (
                await conn.execute(
                    runs.update()
                    .where(runs.c.id == run_id, takeable)
                    .values(
                        status=RunStatus.running,
                        lease_owner=owner,
                        lease_expires_at=now + timedelta(seconds=lease),
                        deliveries=runs.c.deliveries + 1,
                        started_at=sa.func.coalesce(runs.c.started_at, now),
                    )
                    .returning(
                        sa.cast(runs.c.flow, sa.Text).label("flow"),
                        runs.c.parameters,
                        runs.c.deliveries,
                        runs.c.cancel_requested,
                    )
                )
            ).one_or_none()
            if row is None:
                return None
            steps = await self._steps(conn, run_id)
            await _history(
                conn, run_id, "running", detail=f"delivery {row.deliveries}, worker {owner}", at=now
            )
        return ClaimedRun(
            id=run_id,
            flow=_parsed_flow(row.flow),
            parameters=row.parameters,
            deliveries=row.deliveries,
            steps={step.id: step for step in steps},
            cancel_requested=row.cancel_requested,
        )

    async def renew(self, run_id: str, *, owner: str, lease: float) -> bool:
        async with self.engine.begin() as conn:
            result = await conn.execute(
                runs.update()
                .where(
                    runs.c.id == run_id,
                    runs.c.lease_owner == owner,
                    runs.c.status == RunStatus.running,
                )
                .values(lease_expires_at=utcnow() + timedelta(seconds=lease))
            )
        return result.rowcount == 1

    async def start_step(
        self, run_id: str, step_id: str, *, attempt: int, owner: str, lease: float
    ) -> bool:
        """Mark the step ``sending`` before its call: from here its effect may have happened.

        Only while ``owner`` still holds the run (its lease is renewed in the same
        transaction); False when another worker has taken it over after the lease expired,
        and the caller must not make the call: the run, and this step, are the other's now.
        """
        async with self.engine.begin() as conn:
            now = utcnow()  # after the wait for a pooled connection, which may be long
            held = await conn.execute(
                runs.update()
                .where(
                    runs.c.id == run_id,
                    runs.c.lease_owner == owner,
                    runs.c.status == RunStatus.running,
                )
                .values(lease_expires_at=now + timedelta(seconds=lease))
            )
            if held.rowcount != 1:
                return False
            await conn.execute(
                run_steps.update()
                .where(run_steps.c.run_id == run_id, run_steps.c.step_id == step_id)
                .values(
                    status=StepStatus.sending,
                    attempts=attempt,
                    error=None,
                    started_at=sa.func.coalesce(run_steps.c.started_at, now),
                )
            )
            await _history(
                conn, run_id, "step.sending", step_id=step_id, detail=f"attempt {attempt}", at=now
            )
        return True

    async def finish_step(
        self,
        run_id: str,
        step_id: str,
        *,
        status: StepStatus,
        output: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        async with self.engine.begin() as conn:
            await _finish_step(conn, run_id, StepOutcome(step_id, status, output, error), utcnow())

    async def finish_run(
        self,
        run_id: str,
        *,
        owner: str,
        status: RunStatus,
        error: str | None = None,
        last_step: StepOutcome | None = None,
    ) -> bool:
        """Record the outcome, only while ``owner`` still holds the lease; with the outcome
        of the step that decided it, in the same transaction."""
        now = utcnow()
        async with self.engine.begin() as conn:
            result = await conn.execute(
                runs.update()
                .where(
                    runs.c.id == run_id,
                    runs.c.lease_owner == owner,
                    runs.c.status == RunStatus.running,
                )
                .values(
                    status=status,
                    error=error,
                    finished_at=now,
                    lease_owner=None,
                    lease_expires_at=None,
                )
            )
            if result.rowcount == 1:
                if last_step is not None:
                    await _finish_step(conn, run_id, last_step, now)
                await _history(conn, run_id, str(status), detail=error, at=now)
        return result.rowcount == 1

    async def release(self, run_id: str, *, owner: str, reason: str) -> None:
        """Give a claimed run back: queued and unpublished, so the sweeper queues it again."""
        async with self.engine.begin() as conn:
            result = await conn.execute(
                runs.update()
                .where(
                    runs.c.id == run_id,
                    runs.c.lease_owner == owner,
                    runs.c.status == RunStatus.running,
                )
                .values(
                    status=RunStatus.queued,
                    lease_owner=None,
                    lease_expires_at=None,
                    enqueued_at=None,
                )
            )
            if result.rowcount == 1:
                await _history(conn, run_id, "released", detail=reason)

    async def cancel(self, run_id: str) -> RunPublic:
        """A queued run is cancelled at once; a running one when its current step ends."""
        now = utcnow()
        async with self.engine.begin() as conn:
            queued = await conn.execute(
                runs.update()
                .where(runs.c.id == run_id, runs.c.status == RunStatus.queued)
                .values(
                    status=RunStatus.cancelled, finished_at=now, error="cancelled before it started"
                )
            )
            running = await conn.execute(
                runs.update()
                .where(runs.c.id == run_id, runs.c.status == RunStatus.running)
                .values(cancel_requested=True)
            )
            if queued.rowcount or running.rowcount:
                event = "cancelled" if queued.rowcount else "cancel_requested"
                await _history(conn, run_id, event, detail="through the API", at=now)
        if not (queued.rowcount or running.rowcount):
            run = await self.get_run(run_id)
            raise RunStateConflict(
                f"run {run_id} is {run.status}; only queued or running runs can be cancelled"
            )
        return await self.get_run(run_id)

    async def cancel_requested(self, run_id: str) -> bool:
        async with self.engine.connect() as conn:
            return bool(
                await conn.scalar(sa.select(runs.c.cancel_requested).where(runs.c.id == run_id))
            )

    async def retry(self, run_id: str) -> RunPublic:
        """Queue a failed or cancelled run again from its first unfinished step: steps that
        succeeded keep their output, and steps that were skipped stay so; neither is repeated."""
        now = utcnow()
        async with self.engine.begin() as conn:
            result = await conn.execute(
                runs.update()
                .where(
                    runs.c.id == run_id, runs.c.status.in_([RunStatus.failed, RunStatus.cancelled])
                )
                .values(
                    status=RunStatus.queued,
                    error=None,
                    finished_at=None,
                    cancel_requested=False,
                    enqueued_at=None,
                )
            )
            if result.rowcount == 1:
                # A person decided: a step whose outcome was unknown is repeated too.
                await conn.execute(
                    run_steps.update()
                    .where(
                        run_steps.c.run_id == run_id,
                        run_steps.c.status.not_in([StepStatus.succeeded, StepStatus.skipped]),
                    )
                    .values(status=StepStatus.pending, attempts=0, error=None, finished_at=None)
                )
                await _history(conn, run_id, "retried", detail="through the API", at=now)
        if result.rowcount != 1:
            run = await self.get_run(run_id)
            raise RunStateConflict(
                f"run {run_id} is {run.status}; only failed or cancelled runs can be retried"
            )
        return await self.get_run(run_id)

    async def get_run(self, run_id: str) -> RunPublic:
        async with self.engine.connect() as conn:
            row = (await conn.execute(sa.select(runs).where(runs.c.id == run_id))).one_or_none()
            if row is None:
                raise RunNotFound(run_id)
            steps = await self._steps(conn, run_id)
        return _run_public(row, steps)

    async def history(self, run_id: str) -> list[RunEvent]:
        await self.get_run(run_id)
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.select(run_history)
                    .where(run_history.c.run_id == run_id)
                    .order_by(run_history.c.id)
                )
            ).all()
        return [RunEvent(at=r.at, event=r.event, step_id=r.step_id, detail=r.detail) for r in rows]

    async def list_runs(
        self,
        *,
        flow_id: str | None = None,
        status: RunStatus | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        after: tuple[datetime, str] | None = None,
        limit: int = 50,
    ) -> list[RunPublic]:
        """Newest first. ``after`` is the (created_at, id) of the last run of the previous
        page: keyset pagination, stable while new runs arrive."""
        query = sa.select(runs).order_by(runs.c.created_at.desc(), runs.c.id.desc()).limit(limit)
        if flow_id:
            query = query.where(runs.c.flow_id == flow_id)
        if status:
            query = query.where(runs.c.status == status)
        if created_after:
            query = query.where(runs.c.created_at >= created_after)
        if created_before:
            query = query.where(runs.c.created_at < created_before)
        if after:
            query = query.where(sa.tuple_(runs.c.created_at, runs.c.id) < sa.tuple_(*after))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
            ids = [row.id for row in rows]
            step_rows = (
                await conn.execute(
                    sa.select(run_steps)
                    .where(run_steps.c.run_id.in_(ids))
                    .order_by(run_steps.c.position)
                )
            ).all()
        by_run: dict[str, list[StepPublic]] = {run_id: [] for run_id in ids}
        for step in step_rows:
            by_run[step.run_id].append(_step_public(step))
        return [_run_public(row, by_run[row.id]) for row in rows]

    async def delete_finished(self, *, before: datetime, batch: int) -> int:
        """Delete up to ``batch`` runs that finished before ``before`` (steps and history go
        with them). Small batches keep each transaction, and its locks, short."""
        async with self.engine.begin() as conn:
            ids = (
                await conn.scalars(
                    sa.select(runs.c.id)
                    .where(runs.c.finished_at < before)
                    .order_by(runs.c.finished_at)
                    .limit(batch)
                )
            ).all()
            if not ids:
                return 0
            # Explicit child deletes: SQLite enforces ON DELETE CASCADE only per connection.
            await conn.execute(run_history.delete().where(run_history.c.run_id.in_(ids)))
            await conn.execute(run_steps.delete().where(run_steps.c.run_id.in_(ids)))
            await conn.execute(runs.delete().where(runs.c.id.in_(ids)))
        return len(ids)

    async def runs_to_publish(
        self, *, unpublished_for: float, requeue_after: float, limit: int = 500
    ) -> list[tuple[str, int]]:
        """What the sweeper publishes again, as (run id, deliveries): queued runs that never
        reached the run queue (or whose message was lost), and running runs whose worker died
        (lease expired)."""
        now = utcnow()
        query = (
            sa.select(runs.c.id, runs.c.deliveries)
            .where(
                sa.or_(
                    sa.and_(
                        runs.c.status == RunStatus.queued,
                        runs.c.enqueued_at.is_(None),
                        runs.c.created_at < now - timedelta(seconds=unpublished_for),
                    ),
                    sa.and_(
                        runs.c.status == RunStatus.queued,
                        runs.c.enqueued_at < now - timedelta(seconds=requeue_after),
                    ),
                    sa.and_(runs.c.status == RunStatus.running, runs.c.lease_expires_at < now),
                )
            )
            .order_by(runs.c.created_at)
            .limit(limit)
        )
        async with self.engine.connect() as conn:
            return [(row.id, row.deliveries) for row in await conn.execute(query)]

    async def _steps(self, conn: Any, run_id: str) -> list[StepPublic]:
        rows = (
            await conn.execute(
                sa.select(run_steps)
                .where(run_steps.c.run_id == run_id)
                .order_by(run_steps.c.position)
            )
        ).all()
        return [_step_public(row) for row in rows]

    # Flows ------------------------------------------------------------------------------------

    async def list_flows(self) -> list[Flow]:
        async with self.engine.connect() as conn:
            definitions = await conn.scalars(
                sa.select(sa.cast(flows.c.definition, sa.Text)).order_by(flows.c.id)
            )
        return [_parsed_flow(definition) for definition in definitions]

    async def get_flow(self, flow_id: str) -> Flow:
        async with self.engine.connect() as conn:
            definition = await conn.scalar(
                sa.select(sa.cast(flows.c.definition, sa.Text)).where(flows.c.id == flow_id)
            )
        if definition is None:
            raise FlowNotFound(flow_id)
        return _parsed_flow(definition)

    async def put_flow(self, flow: Flow) -> bool:
        """Create or replace; True when it was created."""
        now = utcnow()
        definition = flow.model_dump(mode="json")
        async with self.engine.begin() as conn:
            result = await conn.execute(
                flows.update()
                .where(flows.c.id == flow.id)
                .values(definition=definition, updated_at=now)
            )
            if result.rowcount == 1:
                return False
            try:
                async with conn.begin_nested():
                    await conn.execute(
                        flows.insert().values(
                            id=flow.id, definition=definition, created_at=now, updated_at=now
                        )
                    )
            except IntegrityError:  # created by another replica in between: replace it
                await conn.execute(
                    flows.update().where(flows.c.id == flow.id).values(definition=definition)
                )
                return False
        return True

    async def delete_flow(self, flow_id: str) -> None:
        async with self.engine.begin() as conn:
            result = await conn.execute(flows.delete().where(flows.c.id == flow_id))
        if result.rowcount != 1:
            raise FlowNotFound(flow_id)

    # Source cursors ---------------------------------------------------------------------------
    # One row per inbound source: its cursor, and a lease so one hub process polls it at a time.

    async def claim_cursor(self, source_id: str, *, owner: str, lease: float) -> bool:
        """Take the source's lease, or renew it: True when ``owner`` holds it now. Taken only
        if free, expired or already ``owner``'s; the row is created on first claim."""
        now = utcnow()
        expires = now + timedelta(seconds=lease)
        takeable = sa.or_(
            source_cursors.c.lease_owner == owner,
            source_cursors.c.lease_expires_at.is_(None),
            source_cursors.c.lease_expires_at < now,
        )
        async with self.engine.begin() as conn:
            result = await conn.execute(
                source_cursors.update()
                .where(source_cursors.c.source_id == source_id, takeable)
                .values(lease_owner=owner, lease_expires_at=expires)
            )
            if result.rowcount == 1:
                return True
            try:
                async with conn.begin_nested():
                    await conn.execute(
                        source_cursors.insert().values(
                            source_id=source_id,
                            cursor=None,
                            lease_owner=owner,
                            lease_expires_at=expires,
                            updated_at=now,
                        )
                    )
            except IntegrityError:  # the row exists and another process holds a live lease
                return False
        return True

    async def get_cursor(self, source_id: str) -> dict[str, Any] | None:
        """The cursor last persisted for the source; None before its first poll."""
        async with self.engine.connect() as conn:
            cursor = await conn.scalar(
                sa.select(source_cursors.c.cursor).where(source_cursors.c.source_id == source_id)
            )
        return cursor if isinstance(cursor, dict) else None

    async def put_cursor(
        self, source_id: str, cursor: dict[str, Any], *, owner: str, lease: float
    ) -> bool:
        """Persist the cursor and renew the lease, only while ``owner`` holds it."""
        now = utcnow()
        async with self.engine.begin() as conn:
            result = await conn.execute(
                source_cursors.update()
                .where(
                    source_cursors.c.source_id == source_id,
                    source_cursors.c.lease_owner == owner,
                )
                .values(
                    cursor=cursor,
                    updated_at=now,
                    lease_expires_at=now + timedelta(seconds=lease),
                )
            )
        return result.rowcount == 1

    async def release_cursor(self, source_id: str, *, owner: str) -> None:
        """Give the lease up (at shutdown), so another process may poll the source at once."""
        async with self.engine.begin() as conn:
            await conn.execute(
                source_cursors.update()
                .where(
                    source_cursors.c.source_id == source_id,
                    source_cursors.c.lease_owner == owner,
                )
                .values(lease_owner=None, lease_expires_at=None)
            )

    # Schedule cursors -------------------------------------------------------------------------
    # One row per scheduled flow: the moment up to which its slots were fired or skipped.

    async def start_schedule(self, flow_id: str, *, at: datetime) -> datetime:
        """The moment up to which the flow's schedule was handled; a schedule without a row yet
        starts at ``at`` (the first replica to insert it wins)."""
        async with self.engine.begin() as conn:
            # Insert first: a write from the start takes SQLite's write lock at once, where a
            # read upgraded to a write could fail when another replica wrote in between.
            try:
                async with conn.begin_nested():
                    await conn.execute(
                        schedule_cursors.insert().values(
                            flow_id=flow_id, handled_until=at, updated_at=utcnow()
                        )
                    )
            except IntegrityError:
                handled: datetime = await conn.scalar(
                    sa.select(schedule_cursors.c.handled_until).where(
                        schedule_cursors.c.flow_id == flow_id
                    )
                )
                return handled
        return at

    async def advance_schedule(self, flow_id: str, *, to: datetime) -> None:
        """Move the cursor forward to ``to``; never back, and never creating the row (a
        schedule removed meanwhile stays removed)."""
        async with self.engine.begin() as conn:
            await conn.execute(
                schedule_cursors.update()
                .where(
                    schedule_cursors.c.flow_id == flow_id,
                    schedule_cursors.c.handled_until < to,
                )
                .values(handled_until=to, updated_at=utcnow())
            )

    async def forget_schedule(self, flow_id: str) -> None:
        """Drop the cursor of a schedule that was removed: one added again starts afresh."""
        async with self.engine.begin() as conn:
            await conn.execute(
                schedule_cursors.delete().where(schedule_cursors.c.flow_id == flow_id)
            )


async def _finish_step(conn: Any, run_id: str, step: StepOutcome, now: datetime) -> None:
    await conn.execute(
        run_steps.update()
        .where(run_steps.c.run_id == run_id, run_steps.c.step_id == step.step_id)
        .values(status=step.status, output=step.output, error=step.error, finished_at=now)
    )
    event = "step.retrying" if step.status == StepStatus.pending else f"step.{step.status}"
    await _history(conn, run_id, event, step_id=step.step_id, detail=step.error, at=now)


@functools.lru_cache(maxsize=1024)
def _parsed_flow(definition: str) -> Flow:
    """A stored flow definition, validated once per distinct text: validation checks its
    parameter schema and compiles its templates, which would otherwise cost more than the rest
    of a claim. Callers share the instance and must not change it."""
    return Flow.model_validate_json(definition)


async def _history(
    conn: Any,
    run_id: str,
    event: str,
    *,
    step_id: str | None = None,
    detail: str | None = None,
    at: datetime | None = None,
) -> None:
    await conn.execute(
        run_history.insert().values(
            run_id=run_id, at=at or utcnow(), event=event, step_id=step_id, detail=detail
        )
    )


def _step_public(row: Any) -> StepPublic:
    return StepPublic(
        id=row.step_id,
        status=row.status,
        attempts=row.attempts,
        output=row.output,
        error=row.error,
        started_at=row.started_at,
        finished_at=row.finished_at,
    )


def _run_public(row: Any, steps: list[StepPublic]) -> RunPublic:
    return RunPublic(
        run_id=row.id,
        flow_id=row.flow_id,
        status=row.status,
        parameters=row.parameters,
        steps=steps,
        error=row.error,
        deliveries=row.deliveries,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
    )


def _engine_options(url: str) -> dict[str, Any]:
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": 30}}
    return {"pool_size": 10, "max_overflow": 20, "pool_pre_ping": True}


def _tune_sqlite(engine: AsyncEngine) -> None:
    # WAL lets readers proceed during a write; busy_timeout makes concurrent writers (other
    # workers, another hub process on the same file) wait instead of failing.
    @sa.event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()
