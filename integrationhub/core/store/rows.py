"""What the store's parts share: stored rows turned into models, and a run's history."""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from integrationhub.core.schema import utcnow
from integrationhub.core.store import statements
from integrationhub.models.flow import Flow
from integrationhub.models.run import RunPublic, StepPublic

__all__ = ["_history", "_parsed_flow", "_run_public", "_step_public"]


@functools.lru_cache(maxsize=1024)
def _parsed_flow(definition: str) -> Flow:
    """A stored flow definition, validated once per distinct text: validation checks its
    parameter schema and compiles its templates, which would otherwise cost more than the rest
    of a claim. Callers share the instance and must not change it."""
    return Flow.model_validate_json(definition)


def _history(
    conn: Any,
    run_id: str,
    event: str,
    *,
    step_id: str | None = None,
    detail: str | None = None,
    at: datetime | None = None,
) -> None:
    conn.execute(
        statements.insert_history,
        {
            "run_id": run_id,
            "at": at or utcnow(),
            "event": event,
            "step_id": step_id,
            "detail": detail,
        },
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
