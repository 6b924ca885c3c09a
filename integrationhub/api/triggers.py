"""Triggering flows: the agent tool's shape, and the per-flow path."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, status
from fastapi.responses import JSONResponse

from integrationhub.api.deps import HubDep
from integrationhub.models.flow import FlowId
from integrationhub.models.run import RunAccepted, RunPublic, TriggerParameters, TriggerRequest

router = APIRouter(tags=["triggers"])

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        description="Same key, same run: a retried request never starts a second run",
    ),
]
Wait = Annotated[
    float | None,
    Query(
        ge=0,
        le=300,
        description="Seconds to wait for the run to finish; 200 with the run "
        "if it does, 202 otherwise",
    ),
]
RESPONSES: dict[int | str, dict[str, object]] = {
    200: {"model": RunPublic, "description": "The run finished within `wait` seconds"},
    202: {"model": RunAccepted, "description": "The run is persisted and queued"},
}


async def _trigger(
    hub: HubDep,
    *,
    flow_id: str,
    parameters: dict[str, object],
    key: str | None,
    wait: float | None,
) -> JSONResponse:
    run, created = await hub.triggers.trigger(
        flow_id=flow_id, parameters=parameters, idempotency_key=key, source="http"
    )
    headers = {} if created else {"Idempotent-Replayed": "true"}
    if wait:
        run = await hub.triggers.wait(run.run_id, timeout=wait)
        if run.status.finished:
            return JSONResponse(run.model_dump(mode="json"), headers=headers)
    accepted = RunAccepted(run_id=run.run_id, status=run.status)
    return JSONResponse(
        accepted.model_dump(mode="json"), status_code=status.HTTP_202_ACCEPTED, headers=headers
    )


@router.post("/trigger", status_code=202, responses=RESPONSES, response_model=None)
async def trigger(
    hub: HubDep, body: TriggerRequest, idempotency_key: IdempotencyKey = None, wait: Wait = None
) -> JSONResponse:
    """Run a flow by id with JSON parameters: the shape AI agents call."""
    return await _trigger(
        hub, flow_id=body.flow_id, parameters=body.parameters, key=idempotency_key, wait=wait
    )


@router.post("/flows/{flow_id}/trigger", status_code=202, responses=RESPONSES, response_model=None)
async def trigger_flow(
    hub: HubDep,
    flow_id: FlowId,
    body: TriggerParameters,
    idempotency_key: IdempotencyKey = None,
    wait: Wait = None,
) -> JSONResponse:
    return await _trigger(
        hub, flow_id=flow_id, parameters=body.parameters, key=idempotency_key, wait=wait
    )
