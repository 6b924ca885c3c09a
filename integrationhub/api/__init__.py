"""The HTTP API: one router per resource under ``/api/v1``, plus ``/health`` and ``/metrics``,
and the MCP endpoint at ``/mcp``."""

from __future__ import annotations

from fastapi import Depends, FastAPI

from integrationhub.api import (
    connectors,
    credentials,
    flows,
    health,
    mcp,
    runs,
    triggers,
    webhooks,
)
from integrationhub.api.deps import require_api_key
from integrationhub.api.errors import install_error_handlers
from integrationhub.api.middleware import BodySizeLimit, RequestMetrics

__all__ = ["install_routes"]

API_PREFIX = "/api/v1"


def install_routes(app: FastAPI) -> None:
    authenticated = [Depends(require_api_key)]
    for module in (triggers, runs, flows, credentials, connectors):
        app.include_router(module.router, prefix=API_PREFIX, dependencies=authenticated)
    # Signed webhooks authenticate by their signature; unsigned ones check the key themselves.
    app.include_router(webhooks.router, prefix=API_PREFIX)
    app.include_router(health.router)
    mcp.install(app)
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit)
    app.add_middleware(RequestMetrics)
