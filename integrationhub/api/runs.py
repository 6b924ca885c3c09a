"""Runs: look them up, page through them, and act on them (retry, cancel)."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from integrationhub.api.deps import HubDep
from integrationhub.api.errors import ApiError
from integrationhub.models.run import RunEvent, RunPublic, RunStatus

router = APIRouter(prefix="/runs", tags=["runs"])


@router.get("/{run_id}", response_model=RunPublic)
async def get_run(hub: HubDep, run_id: str) -> RunPublic:
    return await hub.store.get_run(run_id)


@router.get("/{run_id}/history", response_model=list[RunEvent])
async def get_history(hub: HubDep, run_id: str) -> list[RunEvent]:
    """Every state change of the run, oldest first, with its time and cause."""
    return await hub.store.history(run_id)


@router.post("/{run_id}/retry", response_model=RunPublic, status_code=202)
async def retry_run(hub: HubDep, run_id: str) -> RunPublic:
    """Run a failed or cancelled run again from its failed step; steps that succeeded are
    not repeated. 409 for a run in any other state."""
    return await hub.triggers.retry(run_id)


@router.post("/{run_id}/cancel", response_model=RunPublic, status_code=202)
async def cancel_run(hub: HubDep, run_id: str) -> RunPublic:
    """Cancel a queued run now, or a running one when its current step ends."""
    return await hub.store.cancel(run_id)


@router.get("", response_model=list[RunPublic])
async def list_runs(
    hub: HubDep,
    request: Request,
    response: Response,
    flow_id: Annotated[str | None, Query(max_length=128)] = None,
    status: RunStatus | None = None,
    created_after: Annotated[datetime | None, Query(description="inclusive, ISO 8601")] = None,
    created_before: Annotated[datetime | None, Query(description="exclusive, ISO 8601")] = None,
    cursor: Annotated[str | None, Query(max_length=512, description="from a Link rel=next")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[RunPublic]:
    """Newest first. When more runs match, the ``Link`` header (rel="next") and
    ``X-Next-Cursor`` give the next page."""
    runs = await hub.store.list_runs(
        flow_id=flow_id,
        status=status,
        created_after=_aware(created_after),
        created_before=_aware(created_before),
        after=_decode(cursor) if cursor else None,
        limit=limit,
    )
    if len(runs) == limit:
        last = runs[-1]
        next_cursor = _encode(last.created_at, last.run_id)
        url = request.url.include_query_params(cursor=next_cursor)
        response.headers["Link"] = f'<{url}>; rel="next"'
        response.headers["X-Next-Cursor"] = next_cursor
    return runs


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ApiError(422, "validation_error", "times need a zone, e.g. 2026-11-26T12:00:00Z")
    return value


def _encode(created_at: datetime, run_id: str) -> str:
    raw = json.dumps([created_at.isoformat(), run_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, run_id = json.loads(raw)
        return datetime.fromisoformat(created_at), str(run_id)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise ApiError(400, "invalid_cursor", "cursor is not one this API gave out") from None
