"""``POST /api/v1/webhooks/{flow_id}``: other systems trigger flows that opt in.

A signed webhook authenticates by its signature (no API key); an unsigned one needs the API
key. A replayed signed request returns the run it started the first time.
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from integrationhub.api.deps import HubDep, bearer, require_api_key
from integrationhub.api.errors import ApiError
from integrationhub.connectors.webhook import SignatureInvalid, WebhookSecret, verify
from integrationhub.core import templates
from integrationhub.errors import CredentialInvalid
from integrationhub.models.flow import FlowId, WebhookTrigger
from integrationhub.models.run import RunAccepted

router = APIRouter(tags=["webhooks"])


@router.post("/webhooks/{flow_id}", status_code=202, response_model=RunAccepted)
async def receive_webhook(hub: HubDep, flow_id: FlowId, request: Request) -> JSONResponse:
    flow = await hub.catalog.get(flow_id)
    hook = flow.trigger.webhook if flow.trigger else None
    if hook is None:
        raise ApiError(404, "webhook_not_found", f"flow {flow_id!r} has no webhook trigger")
    body = await request.body()
    headers = {name.lower(): value for name, value in request.headers.items()}
    if hook.signature and hook.secret:
        key = await _verified(hub, hook, headers, body)
    else:
        await require_api_key(hub, await bearer(request))
        key = headers.get("idempotency-key")
    payload = _parse(body, headers.get("content-type", ""))
    if hook.parameters is not None:
        context = {"body": payload, "headers": headers, "query": dict(request.query_params)}
        parameters = templates.render(hook.parameters, context)
    else:
        parameters = payload
    if not isinstance(parameters, dict):
        raise ApiError(422, "parameters_invalid", "the webhook's parameters must be an object")
    run, created = await hub.triggers.trigger(
        flow_id=flow_id,
        parameters=parameters,
        idempotency_key=f"webhook:{flow_id}:{key}" if key else None,
        source="webhook",
    )
    return JSONResponse(
        RunAccepted(run_id=run.run_id, status=run.status).model_dump(mode="json"),
        status_code=202,
        headers={} if created else {"Idempotent-Replayed": "true"},
    )


async def _verified(hub: HubDep, hook: WebhookTrigger, headers: dict[str, str], body: bytes) -> str:
    assert hook.signature is not None and hook.secret is not None
    stored = await hub.credentials.read(hook.secret)
    if stored.metadata.type != WebhookSecret.type:
        raise CredentialInvalid(f"credential {hook.secret!r} is not a {WebhookSecret.type}")
    secret = WebhookSecret.model_validate(stored.data).secret.get_secret_value()
    try:
        return verify(
            hook.signature,
            secret=secret,
            headers=headers,
            body=body,
            now=time.time(),
            max_age=hook.max_age,
        )
    except SignatureInvalid as exc:
        raise ApiError(401, exc.code, exc.message) from None


def _parse(body: bytes, content_type: str) -> Any:
    media_type = content_type.split(";")[0].strip().lower()
    try:
        if media_type == "application/x-www-form-urlencoded":
            return dict(parse_qsl(body.decode(), keep_blank_values=True))
        return json.loads(body) if body else {}
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ApiError(400, "malformed_body", "webhook body is neither JSON nor a form") from None
