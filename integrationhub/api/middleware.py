"""ASGI middleware: the request body limit and per-route request metrics."""

from __future__ import annotations

import time
from typing import Any

from fastapi.routing import iter_route_contexts
from prometheus_client import Histogram
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from integrationhub.api.errors import error_response

__all__ = ["BodySizeLimit", "RequestMetrics"]

REQUEST_SECONDS = Histogram(
    "integrationhub_http_request_duration_seconds",
    "HTTP requests by method, route template and status",
    ["method", "route", "status"],
)


class _TooLarge(HTTPException):
    # An HTTPException, so FastAPI's body parsing passes it on instead of answering 400.
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body is larger than {limit} bytes")


class BodySizeLimit:
    """Answer 413 to a body over ``max_body_bytes``, whether or not it announced its length,
    without reading more of it than the limit."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = scope["app"].state.hub.settings.max_body_bytes
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._reject(limit, scope, receive, send)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if started:
                raise
            await self._reject(limit, scope, receive, send)

    @staticmethod
    async def _reject(limit: int, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(
            413, "payload_too_large", f"request body is larger than {limit} bytes"
        )
        await response(scope, receive, send)


class RequestMetrics:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # Route -> its full template. A route of an included router knows only its own path
        # ("/trigger"); the app's route contexts know it with the prefix ("/api/v1/trigger").
        self._templates: dict[int, str] = {}

    def _template(self, scope: Scope) -> str:
        route: Any = scope.get("route")
        if route is None:
            return "unmatched"
        template = self._templates.get(id(route))
        if template is None:
            self._templates.update(
                (id(context.original_route), context.path_format or context.path or "")
                for context in iter_route_contexts(scope["app"].routes)
            )
            template = self._templates.get(id(route)) or getattr(route, "path", "unmatched")
            self._templates[id(route)] = template  # not looked for again
        return template

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            REQUEST_SECONDS.labels(scope["method"], self._template(scope), str(status)).observe(
                time.perf_counter() - started
            )
