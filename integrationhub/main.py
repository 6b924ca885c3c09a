"""The app factory and its lifespan: settings, engines, store, vault, bus, workers.

``uvicorn integrationhub.main:app`` and ``integrationhub serve`` both serve ``app``; tests build
their own with ``create_app(settings)``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from integrationhub.api import install_routes, mcp
from integrationhub.hub import Hub
from integrationhub.settings import Settings

__all__ = ["app", "create_app"]


def create_app(settings: Settings | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        hub = await Hub.start(settings or Settings())
        app.state.hub = hub
        try:
            async with mcp.serving(app):
                yield
        finally:
            await hub.stop()

    app = FastAPI(
        title="IntegrationHub",
        version="0.1.0",
        summary="Connectors, credentials in Vault, durable flow runs on Pulsar",
        lifespan=lifespan,
    )
    install_routes(app)
    return app


app = create_app()
