"""Runs as workers and the sweeper handle them: published to the run queue, claimed under a
lease, stepped, finished or released; and found again when their message or worker was lost."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from integrationhub.core.schema import runs, utcnow
from integrationhub.core.store import statements
from integrationhub.core.store.connection import StoreConnection
from integrationhub.core.store.rows import _history, _parsed_flow
from integrationhub.models.flow import Flow
from integrationhub.models.run import RunStatus, StepPublic, StepStatus

__all__ = ["ClaimedRun", "LeasesMixin", "StepOutcome"]


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


class LeasesMixin(StoreConnection):
    if TYPE_CHECKING:  # RunsMixin's, beside this one in Store

        async def _steps(self, conn: Any, run_id: str) -> list[StepPublic]: ...

    async def mark_enqueued(
        self, run_ids: Collection[str], *, deliveries: int, at: datetime
    ) -> None:
        """Note that the runs' messages were published, so the sweeper leaves them be.

        Only runs still queued with the ``deliveries`` they had when published: a worker may
        have taken a run since, or given it back for the sweeper to publish (``release``).
        """
        async with self.engine.begin() as conn:
            await conn.execute(
                statements.mark_enqueued,
                {"p_run_ids": list(run_ids), "p_deliveries": deliveries, "p_now": at},
            )

    async def claim(self, run_id: str, *, owner: str, lease: float) -> ClaimedRun | None:
        """Take the run if it is queued, or running under an expired lease. None if it is
        finished, unknown, or another worker holds a live lease."""
        now = utcnow()
        async with self.engine.begin() as conn:
            row = (
                await conn.execute(
                    statements.claim,
                    {
                        "p_run_id": run_id,
                        "p_owner": owner,
                        "p_now": now,
                        "p_expires": now + timedelta(seconds=lease),
                    },
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
        expires = utcnow() + timedelta(seconds=lease)
        async with self.engine.begin() as conn:
            result = await conn.execute(
                statements.renew, {"p_run_id": run_id, "p_owner": owner, "p_expires": expires}
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
            expires = now + timedelta(seconds=lease)
            held = await conn.execute(
                statements.renew, {"p_run_id": run_id, "p_owner": owner, "p_expires": expires}
            )
            if held.rowcount != 1:
                return False
            await conn.execute(
                statements.start_step,
                {"p_run_id": run_id, "p_step_id": step_id, "p_attempts": attempt, "p_now": now},
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
                statements.finish_run,
                {
                    "p_run_id": run_id,
                    "p_owner": owner,
                    "p_status": status,
                    "p_error": error,
                    "p_now": now,
                },
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

    async def cancel_requested(self, run_id: str) -> bool:
        async with self.engine.connect() as conn:
            return bool(await conn.scalar(statements.cancel_requested, {"p_run_id": run_id}))

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


async def _finish_step(conn: Any, run_id: str, step: StepOutcome, now: datetime) -> None:
    await conn.execute(
        statements.finish_step,
        {
            "p_run_id": run_id,
            "p_step_id": step.step_id,
            "p_status": step.status,
            "p_output": step.output,
            "p_error": step.error,
            "p_now": now,
        },
    )
    event = "step.retrying" if step.status == StepStatus.pending else f"step.{step.status}"
    await _history(conn, run_id, event, step_id=step.step_id, detail=step.error, at=now)
