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
from integrationhub.core.store.connection import StoreConnection, transaction
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

        def _steps(self, conn: sa.Connection, run_id: str) -> list[StepPublic]: ...

    @transaction
    def mark_enqueued(
        self, conn: sa.Connection, run_ids: Collection[str], *, deliveries: int, at: datetime
    ) -> None:
        """Note that the runs' messages were published, so the sweeper leaves them be.

        Only runs still queued with the ``deliveries`` they had when published: a worker may
        have taken a run since, or given it back for the sweeper to publish (``release``).
        """
        conn.execute(
            statements.mark_enqueued,
            {"p_run_ids": list(run_ids), "p_deliveries": deliveries, "p_now": at},
        )

    @transaction
    def claim(
        self, conn: sa.Connection, run_id: str, *, owner: str, lease: float
    ) -> ClaimedRun | None:
        """Take the run if it is queued, or running under an expired lease. None if it is
        finished, unknown, or another worker holds a live lease."""
        now = utcnow()
        row = conn.execute(
            statements.claim,
            {
                "p_run_id": run_id,
                "p_owner": owner,
                "p_now": now,
                "p_expires": now + timedelta(seconds=lease),
            },
        ).one_or_none()
        if row is None:
            return None
        steps = self._steps(conn, run_id)
        _history(
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

    @transaction
    def renew(self, conn: sa.Connection, run_id: str, *, owner: str, lease: float) -> bool:
        expires = utcnow() + timedelta(seconds=lease)
        result = conn.execute(
            statements.renew, {"p_run_id": run_id, "p_owner": owner, "p_expires": expires}
        )
        return result.rowcount == 1

    @transaction
    def start_step(
        self,
        conn: sa.Connection,
        run_id: str,
        step_id: str,
        *,
        attempt: int,
        owner: str,
        lease: float,
    ) -> bool:
        """Mark the step ``sending`` before its call: from here its effect may have happened.

        Only while ``owner`` still holds the run (its lease is renewed in the same
        transaction); False when another worker has taken it over after the lease expired,
        and the caller must not make the call: the run, and this step, are the other's now.
        """
        now = utcnow()  # in the transaction: after any wait for the store, which may be long
        expires = now + timedelta(seconds=lease)
        held = conn.execute(
            statements.renew, {"p_run_id": run_id, "p_owner": owner, "p_expires": expires}
        )
        if held.rowcount != 1:
            return False
        conn.execute(
            statements.start_step,
            {"p_run_id": run_id, "p_step_id": step_id, "p_attempts": attempt, "p_now": now},
        )
        _history(conn, run_id, "step.sending", step_id=step_id, detail=f"attempt {attempt}", at=now)
        return True

    @transaction
    def finish_step(
        self,
        conn: sa.Connection,
        run_id: str,
        step: StepOutcome,
        *,
        owner: str,
        lease: float,
    ) -> bool:
        """Record a step's outcome (the run goes on), only while ``owner`` still holds the run;
        its lease is renewed in the same transaction. False when another worker has taken it
        over: the step is the other's to record."""
        now = utcnow()
        held = conn.execute(
            statements.renew,
            {"p_run_id": run_id, "p_owner": owner, "p_expires": now + timedelta(seconds=lease)},
        )
        if held.rowcount != 1:
            return False
        _finish_step(conn, run_id, step, now)
        return True

    @transaction
    def finish_run(
        self,
        conn: sa.Connection,
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
        result = conn.execute(
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
                _finish_step(conn, run_id, last_step, now)
            _history(conn, run_id, str(status), detail=error, at=now)
        return result.rowcount == 1

    @transaction
    def release(self, conn: sa.Connection, run_id: str, *, owner: str, reason: str) -> None:
        """Give a claimed run back: queued and unpublished, so the sweeper queues it again."""
        result = conn.execute(
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
            _history(conn, run_id, "released", detail=reason)

    @transaction
    def cancel_requested(self, conn: sa.Connection, run_id: str) -> bool:
        return bool(conn.scalar(statements.cancel_requested, {"p_run_id": run_id}))

    @transaction
    def runs_to_publish(
        self, conn: sa.Connection, *, unpublished_for: float, requeue_after: float, limit: int = 500
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
        return [(row.id, row.deliveries) for row in conn.execute(query)]


def _finish_step(conn: sa.Connection, run_id: str, step: StepOutcome, now: datetime) -> None:
    conn.execute(
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
    _history(conn, run_id, event, step_id=step.step_id, detail=step.error, at=now)
