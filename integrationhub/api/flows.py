"""Flow definitions, in JSON or (with ``Content-Type: application/yaml``) YAML."""

from __future__ import annotations

import json
from typing import Any

import yaml
from fastapi import APIRouter, Request, Response, status

from integrationhub.api.deps import HubDep
from integrationhub.api.errors import ApiError
from integrationhub.core.catalog import parse_flow
from integrationhub.models.flow import Flow, FlowId, FlowPublic

router = APIRouter(prefix="/flows", tags=["flows"])

YAML_TYPES = {"application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml"}


@router.get("", response_model=list[FlowPublic])
async def list_flows(hub: HubDep) -> list[FlowPublic]:
    return await hub.catalog.list()


@router.get("/{flow_id}", response_model=FlowPublic)
async def get_flow(hub: HubDep, flow_id: FlowId) -> FlowPublic:
    return await hub.catalog.get(flow_id)


@router.put(
    "/{flow_id}",
    response_model=FlowPublic,
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {"schema": Flow.model_json_schema()},
                "application/yaml": {"schema": {"type": "string"}},
            },
            "required": True,
        }
    },
)
async def put_flow(
    hub: HubDep, flow_id: FlowId, request: Request, response: Response
) -> FlowPublic:
    """Create or replace a flow; 201 when it is new."""
    data = _parse(await request.body(), request.headers.get("content-type", ""))
    if not isinstance(data, dict):
        raise ApiError(422, "flow_invalid", "a flow definition must be an object")
    data.setdefault("id", flow_id)
    if data["id"] != flow_id:
        raise ApiError(
            422, "flow_invalid", f"the body's id {data['id']!r} differs from the path's {flow_id!r}"
        )
    flow, created = await hub.catalog.put(parse_flow(data, origin=f"flow {flow_id!r}"))
    await hub.topic_triggers.reconcile()
    hub.schedules.reload()
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return flow


@router.delete("/{flow_id}", status_code=204)
async def delete_flow(hub: HubDep, flow_id: FlowId) -> None:
    await hub.catalog.delete(flow_id)
    await hub.topic_triggers.reconcile()
    hub.schedules.reload()


def _parse(body: bytes, content_type: str) -> Any:
    media_type = content_type.split(";")[0].strip().lower()
    try:
        if media_type in YAML_TYPES:
            return yaml.safe_load(body)
        return json.loads(body)
    except yaml.YAMLError as exc:
        raise ApiError(400, "malformed_yaml", f"request body is not valid YAML: {exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(400, "malformed_json", "request body is not valid JSON") from None
