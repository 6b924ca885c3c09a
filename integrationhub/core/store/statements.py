"""The run store's statements on the path of every run, built once.

Building a statement (coercing its arguments, computing its cache key) costs SQLAlchemy more
than executing it on SQLite; a statement built once keeps its cache key, and each call only
binds its values. Parameters are prefixed ``p_``: SQLAlchemy keeps column names for the values
of an INSERT or UPDATE.
"""

from __future__ import annotations

import sqlalchemy as sa

from integrationhub.core.schema import Json, UTCDateTime, flows, run_history, run_steps, runs
from integrationhub.models.run import RunStatus, StepStatus

__all__ = [
    "cancel_requested",
    "claim",
    "finish_run",
    "finish_step",
    "flow_definition",
    "insert_history",
    "insert_run",
    "insert_steps",
    "mark_enqueued",
    "renew",
    "start_step",
    "steps_of_run",
]

_run_id = sa.bindparam("p_run_id")
_step_id = sa.bindparam("p_step_id")
_owner = sa.bindparam("p_owner")
_now = sa.bindparam("p_now", type_=UTCDateTime)
_expires = sa.bindparam("p_expires", type_=UTCDateTime)

# The run, while ``p_owner`` holds its lease.
_held = (runs.c.id == _run_id, runs.c.lease_owner == _owner, runs.c.status == RunStatus.running)
_step = (run_steps.c.run_id == _run_id, run_steps.c.step_id == _step_id)

insert_run = runs.insert()
insert_steps = run_steps.insert()
insert_history = run_history.insert()

claim = (
    runs.update()
    .where(
        runs.c.id == _run_id,
        sa.or_(
            runs.c.status == RunStatus.queued,
            sa.and_(runs.c.status == RunStatus.running, runs.c.lease_expires_at < _now),
        ),
    )
    .values(
        status=RunStatus.running,
        lease_owner=_owner,
        lease_expires_at=_expires,
        deliveries=runs.c.deliveries + 1,
        started_at=sa.func.coalesce(runs.c.started_at, _now),
    )
    .returning(
        sa.cast(runs.c.flow, sa.Text).label("flow"),  # text: the key of the parsed-flow cache
        runs.c.parameters,
        runs.c.deliveries,
        runs.c.cancel_requested,
    )
)

steps_of_run = (
    sa.select(run_steps).where(run_steps.c.run_id == _run_id).order_by(run_steps.c.position)
)

renew = runs.update().where(*_held).values(lease_expires_at=_expires)

start_step = (
    run_steps.update()
    .where(*_step)
    .values(
        status=StepStatus.sending,
        attempts=sa.bindparam("p_attempts"),
        error=None,
        started_at=sa.func.coalesce(run_steps.c.started_at, _now),
    )
)

finish_step = (
    run_steps.update()
    .where(*_step)
    .values(
        status=sa.bindparam("p_status"),
        output=sa.bindparam("p_output", type_=Json),
        error=sa.bindparam("p_error"),
        finished_at=_now,
    )
)

finish_run = (
    runs.update()
    .where(*_held)
    .values(
        status=sa.bindparam("p_status"),
        error=sa.bindparam("p_error"),
        finished_at=_now,
        lease_owner=None,
        lease_expires_at=None,
    )
)

cancel_requested = sa.select(runs.c.cancel_requested).where(runs.c.id == _run_id)

mark_enqueued = (
    runs.update()
    .where(
        runs.c.id.in_(sa.bindparam("p_run_ids", expanding=True)),
        runs.c.status == RunStatus.queued,
        runs.c.deliveries == sa.bindparam("p_deliveries"),
    )
    .values(enqueued_at=_now)
)

flow_definition = sa.select(sa.cast(flows.c.definition, sa.Text)).where(
    flows.c.id == sa.bindparam("p_flow_id")
)
