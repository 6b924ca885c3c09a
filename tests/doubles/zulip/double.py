"""The double itself: a Zulip organisation with one bot, some users and streams, served over
real HTTP, checking every request and every answer against the spec."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hmac
import itertools
import re
import socket
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any, Literal
from urllib.parse import parse_qsl

import uvicorn
from openapi_core.contrib.starlette.requests import StarletteOpenAPIRequest
from openapi_core.validation.request.exceptions import SecurityValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from tests.doubles.violations import Violation, describe
from tests.doubles.zulip import messages, reactions, uploads
from tests.doubles.zulip.limits import RateLimitWindow
from tests.doubles.zulip.queues import EventQueues
from tests.doubles.zulip.records import Call, Reaction, RecordedRequest, Upload
from tests.doubles.zulip.shapes import zulip_error, zulip_message
from tests.doubles.zulip.spec import FEATURE_LEVEL, answer_errors, zulip_openapi

__all__ = ["ZulipDouble"]

Operation = Callable[["ZulipDouble", Call], Awaitable[Response]]
_OPERATIONS: dict[tuple[str, str], Operation] = {
    ("POST", "/messages"): messages.send_message,
    ("POST", "/register"): messages.register_queue,
    ("GET", "/events"): messages.get_events,
    ("POST", "/messages/{message_id}/reactions"): reactions.add_reaction,
    ("DELETE", "/messages/{message_id}/reactions"): reactions.remove_reaction,
    ("POST", "/user_uploads"): uploads.upload_file,
}
_ROUTES = [
    (method, re.compile("/api/v1" + re.sub(r"\{\w+\}", "[^/]+", template)), operation)
    for (method, template), operation in _OPERATIONS.items()
]


class ZulipDouble:
    """A Zulip organisation with one bot, some users and streams, served over real HTTP."""

    def __init__(
        self,
        *,
        email: str = "hub-bot@example.com",
        api_key: str = "double-api-key-0123456789abcdef",
        user_id: int = 10,
        streams: dict[str, int] | None = None,
        users: dict[str, int] | None = None,
        longpoll_timeout: float = 0.5,
    ) -> None:
        self.email = email
        self.api_key = api_key
        self.user_id = user_id
        self._organisation = (
            dict(streams or {"general": 1, "announce": 2}),
            {email: user_id, **(users or {"alice@example.com": 11, "bob@example.com": 12})},
            longpoll_timeout,
        )
        self._arrived = threading.Condition()
        self._message_ids = itertools.count(100)
        self.queues = EventQueues()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self._ready = threading.Event()
        self.url = ""
        self.reset()

    def reset(self) -> None:
        """Forget every request, violation, message, reaction, upload, fault, limit and queue,
        and restore the organisation as constructed: one server can then serve many tests."""
        self.queues.clear()
        streams, users, longpoll_timeout = self._organisation
        self.streams = dict(streams)
        self.users = dict(users)
        self.longpoll_timeout = longpoll_timeout
        self.feature_level = FEATURE_LEVEL  # lower it to play an older server
        self.max_upload_mib = 25  # Zulip's default MAX_FILE_UPLOAD_SIZE
        self.requests: list[RecordedRequest] = []
        self.violations: list[Violation] = []
        self.messages: list[dict[str, Any]] = []  # every message the double accepted
        self.known_messages: dict[int, dict[str, Any]] = {}  # sent or pushed: the bot sees them
        self.reactions: list[Reaction] = []
        self.uploads: list[Upload] = []
        self._faults: deque[Callable[[], Response]] = deque()
        self._limit: RateLimitWindow | None = None

    # -- what tests tell the double

    def limit_requests(
        self, limit: int, *, window: float = 60.0, whole_second_reset: bool = True
    ) -> RateLimitWindow:
        """From now on, count requests as Zulip's rate limiter does: every answer carries
        ``X-RateLimit-Limit``/``-Remaining``/``-Reset``, and a request over ``limit`` in
        ``window`` seconds is answered 429 ``RATE_LIMIT_HIT`` (see ``limits.py``)."""
        self._limit = RateLimitWindow(limit, window, whole_second_reset=whole_second_reset)
        return self._limit

    def rate_limit_next(
        self, count: int = 1, *, retry_after: float = 1.5, header: bool = True
    ) -> None:
        """Answer the next ``count`` requests 429 as Zulip does: ``retry-after`` in the body
        (fractional seconds) and, unless ``header=False``, the ``Retry-After`` header."""

        def answer() -> Response:
            return _rate_limited(
                retry_after,
                {
                    "X-RateLimit-Limit": "200",
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": str(int(time.time() + retry_after)),
                },
                header=header,
            )

        self._faults.extend([answer] * count)

    def fail_next(self, count: int = 1, *, status: int = 500) -> None:
        """Answer the next ``count`` requests with a bare server error, as a proxy would."""
        if status < 500:
            raise ValueError("fail_next is for 5xx; use the organisation's data for 4xx")
        self._faults.extend([lambda: PlainTextResponse("Internal Server Error", status)] * count)

    def answer_next(
        self, status: int, body: bytes, *, content_type: str = "text/html; charset=utf-8"
    ) -> None:
        """Answer the next request with these bytes, unchecked: what a broken server, a proxy
        or a captive portal might send instead of Zulip's JSON."""
        self._faults.append(lambda: Response(body, status, media_type=content_type))

    def push_event(self, event: dict[str, Any], *, queue_id: str | None = None) -> None:
        """Add an event (its ``id`` is set here) to one queue, or to every live queue that
        registered for its type, and wake the long-polls waiting on them."""
        self.queues.push(event, queue_id=queue_id)

    def push_message(
        self,
        *,
        content: str,
        stream: str | None = "general",
        topic: str = "hi",
        sender_email: str = "alice@example.com",
        to: Iterable[str] = (),
    ) -> dict[str, Any]:
        """A message from a user: to ``stream``/``topic``, or direct to ``to`` (emails) when
        ``stream`` is None. Returns the message object the queues receive."""
        message = zulip_message(
            message_id=self.next_message_id(),
            sender_id=self.users[sender_email],
            sender_email=sender_email,
            content=content,
            topic=topic,
            stream=(self.streams[stream], stream) if stream else None,
            recipients=[(self.users[e], e) for e in (to or [self.email])],
        )
        self.remember(message)
        self.push_event({"type": "message", "message": message, "flags": []})
        return message

    def expire_queue(self, queue_id: str | None = None) -> None:
        """Garbage-collect one queue (or all), as Zulip does after ~10 idle minutes."""
        self.queues.expire(queue_id)

    @property
    def queue_ids(self) -> list[str]:
        return self.queues.ids

    def wait_for_request(
        self, path: str, *, count: int = 1, timeout: float = 5.0
    ) -> RecordedRequest:
        """Block until ``count`` requests to ``path`` have arrived; the last of them. For a
        test that must act while a long-poll waits (``asyncio.to_thread`` from async code)."""

        def arrived() -> list[RecordedRequest]:
            return [r for r in self.requests if r.path == path]

        with self._arrived:
            if not self._arrived.wait_for(lambda: len(arrived()) >= count, timeout):
                raise TimeoutError(f"{count} request(s) to {path} did not arrive in {timeout} s")
        return arrived()[count - 1]

    def take_violations(self) -> list[Violation]:
        """The violations so far, cleared: for tests that provoke one on purpose."""
        taken, self.violations = self.violations, []
        return taken

    # -- for the operations

    def next_message_id(self) -> int:
        return next(self._message_ids)

    def remember(self, message: dict[str, Any]) -> None:
        self.known_messages[message["id"]] = message

    # -- the server's lifecycle

    def __enter__(self) -> ZulipDouble:
        zulip_openapi()  # load the spec before the clock of any request starts
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        sock.listen()  # connections wait in the backlog until uvicorn accepts them
        host, port = sock.getsockname()
        self.url = f"http://{host}:{port}"
        config = uvicorn.Config(
            self._app(),
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="on",
            ws="none",
            http="h11",
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [sock]},
            name=f"zulip-double:{port}",
            daemon=True,
        )
        self._socket = sock
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._ready.wait(timeout=0.05):  # a bounded wait for the lifespan to start
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise RuntimeError("the Zulip double did not start (see the log above)")
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._server is not None:
            self._server.should_exit = True
            self.queues.expire()  # releases waiting long-polls at once
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None
        self._ready.clear()

    def _app(self) -> Starlette:
        @contextlib.asynccontextmanager
        async def lifespan(app: Starlette) -> AsyncIterator[None]:
            self.queues.loop = asyncio.get_running_loop()
            self._ready.set()
            yield
            self.queues.loop = None

        methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
        return Starlette(
            routes=[Route("/{path:path}", self._endpoint, methods=methods)], lifespan=lifespan
        )

    # -- every request: check it, record it, answer it, check the answer

    async def _endpoint(self, request: Request) -> Response:
        try:
            return await self._check_and_answer(request)
        except Exception as exc:  # a bug in the double must fail the test, not hide
            self._violate("double", request, f"{type(exc).__name__}: {exc}")
            return zulip_error(500, "the Zulip double crashed")

    async def _check_and_answer(self, request: Request) -> Response:
        arrived_at = time.monotonic()
        raw = await request.body()
        checked = StarletteOpenAPIRequest(request, raw)
        result = zulip_openapi().unmarshal_request(checked)
        urlencoded = request.headers.get("content-type", "").startswith(
            "application/x-www-form-urlencoded"
        )
        recorded = RecordedRequest(
            method=request.method,
            path=request.url.path,
            query=dict(request.query_params),
            form=dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
            if urlencoded
            else {},
            body=result.body if isinstance(result.body, dict) else None,
            user=_basic_auth(request)[0],
            files=await uploads.file_parts(request),
            at=arrived_at,
        )
        with self._arrived:
            self.requests.append(recorded)
            self._arrived.notify_all()
        if result.errors:
            message = "; ".join(describe(e) for e in result.errors)
            self._violate("request", request, message)
            security = any(isinstance(e, SecurityValidationError) for e in result.errors)
            response: Response = (
                zulip_error(401, f"spec violation: {message}", "UNAUTHORIZED")
                if security
                else zulip_error(400, f"spec violation: {message}")
            )
        else:
            parameters = result.parameters
            params = {**parameters.path, **parameters.query, **(recorded.body or {})}
            response = await self._answer(request, Call(params, recorded.files))
            if errors := answer_errors(checked, response):
                self._violate("response", request, "; ".join(describe(e) for e in errors))
        recorded.status = response.status_code
        return response

    async def _answer(self, request: Request, call: Call) -> Response:
        if self._faults:
            return self._faults.popleft()()
        user, key = _basic_auth(request)
        if not (
            hmac.compare_digest(user or "", self.email)
            and hmac.compare_digest(key or "", self.api_key)
        ):
            response = zulip_error(401, "Invalid API key", "INVALID_API_KEY")
            response.headers["WWW-Authenticate"] = 'Basic realm="zulip"'
            return response
        operation = next(
            (
                op
                for method, path, op in _ROUTES
                if method == request.method and path.fullmatch(request.url.path)
            ),
            None,
        )
        if operation is None:
            self._violate("double", request, "operation not implemented by the double")
            return zulip_error(501, "not implemented by the Zulip double")
        # Zulip limits a user's requests once it knows the user, before the operation runs;
        # its middleware then puts the limit's headers on whatever the operation answers.
        verdict = self._limit.hit() if self._limit is not None else None
        if verdict is not None and not verdict.allowed:
            return _rate_limited(verdict.retry_after, verdict.headers)
        response = await operation(self, call)
        if verdict is not None:
            response.headers.update(verdict.headers)
        return response

    def _violate(
        self, kind: Literal["request", "response", "double"], request: Request, message: str
    ) -> None:
        self.violations.append(Violation(kind, request.method, request.url.path, message))


def _rate_limited(wait: float, headers: dict[str, str], *, header: bool = True) -> Response:
    """Zulip's 429: ``retry-after`` in the body and, from its ``RateLimitedError``, in the
    ``Retry-After`` header too, both in fractional seconds."""
    response = zulip_error(
        429, "API usage exceeded rate limit", "RATE_LIMIT_HIT", **{"retry-after": wait}
    )
    response.headers.update(headers)
    if header:
        response.headers["Retry-After"] = str(wait)
    return response


def _basic_auth(request: Request) -> tuple[str | None, str | None]:
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None, None
    try:
        user, _, key = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None, None
    return user, key
