"""``/mcp``: the API key check, then the SDK's Streamable HTTP session manager."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from integrationhub.api.deps import check_api_key
from integrationhub.api.errors import ApiError, error_response
from integrationhub.api.mcp.tools import build_server
from integrationhub.hub import Hub

__all__ = ["PATH", "McpEndpoint", "install", "serving"]

PATH = "/mcp"


class McpEndpoint:
    """The ASGI app at ``/mcp``: the API key check, then the SDK's session manager.

    The manager runs once per app lifespan (``serving``); the SDK allows one ``run()`` per
    manager, so each lifespan builds its own.
    """

    def __init__(self, app: FastAPI) -> None:
        self._app = app
        self._manager: StreamableHTTPSessionManager | None = None

    def _hub(self) -> Hub:
        return self._app.state.hub  # type: ignore[no-any-return]

    @asynccontextmanager
    async def run(self) -> AsyncIterator[None]:
        """Serve MCP until the block ends. The SDK's manager holds an anyio task group, whose
        scope must be left by the task that entered it; a lifespan may be entered and left by
        different tasks (pytest-asyncio fixtures are), so the manager runs in a task of its own.
        """
        manager = StreamableHTTPSessionManager(
            app=build_server(self._hub),
            stateless=True,
            json_response=True,
            # The SDK's DNS-rebinding guard checks Host and Origin for servers that trust
            # anyone who can reach them. This endpoint needs an API key that a rebound page
            # cannot have, and the hub is served under whatever host name operators choose.
            security_settings=TransportSecuritySettings(enable_dns_rebinding_protection=False),
            max_request_body_size=self._hub().settings.max_body_bytes,
        )
        started, stop = asyncio.Event(), asyncio.Event()

        async def serve() -> None:
            async with manager.run():
                started.set()
                await stop.wait()

        task = asyncio.create_task(serve(), name="mcp.session-manager")
        waiting = asyncio.create_task(started.wait())
        await asyncio.wait({task, waiting}, return_when=asyncio.FIRST_COMPLETED)
        if task.done():  # it failed to start: raise its error here
            waiting.cancel()
            task.result()
        self._manager = manager
        try:
            yield
        finally:
            self._manager = None
            stop.set()
            await task

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        manager = self._manager
        if manager is None:
            response = error_response(503, "unavailable", "the MCP endpoint is not running")
            await response(scope, receive, send)
            return
        try:
            check_api_key(self._hub(), _bearer(scope))
        except ApiError as exc:
            await error_response(exc.status, exc.code, exc.message, exc.headers)(
                scope, receive, send
            )
            return
        await manager.handle_request(scope, receive, send)


def _bearer(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" and token.strip() else None
    return None


def install(app: FastAPI) -> None:
    endpoint = McpEndpoint(app)
    app.state.mcp = endpoint
    app.router.routes.append(Route(PATH, endpoint=endpoint, include_in_schema=False))


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[None]:
    """Run the endpoint's session manager for the app's lifespan (after the hub started)."""
    endpoint: McpEndpoint = app.state.mcp
    async with endpoint.run():
        yield
