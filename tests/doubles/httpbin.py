"""An httpbin-like HTTP API with an OAuth 2 server, for the framework's HTTP, auth and rate-limit
tests. A real server on 127.0.0.1 (``LocalServer``), so the hub's guarded client runs its real
connect path::

    with HttpBin() as bin:
        bin.url                                # http://127.0.0.1:PORT
        bin.requests[-1].headers               # every request as it arrived
        bin.answer_next("/anything", 429, headers={"Retry-After": "1"})
        bin.oauth.refreshes                    # token endpoint calls, by grant

Endpoints:
    ANY  /anything[/...]        echo: method, path, query, headers, json, form, data
    ANY  /status/{code}         that status, JSON body {"status": code}
    GET  /redirect-to?url=&status_code=   a redirect
    GET  /bytes/{n}             n bytes, streamed without Content-Length
    GET  /gzip/{n}              n zero bytes, gzip-encoded (tiny on the wire)
    GET  /text                  text/plain
    POST /oauth/token           client_credentials and refresh_token grants (RFC 6749)
    ANY  /oauth/resource        200 with a valid bearer token, else 401
"""

from __future__ import annotations

import base64
import gzip
import hmac
import itertools
import threading
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route

from tests.doubles.server import LocalServer

__all__ = ["HttpBin", "OAuthServer", "Recorded"]


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() on arrival


@dataclass
class OAuthServer:
    """The token endpoint's state: one client, its tokens, and what it was asked."""

    client_id: str = "hub-client"
    client_secret: str = "s3cret-client"
    refresh_token: str = "rt-0"
    lifetime: int = 3600
    grants: list[str] = field(default_factory=list)  # grant_type of each token request
    valid: set[str] = field(default_factory=set)  # access tokens the resource accepts
    _numbers: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def refreshes(self) -> int:
        return self.grants.count("refresh_token")

    def revoke_all(self) -> None:
        self.valid.clear()

    def issue(self) -> str:
        token = f"at-{next(self._numbers)}"
        self.valid.add(token)
        return token


class HttpBin:
    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.oauth = OAuthServer()
        self._canned: dict[str, deque[Response]] = {}
        self._lock = threading.Lock()
        self._server = LocalServer(self._app())
        self.url = ""

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self._canned.clear()
        self.oauth = OAuthServer()

    def answer_next(
        self,
        path: str,
        status: int,
        *,
        count: int = 1,
        headers: dict[str, str] | None = None,
        body: Any = None,
    ) -> None:
        """The next ``count`` requests to ``path`` get this answer instead of the usual one."""
        with self._lock:
            queue = self._canned.setdefault(path, deque())
            for _ in range(count):
                queue.append(JSONResponse(body or {"status": status}, status, headers=headers))

    def to(self, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.path == path]

    def __enter__(self) -> HttpBin:
        self.url = self._server.__enter__()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.__exit__(*exc_info)

    # -- the app

    def _app(self) -> Starlette:
        methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
        return Starlette(
            routes=[
                Route("/anything", self._anything, methods=methods),
                Route("/anything/{rest:path}", self._anything, methods=methods),
                Route("/status/{code:int}", self._status, methods=methods),
                Route("/redirect-to", self._redirect, methods=methods),
                Route("/bytes/{n:int}", self._bytes),
                Route("/gzip/{n:int}", self._gzip),
                Route("/text", self._text),
                Route("/oauth/token", self._token, methods=["POST"]),
                Route("/oauth/resource", self._resource, methods=methods),
            ]
        )

    async def _record(self, request: Request) -> tuple[Recorded, Response | None]:
        recorded = Recorded(
            method=request.method,
            path=request.url.path,
            query=dict(request.query_params),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=await request.body(),
            at=time.monotonic(),
        )
        with self._lock:
            self.requests.append(recorded)
            canned = self._canned.get(recorded.path)
            answer = canned.popleft() if canned else None
        return recorded, answer

    async def _anything(self, request: Request) -> Response:
        recorded, canned = await self._record(request)
        if canned is not None:
            return canned
        content_type = recorded.headers.get("content-type", "")
        echo: dict[str, Any] = {
            "method": recorded.method,
            "path": recorded.path,
            "query": [list(pair) for pair in request.query_params.multi_items()],
            "headers": recorded.headers,
            "json": None,
            "form": None,
            "data": recorded.body.decode("utf-8", "replace"),
        }
        if content_type.startswith("application/json") and recorded.body:
            echo["json"] = await request.json()
        if content_type.startswith("application/x-www-form-urlencoded"):
            echo["form"] = dict(parse_qsl(recorded.body.decode(), keep_blank_values=True))
        if recorded.method == "HEAD":
            return Response(status_code=200, headers={"X-Echo": "head"})
        return JSONResponse(echo)

    async def _status(self, request: Request) -> Response:
        recorded, canned = await self._record(request)
        if canned is not None:
            return canned
        code = request.path_params["code"]
        headers = {}
        if "retry_after" in recorded.query:
            headers["Retry-After"] = recorded.query["retry_after"]
        return JSONResponse({"status": code}, code, headers=headers)

    async def _redirect(self, request: Request) -> Response:
        recorded, _ = await self._record(request)
        status = int(recorded.query.get("status_code", "302"))
        return RedirectResponse(recorded.query["url"], status_code=status)

    async def _bytes(self, request: Request) -> Response:
        await self._record(request)
        n = request.path_params["n"]

        async def chunks() -> AsyncIterator[bytes]:
            for start in range(0, n, 64 * 1024):
                yield b"x" * min(64 * 1024, n - start)

        return StreamingResponse(chunks(), media_type="application/octet-stream")

    async def _gzip(self, request: Request) -> Response:
        await self._record(request)
        body = gzip.compress(b"\0" * request.path_params["n"], compresslevel=9)
        return Response(body, headers={"Content-Encoding": "gzip"}, media_type="text/plain")

    async def _text(self, request: Request) -> Response:
        await self._record(request)
        return PlainTextResponse("plain words")

    # -- OAuth 2

    async def _token(self, request: Request) -> Response:
        recorded, canned = await self._record(request)
        if canned is not None:
            return canned
        form = dict(parse_qsl(recorded.body.decode()))
        client_id, secret = _basic(recorded.headers.get("authorization", ""))
        client_id = client_id or form.get("client_id")
        secret = secret or form.get("client_secret")
        oauth = self.oauth
        grant = form.get("grant_type", "")
        oauth.grants.append(grant)
        if client_id != oauth.client_id or not hmac.compare_digest(
            secret or "", oauth.client_secret
        ):
            return JSONResponse({"error": "invalid_client"}, 401)
        if grant == "refresh_token":
            if form.get("refresh_token") != oauth.refresh_token:
                return JSONResponse(
                    {"error": "invalid_grant", "error_description": "refresh token unknown"}, 400
                )
            oauth.refresh_token = f"rt-{len(oauth.grants)}"  # rotated, as many servers do
            return JSONResponse(
                {
                    "access_token": oauth.issue(),
                    "token_type": "Bearer",
                    "expires_in": oauth.lifetime,
                    "refresh_token": oauth.refresh_token,
                }
            )
        if grant == "client_credentials":
            return JSONResponse(
                {"access_token": oauth.issue(), "token_type": "bearer", "expires_in": 300}
            )
        return JSONResponse({"error": "unsupported_grant_type"}, 400)

    async def _resource(self, request: Request) -> Response:
        recorded, canned = await self._record(request)
        if canned is not None:
            return canned
        scheme, _, token = recorded.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or token not in self.oauth.valid:
            return JSONResponse(
                {"error": "invalid_token"}, 401, headers={"WWW-Authenticate": "Bearer"}
            )
        return JSONResponse({"token": token})


def _basic(header: str) -> tuple[str | None, str | None]:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None, None
    user, _, password = base64.b64decode(encoded).decode().partition(":")
    return user, password
