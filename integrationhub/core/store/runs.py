"""Runs as the API sees them: created (once per idempotency key), read, listed, cancelled,
retried, and deleted once finished long enough."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from integrationhub.core.schema import run_history, run_steps, runs, utcnow
from integrationhub.core.store import statements
from integrationhub.core.store.connection import StoreConnection, transaction
from integrationhub.core.store.rows import _history, _run_public, _step_public
from integrationhub.errors import IdempotencyConflict, RunNotFound, RunStateConflict
from integrationhub.models.flow import Flow
from integrationhub.models.run import RunEvent, RunPublic, RunStatus, StepPublic, StepStatus

__all__ = ["RunsMixin"]


class RunsMixin(StoreConnection):
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
            await self._insert_run(run_id, flow, parameters, idempotency_key, source, now)
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

    @transaction
    def _insert_run(
        self,
        conn: sa.Connection,
        run_id: str,
        flow: Flow,
        parameters: dict[str, Any],
        idempotency_key: str | None,
        source: str,
        now: datetime,
    ) -> None:
        conn.execute(
            statements.insert_run,
            {
                "id": run_id,
                "flow_id": flow.id,
                "status": RunStatus.queued,
                "parameters": parameters,
                "flow": flow.model_dump(mode="json", include=set(Flow.model_fields)),
                "idempotency_key": idempotency_key,
                "deliveries": 0,
                "created_at": now,
            },
        )
        conn.execute(
            statements.insert_steps,
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
        _history(conn, run_id, "queued", detail=f"triggered via {source}", at=now)

    async def _run_by_key(self, key: str) -> RunPublic:
        run_id = await self.transaction(
            lambda conn: conn.scalar(sa.select(runs.c.id).where(runs.c.idempotency_key == key))
        )
        return await self.get_run(run_id)

    async def cancel(self, run_id: str) -> RunPublic:
        """A queued run is cancelled at once; a running one when its current step ends."""
        if not await self._cancel(run_id):
            run = await self.get_run(run_id)
            raise RunStateConflict(
                f"run {run_id} is {run.status}; only queued or running runs can be cancelled"
            )
        return await self.get_run(run_id)

    @transaction
    def _cancel(self, conn: sa.Connection, run_id: str) -> bool:
        now = utcnow()
        queued = conn.execute(
            runs.update()
            .where(runs.c.id == run_id, runs.c.status == RunStatus.queued)
            .values(
                status=RunStatus.cancelled, finished_at=now, error="cancelled before it started"
            )
        )
        running = conn.execute(
            runs.update()
            .where(runs.c.id == run_id, runs.c.status == RunStatus.running)
            .values(cancel_requested=True)
        )
        if not (queued.rowcount or running.rowcount):
            return False
        event = "cancelled" if queued.rowcount else "cancel_requested"
        _history(conn, run_id, event, detail="through the API", at=now)
        return True

    async def retry(self, run_id: str) -> RunPublic:
        """Queue a failed or cancelled run again from its first unfinished step: steps that
        succeeded keep their output, and steps that were skipped stay so; neither is repeated."""
        if not await self._retry(run_id):
            run = await self.get_run(run_id)
            raise RunStateConflict(
                f"run {run_id} is {run.status}; only failed or cancelled runs can be retried"
            )
        return await self.get_run(run_id)

    @transaction
    def _retry(self, conn: sa.Connection, run_id: str) -> bool:
        result = conn.execute(
            runs.update()
            .where(runs.c.id == run_id, runs.c.status.in_([RunStatus.failed, RunStatus.cancelled]))
            .values(
                status=RunStatus.queued,
                error=None,
                finished_at=None,
                cancel_requested=False,
                enqueued_at=None,
            )
        )
        if result.rowcount != 1:
            return False
        # A person decided: a step whose outcome was unknown is repeated too.
        conn.execute(
            run_steps.update()
            .where(
                run_steps.c.run_id == run_id,
                run_steps.c.status.not_in([StepStatus.succeeded, StepStatus.skipped]),
            )
            .values(status=StepStatus.pending, attempts=0, error=None, finished_at=None)
        )
        _history(conn, run_id, "retried", detail="through the API", at=utcnow())
        return True

    @transaction
    def get_run(self, conn: sa.Connection, run_id: str) -> RunPublic:
        row = conn.execute(sa.select(runs).where(runs.c.id == run_id)).one_or_none()
        if row is None:
            raise RunNotFound(run_id)
        return _run_public(row, self._steps(conn, run_id))

    @transaction
    def history(self, conn: sa.Connection, run_id: str) -> list[RunEvent]:
        if conn.scalar(sa.select(runs.c.id).where(runs.c.id == run_id)) is None:
            raise RunNotFound(run_id)
        rows = conn.execute(
            sa.select(run_history).where(run_history.c.run_id == run_id).order_by(run_history.c.id)
        )
        return [RunEvent(at=r.at, event=r.event, step_id=r.step_id, detail=r.detail) for r in rows]

    @transaction
    def list_runs(
        self,
        conn: sa.Connection,
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
        rows = conn.execute(query).all()
        ids = [row.id for row in rows]
        step_rows = conn.execute(
            sa.select(run_steps).where(run_steps.c.run_id.in_(ids)).order_by(run_steps.c.position)
        ).all()
        by_run: dict[str, list[StepPublic]] = {run_id: [] for run_id in ids}
        for step in step_rows:
            by_run[step.run_id].append(_step_public(step))
        return [_run_public(row, by_run[row.id]) for row in rows]

    @transaction
    def delete_finished(self, conn: sa.Connection, *, before: datetime, batch: int) -> int:
        """Delete up to ``batch`` runs that finished before ``before`` (steps and history go
        with them). Small batches keep each transaction, and its locks, short."""
        ids = conn.scalars(
            sa.select(runs.c.id)
            .where(runs.c.finished_at < before)
            .order_by(runs.c.finished_at)
            .limit(batch)
        ).all()
        if not ids:
            return 0
        # Explicit child deletes: SQLite enforces ON DELETE CASCADE only per connection.
        conn.execute(run_history.delete().where(run_history.c.run_id.in_(ids)))
        conn.execute(run_steps.delete().where(run_steps.c.run_id.in_(ids)))
        conn.execute(runs.delete().where(runs.c.id.in_(ids)))
        return len(ids)

    def _steps(self, conn: sa.Connection, run_id: str) -> list[StepPublic]:
        rows = conn.execute(statements.steps_of_run, {"p_run_id": run_id})
        return [_step_public(row) for row in rows]
