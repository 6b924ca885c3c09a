"""A Zulip API double for contract tests, checked against the vendor's own OpenAPI description.

A real HTTP server (Starlette on uvicorn, 127.0.0.1, a free port, a background thread), so the
connector runs its real HTTP code. Every request is validated with openapi-core against
``shared/specs/zulip.yaml`` (path, method, parameters, body, security) and every answer of the
double is validated too, so neither side can drift from the spec unnoticed::

    with ZulipDouble() as zulip:                 # or the ``zulip`` fixture in tests/contract
        ...send to zulip.url as zulip.email / zulip.api_key...
        zulip.requests[-1].body                  # the request as the spec decodes it
        zulip.rate_limit_next(1, retry_after=1.25)
        zulip.fail_next(2, status=502)
        zulip.push_message(content="hi")         # to every registered event queue
        zulip.expire_queue()                     # next GET /events: BAD_EVENT_QUEUE_ID
    assert zulip.violations == []

A request that breaks the spec is answered 400 (401 for missing auth) with the validation error
as Zulip's ``msg``, and recorded in ``violations``; the fixture fails the test unless the test
took it with ``take_violations()``.

Implemented: ``POST /api/v1/messages``, ``POST /api/v1/register``, ``GET /api/v1/events``.
Any other operation of the spec answers 501 and counts as a violation (of the double).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import copy
import functools
import hmac
import itertools
import json
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl

import uvicorn
import yaml
from jsonschema_path import SchemaPath
from openapi_core import Config, OpenAPI
from openapi_core.contrib.starlette.requests import StarletteOpenAPIRequest
from openapi_core.contrib.starlette.responses import StarletteOpenAPIResponse
from openapi_core.deserializing.media_types.exceptions import MediaTypeDeserializeError
from openapi_core.templating.responses.exceptions import ResponseNotFound
from openapi_core.validation.request.exceptions import SecurityValidationError
from openapi_core.validation.schemas import oas30_read_schema_validators_factory
from openapi_core.validation.schemas.exceptions import ValidateError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

__all__ = [
    "SPEC_PATH",
    "RecordedRequest",
    "Violation",
    "ZulipDouble",
    "zulip_message",
    "zulip_openapi",
]

SPEC_PATH = Path(__file__).resolve().parents[3] / "shared" / "specs" / "zulip.yaml"
FEATURE_LEVEL = 339  # the spec's server: 10.0-dev, API_FEATURE_LEVEL 339
ZULIP_VERSION = "10.0-dev+git"
MAX_MESSAGE_LENGTH = 10_000

# An operation of the double gets the query and body merged, as the spec decodes them.
Handler = Callable[[dict[str, Any]], Awaitable[Response]]


# --- the spec, loaded once per process ------------------------------------------------------


@functools.cache
def zulip_openapi() -> OpenAPI:
    """The Zulip spec as openapi-core sees it, with its known quirks patched *in memory*.

    Parsing 1.2 MB of YAML takes about half a second, so it happens once per process. The
    file itself stays byte-for-byte the vendor's (see shared/specs/README.md).
    """
    if not SPEC_PATH.is_file():
        raise FileNotFoundError(f"Zulip spec not found at {SPEC_PATH} (shared/specs checkout?)")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's is 10x faster
    with SPEC_PATH.open(encoding="utf-8") as f:
        spec = yaml.load(f, Loader=loader)
    _patch_quirks(spec)
    # The spec is the vendor's and unmodified; checking it (1.5 s) on every run buys nothing.
    return OpenAPI.from_dict(spec, config=Config(spec_validator_cls=None))


def _patch_quirks(spec: dict[str, Any]) -> None:
    schemes = spec["components"]["securitySchemes"]
    # Quirk 1: ``security`` names ``basicAuth`` but the scheme is declared ``BasicAuth``;
    # openapi-core would find no scheme and refuse every request. Alias the lower-case name.
    schemes.setdefault("basicAuth", copy.deepcopy(schemes["BasicAuth"]))
    # Quirk 2: ``RateLimitedError.retry-after`` is typed integer, yet Zulip (and the spec's own
    # example, 28.706807374954224) sends fractional seconds. Accept any number.
    rate_limited = spec["components"]["schemas"]["RateLimitedError"]["allOf"][1]
    rate_limited["properties"]["retry-after"]["type"] = "number"
    # Quirk 3: send-message's 400 is a ``oneOf`` listing ``CodedError`` three times (they differ
    # only in their examples), so every error body matches several branches and ``oneOf``
    # fails. The intent is "any of these": validate it as ``anyOf``.
    bad_request = spec["paths"]["/messages"]["post"]["responses"]["400"]
    schema = bad_request["content"]["application/json"]["schema"]
    schema["anyOf"] = schema.pop("oneOf")


def _component(name: str) -> SchemaPath:
    return zulip_openapi().spec / "components" / "schemas" / name


# Answers a Zulip server gives on any endpoint, which the operations themselves do not list.
_UNDOCUMENTED_ANSWERS = {401: "InvalidApiKeyError", 429: "RateLimitedError"}


# --- what the double records ------------------------------------------------------------------


@dataclass
class RecordedRequest:
    """One request as it arrived: ``form`` as sent, ``body`` as the spec decodes it (``to``
    JSON-decoded, booleans parsed), ``user`` the basic-auth user name, ``status`` our answer."""

    method: str
    path: str
    query: dict[str, str]
    form: dict[str, str]
    body: dict[str, Any] | None
    user: str | None
    status: int | None = None


@dataclass(frozen=True)
class Violation:
    """A request that broke the spec, an answer of the double that did, or a double's bug."""

    kind: Literal["request", "response", "double"]
    method: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.kind} {self.method} {self.path}: {self.message}"


@dataclass
class _Queue:
    id: str
    event_types: list[str] | None
    events: list[dict[str, Any]] = field(default_factory=list)
    next_id: int = 0
    gone: bool = False
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def wants(self, event_type: str) -> bool:
        return self.event_types is None or event_type in self.event_types


def zulip_error(status: int, msg: str, code: str = "BAD_REQUEST", **extra: Any) -> JSONResponse:
    """Zulip's error shape (``CodedError`` and its relatives in the spec)."""
    return JSONResponse({"result": "error", "msg": msg, "code": code, **extra}, status_code=status)


def zulip_success(**data: Any) -> JSONResponse:
    """Zulip's success shape (``JsonSuccessBase`` plus the operation's fields)."""
    return JSONResponse({"result": "success", "msg": "", **data})


def zulip_message(
    *,
    message_id: int,
    sender_id: int,
    sender_email: str,
    content: str,
    stream: tuple[int, str] | None = None,
    topic: str = "",
    recipients: Iterable[tuple[int, str]] = (),
    sender_full_name: str = "",
) -> dict[str, Any]:
    """A message object as Zulip puts it in a ``message`` event (spec: ``MessagesEvent``).

    ``stream`` is ``(stream_id, name)`` for a stream message; else ``recipients`` are the
    ``(user_id, email)`` of a direct message's participants.
    """
    message: dict[str, Any] = {
        "id": message_id,
        "sender_id": sender_id,
        "sender_email": sender_email,
        "sender_full_name": sender_full_name or sender_email.split("@")[0],
        "sender_realm_str": "zulip",
        "content": content,
        "content_type": "text/x-markdown",
        "client": "ZulipDouble",
        "timestamp": int(time.time()),
        "is_me_message": False,
        "reactions": [],
        "submessages": [],
        "topic_links": [],
        "avatar_url": None,
    }
    if stream is not None:
        stream_id, name = stream
        message |= {
            "type": "stream",
            "stream_id": stream_id,
            "display_recipient": name,
            "subject": topic,
            "recipient_id": 1000 + stream_id,
        }
    else:
        users = sorted({(sender_id, sender_email), *recipients})
        message |= {
            "type": "private",
            "subject": "",
            "recipient_id": 2000 + len(users),
            "display_recipient": [
                {
                    "id": uid,
                    "email": email,
                    "full_name": email.split("@")[0],
                    "is_mirror_dummy": False,
                }
                for uid, email in users
            ],
        }
    return message


# --- the double -------------------------------------------------------------------------------


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
        self._lock = threading.Lock()
        self._arrived = threading.Condition()
        self._message_ids = itertools.count(100)
        self._routes: dict[tuple[str, str], Handler] = {
            ("POST", "/api/v1/messages"): self._send_message,
            ("POST", "/api/v1/register"): self._register,
            ("GET", "/api/v1/events"): self._get_events,
        }
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self.url = ""
        self._queues: dict[str, _Queue] = {}
        self.reset()

    def reset(self) -> None:
        """Forget every request, violation, message, fault and queue, and restore the
        organisation as constructed: one server can then serve many tests."""
        self.expire_queue()  # releases long-polls still waiting
        streams, users, longpoll_timeout = self._organisation
        self.streams = dict(streams)
        self.users = dict(users)
        self.longpoll_timeout = longpoll_timeout
        self.requests: list[RecordedRequest] = []
        self.violations: list[Violation] = []
        self.messages: list[dict[str, Any]] = []  # every message the double accepted
        self._faults: deque[Callable[[], Response]] = deque()
        with self._lock:
            self._queues = {}

    # -- what tests tell the double

    def rate_limit_next(
        self, count: int = 1, *, retry_after: float = 1.5, header: bool = True
    ) -> None:
        """Answer the next ``count`` requests 429 as Zulip does: ``retry-after`` in the body
        (fractional seconds) and, unless ``header=False``, the ``Retry-After`` header."""

        def answer() -> Response:
            response = zulip_error(
                429,
                "API usage exceeded rate limit",
                "RATE_LIMIT_HIT",
                **{"retry-after": retry_after},
            )
            response.headers.update(
                {
                    "X-RateLimit-Limit": "200",
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": str(int(time.time() + retry_after)),
                }
            )
            if header:
                response.headers["Retry-After"] = str(retry_after)
            return response

        self._faults.extend([answer] * count)

    def fail_next(self, count: int = 1, *, status: int = 500) -> None:
        """Answer the next ``count`` requests with a bare server error, as a proxy would."""
        if status < 500:
            raise ValueError("fail_next is for 5xx; use the organisation's data for 4xx")
        self._faults.extend([lambda: PlainTextResponse("Internal Server Error", status)] * count)

    def push_event(self, event: dict[str, Any], *, queue_id: str | None = None) -> None:
        """Add an event (its ``id`` is set here) to one queue, or to every live queue that
        registered for its type, and wake the long-polls waiting on them."""
        with self._lock:
            queues = [self._queues[queue_id]] if queue_id else list(self._queues.values())
            for queue in queues:
                if not queue.gone and (queue_id or queue.wants(event["type"])):
                    queue.events.append({**event, "id": queue.next_id})
                    queue.next_id += 1
                    self._wake(queue)

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
            message_id=next(self._message_ids),
            sender_id=self.users[sender_email],
            sender_email=sender_email,
            content=content,
            topic=topic,
            stream=(self.streams[stream], stream) if stream else None,
            recipients=[(self.users[e], e) for e in (to or [self.email])],
        )
        self.push_event({"type": "message", "message": message, "flags": []})
        return message

    def expire_queue(self, queue_id: str | None = None) -> None:
        """Garbage-collect one queue (or all), as Zulip does after ~10 idle minutes."""
        with self._lock:
            for queue in self._queues.values():
                if queue_id in (None, queue.id):
                    queue.gone = True
                    self._wake(queue)

    @property
    def queue_ids(self) -> list[str]:
        with self._lock:
            return [q.id for q in self._queues.values() if not q.gone]

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

    def _wake(self, queue: _Queue) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(queue.changed.set)

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
            self.expire_queue()  # releases waiting long-polls at once
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None
        self._ready.clear()

    def _app(self) -> Starlette:
        @contextlib.asynccontextmanager
        async def lifespan(app: Starlette) -> AsyncIterator[None]:
            self._loop = asyncio.get_running_loop()
            self._ready.set()
            yield
            self._loop = None

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
        raw = await request.body()
        checked = StarletteOpenAPIRequest(request, raw)
        result = zulip_openapi().unmarshal_request(checked)
        recorded = RecordedRequest(
            method=request.method,
            path=request.url.path,
            query=dict(request.query_params),
            form=dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
            if request.headers.get("content-type", "").startswith(
                "application/x-www-form-urlencoded"
            )
            else {},
            body=result.body if isinstance(result.body, dict) else None,
            user=_basic_auth(request)[0],
        )
        with self._arrived:
            self.requests.append(recorded)
            self._arrived.notify_all()
        if result.errors:
            message = "; ".join(_describe(e) for e in result.errors)
            self._violate("request", request, message)
            security = any(isinstance(e, SecurityValidationError) for e in result.errors)
            response: Response = (
                zulip_error(401, f"spec violation: {message}", "UNAUTHORIZED")
                if security
                else zulip_error(400, f"spec violation: {message}")
            )
        else:
            params = {**result.parameters.query, **(recorded.body or {})}
            response = await self._answer(request, params)
            self._check_answer(checked, response)
        recorded.status = response.status_code
        return response

    async def _answer(self, request: Request, params: dict[str, Any]) -> Response:
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
        handler = self._routes.get((request.method, request.url.path))
        if handler is None:
            self._violate("double", request, "operation not implemented by the double")
            return zulip_error(501, "not implemented by the Zulip double")
        return await handler(params)

    def _check_answer(self, checked: StarletteOpenAPIRequest, response: Response) -> None:
        """Validate our own answer: against the operation's documented responses, else against
        the shapes Zulip uses on every endpoint (401, 429); bare 5xx carry no JSON to check."""
        if response.status_code >= 500 or not isinstance(response, JSONResponse):
            return
        answer = StarletteOpenAPIResponse(response)
        errors = zulip_openapi().unmarshal_response(checked, answer).errors
        if len(errors) == 1 and isinstance(errors[0], ResponseNotFound):
            schema = _UNDOCUMENTED_ANSWERS.get(response.status_code)
            if schema is None:
                errors = [ValueError(f"status {response.status_code} is not in the spec")]
            else:
                errors = _schema_errors(schema, response)
        if errors:
            self._violate("response", checked.request, "; ".join(_describe(e) for e in errors))

    def _violate(
        self, kind: Literal["request", "response", "double"], request: Request, message: str
    ) -> None:
        self.violations.append(Violation(kind, request.method, request.url.path, message))

    # -- the operations

    async def _send_message(self, params: dict[str, Any]) -> Response:
        # Zulip strips trailing whitespace, refuses an empty body and truncates a long one.
        content = params["content"].rstrip().lstrip("\n")
        if not content:
            return zulip_error(400, "Message must not be empty")
        if len(content) > MAX_MESSAGE_LENGTH:
            note = "\n[message truncated]"
            content = content[: MAX_MESSAGE_LENGTH - len(note)] + note
        message_id = next(self._message_ids)
        common = {
            "message_id": message_id,
            "sender_id": self.user_id,
            "sender_email": self.email,
            "content": content,
        }
        to = params["to"]
        if params["type"] in ("stream", "channel"):
            if isinstance(to, list) and len(to) == 1:  # a legacy form Zulip still takes
                to = to[0]
            if isinstance(to, int):
                names = {sid: name for name, sid in self.streams.items()}
                if to not in names:
                    # Zulip adds ``stream_id`` here, but send-message's 400 in the spec has
                    # no shape with it (only ``NonExistingChannelNameError``): leave it out.
                    return zulip_error(
                        400, f"Channel with ID '{to}' does not exist", "STREAM_DOES_NOT_EXIST"
                    )
                stream = (to, names[to])
            else:
                if not isinstance(to, str) or to not in self.streams:
                    return zulip_error(
                        400,
                        f"Channel '{to}' does not exist",
                        "STREAM_DOES_NOT_EXIST",
                        stream=str(to),
                    )
                stream = (self.streams[to], to)
            if "topic" not in params:
                return zulip_error(400, "Missing topic")
            message = zulip_message(**common, stream=stream, topic=params["topic"].strip())
        else:
            recipients = to if isinstance(to, list) else [to]
            emails = {uid: email for email, uid in self.users.items()}
            found = []
            for recipient in recipients:
                if isinstance(recipient, int) and recipient in emails:
                    found.append((recipient, emails[recipient]))
                elif isinstance(recipient, str) and recipient in self.users:
                    found.append((self.users[recipient], recipient))
                elif isinstance(recipient, int):
                    return zulip_error(400, f"Invalid user ID {recipient}")
                else:
                    return zulip_error(400, f"Invalid email '{recipient}'")
            message = zulip_message(**common, recipients=found)
        self.messages.append(message)
        self.push_event({"type": "message", "message": message, "flags": ["read"]})
        return zulip_success(id=message_id)

    async def _register(self, params: dict[str, Any]) -> Response:
        queue = _Queue(id=str(uuid.uuid4()), event_types=params.get("event_types"))
        with self._lock:
            self._queues[queue.id] = queue
        return zulip_success(
            queue_id=queue.id,
            last_event_id=-1,
            zulip_feature_level=FEATURE_LEVEL,
            zulip_version=ZULIP_VERSION,
            zulip_merge_base=ZULIP_VERSION,
            max_message_length=MAX_MESSAGE_LENGTH,
            max_topic_length=60,
            max_stream_name_length=60,
        )

    async def _get_events(self, params: dict[str, Any]) -> Response:
        """Long-poll: answer at once if events newer than ``last_event_id`` wait (dropping
        the acknowledged ones), else wait up to ``longpoll_timeout`` and send a heartbeat."""
        queue_id: str = params["queue_id"]
        last_event_id: int = params.get("last_event_id", -1)
        dont_block: bool = params.get("dont_block", False)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.longpoll_timeout
        while True:
            with self._lock:
                queue = self._queues.get(queue_id)
                if queue is None or queue.gone:
                    return zulip_error(
                        400,
                        f"Bad event queue ID: {queue_id}",
                        "BAD_EVENT_QUEUE_ID",
                        queue_id=queue_id,
                    )
                queue.events = [e for e in queue.events if e["id"] > last_event_id]
                if queue.events or dont_block:
                    return zulip_success(events=list(queue.events))
                queue.changed.clear()
            remaining = deadline - loop.time()
            if remaining <= 0:
                self.push_event({"type": "heartbeat"}, queue_id=queue_id)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(queue.changed.wait(), remaining)


# --- helpers ----------------------------------------------------------------------------------


def _basic_auth(request: Request) -> tuple[str | None, str | None]:
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None, None
    try:
        user, _, key = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None, None
    return user, key


def _schema_errors(name: str, response: JSONResponse) -> list[Exception]:
    validator = oas30_read_schema_validators_factory.create(zulip_openapi().spec, _component(name))
    try:
        validator.validate(json.loads(response.body))
    except ValidateError as exc:
        return [exc]
    return []


def _describe(exc: BaseException, limit: int = 500) -> str:
    """One line: the JSON-schema errors if the chain has any, else the exception chain."""
    chain: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and len(chain) < 5:
        chain.append(seen)
        seen = seen.__cause__
    for cause in chain:
        if schema_errors := getattr(cause, "schema_errors", None):
            message = f"{type(exc).__name__}: " + "; ".join(map(_schema_error, schema_errors))
            break
    else:
        message = " <- ".join(map(_exception_text, chain))
    return message if len(message) <= limit else message[:limit] + "…"


def _exception_text(exc: BaseException) -> str:
    name = type(exc).__name__
    if isinstance(exc, MediaTypeDeserializeError):
        text = f"cannot decode {exc.value!r} as {exc.mimetype}"
    else:
        try:
            text = str(exc).removeprefix(f"{name}: ")
        except AttributeError:  # openapi-core 0.23 formats a str value with .decode()
            text = ""
    return f"{name}: {text}" if text else name


def _schema_error(error: Any) -> str:
    where = "/".join(str(p) for p in error.absolute_path)
    return f"{where or 'body'}: {error.message}"[:300]
