from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from integrationhub.api.deps import HubDep
from integrationhub.models.run import RunPublic, RunStatus

router = APIRouter(prefix="/runs", tags=["runs"])


@router.get("/{run_id}", response_model=RunPublic)
async def get_run(hub: HubDep, run_id: str) -> RunPublic:
    return await hub.store.get_run(run_id)


@router.get("", response_model=list[RunPublic])
async def list_runs(
    hub: HubDep,
    flow_id: Annotated[str | None, Query(max_length=128)] = None,
    status: RunStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[RunPublic]:
    """Newest first."""
    return await hub.store.list_runs(flow_id=flow_id, status=status, limit=limit)
