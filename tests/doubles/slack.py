"""A Slack double: ``chat.postMessage`` checked against the vendor's Web API description, and an
incoming webhook checked against Slack's documented payload.

A real HTTP server (Starlette on uvicorn, ``LocalServer``), so the connector runs its real HTTP
code::

    with SlackDouble() as slack:                  # or the ``slack`` fixtures of the tests
        ...post to slack.api_url with slack.token, or to slack.webhook_url...
        slack.requests[-1].form                   # the form as sent
        slack.messages                            # every message the double accepted
        slack.rate_limit_next(1, retry_after=1)   # 429 + Retry-After, as Slack does
        slack.error_next("channel_not_found")     # HTTP 200, ok: false
        slack.fail_next(1, status=503)            # a bare server error
        slack.answer_next(200, "<html>…</html>", content_type="text/html")   # anything at all
    assert slack.violations == []

``shared/specs/slack_web_openapi_v2.json`` is Swagger 2.0, which openapi-core does not read.
The double builds JSON Schemas (draft 4, Swagger 2.0's dialect) from the operation's
``parameters`` (``in``, ``type``, ``required``) and checks each request's form, query, content
type and token with jsonschema; ``blocks`` must also be the JSON array its description promises
(the spec's ``blocks`` definition). Every answer of the double is checked against the
operation's ``200`` or ``default`` response schema. Quirks are handled in memory; the file
stays the vendor's:

- ``token`` is declared a required *header named token*; Slack reads ``Authorization: Bearer``,
  which satisfies it here.
- The error enum (2020) lacks codes Slack has documented since (``_LATER_ERRORS``), and both
  answers forbid additional properties though Slack adds ``warning``, ``response_metadata``
  and, to ``missing_scope``, ``needed``/``provided``: allowed.

The webhook (``POST /services/T…/B…/<secret>``) is not in the Web API spec: its JSON body is
checked by hand against Slack's incoming-webhook documentation (``_WEBHOOK_BODY``).

A request that breaks the spec is answered as Slack would (``ok: false`` with the closest
error; 400 ``invalid_payload`` for the webhook) and recorded in ``violations``; the fixtures
fail the test unless it took them with ``take_violations()``. The double plays form-encoded
``chat.postMessage`` only: a JSON body, or any other method, is a violation of kind
``double``.
"""

from __future__ import annotations

import functools
import hmac
import itertools
import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl

from jsonschema import Draft4Validator
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from tests.doubles.server import LocalServer
from tests.doubles.violations import Violation

__all__ = [
    "SPEC_PATH",
    "RecordedRequest",
    "SlackChannel",
    "SlackDouble",
    "Violation",
    "slack_spec",
]

SPEC_PATH = Path(__file__).resolve().parents[3] / "shared" / "specs" / "slack_web_openapi_v2.json"
POST_MESSAGE = "/chat.postMessage"
TEAM, BOT_ID, BOT_USER = "T0DOUBLE01", "B0DOUBLE01", "U0DOUBLEBOT"
MAX_TEXT, MAX_BLOCKS, MAX_ATTACHMENTS = 40_000, 50, 100

_LATER_ERRORS = [
    "ratelimited",
    "invalid_arguments",
    "invalid_blocks",
    "invalid_blocks_format",
    "missing_scope",
    "not_allowed_token_type",
    "token_revoked",
    "token_expired",
    "restricted_action",
    "internal_error",
    "fatal_error",
    "service_unavailable",
    "request_timeout",
    "team_added_to_org",
]
# Incoming webhooks of Slack apps, per Slack's documentation; legacy overrides are left out.
_WEBHOOK_BODY = {
    "type": "object",
    "properties": {
        "text": {"type": "string"},
        "blocks": {"type": "array", "items": {"type": "object", "required": ["type"]}},
        "attachments": {"type": "array", "items": {"type": "object"}},
        "thread_ts": {"type": "string", "pattern": r"^\d{10}\.\d{6}$"},
        "mrkdwn": {"type": "boolean"},
        "unfurl_links": {"type": "boolean"},
        "unfurl_media": {"type": "boolean"},
    },
    "additionalProperties": False,
}
# Slack's statuses for the webhook's error codes.
WEBHOOK_STATUS = {
    "invalid_payload": 400,
    "no_text": 400,
    "invalid_token": 403,
    "action_prohibited": 403,
    "posting_to_general_channel_denied": 403,
    "channel_not_found": 404,
    "no_service": 404,
    "no_team": 404,
    "channel_is_archived": 410,
    "rollup_error": 500,
}


# --- the spec, loaded once per process ----------------------------------------------------------


@dataclass(frozen=True)
class _Operation:
    consumes: tuple[str, ...]
    types: dict[str, str]  # formData parameter → its declared type
    form: Draft4Validator
    query: Draft4Validator
    token_required: bool
    blocks: Draft4Validator
    answers: dict[str, Draft4Validator]  # "200", "default"


@functools.cache
def slack_spec() -> dict[str, Any]:
    """The Web API description, with the answers' quirks patched in memory."""
    if not SPEC_PATH.is_file():
        raise FileNotFoundError(f"Slack spec not found at {SPEC_PATH} (shared/specs checkout?)")
    spec: dict[str, Any] = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
    responses = spec["paths"][POST_MESSAGE]["post"]["responses"]
    error = responses["default"]["schema"]
    error["properties"]["error"]["enum"] += _LATER_ERRORS
    error["properties"] |= {"needed": {"type": "string"}, "provided": {"type": "string"}}
    for schema in (responses["200"]["schema"], error):
        schema["properties"] |= {
            "warning": {"type": "string"},
            "response_metadata": {"type": "object"},
        }
    return spec


@functools.cache
def _post_message() -> _Operation:
    spec = slack_spec()
    operation = spec["paths"][POST_MESSAGE]["post"]
    parameters = operation["parameters"]

    def validator(schema: dict[str, Any]) -> Draft4Validator:
        return Draft4Validator({**schema, "definitions": spec["definitions"]})

    return _Operation(
        consumes=tuple(operation["consumes"]),
        types={p["name"]: p["type"] for p in parameters if p["in"] == "formData"},
        form=validator(_parameters_schema(parameters, "formData")),
        query=validator(_parameters_schema(parameters, "query")),
        token_required=any(p["name"] == "token" and p.get("required") for p in parameters),
        blocks=validator({"$ref": "#/definitions/blocks"}),
        answers={k: validator(r["schema"]) for k, r in operation["responses"].items()},
    )


def _parameters_schema(parameters: list[dict[str, Any]], where: str) -> dict[str, Any]:
    """Swagger 2.0 parameters ``in: where`` as the JSON Schema of one object."""
    keywords = ("type", "enum", "pattern", "format", "minLength", "maxLength", "items")
    chosen = [p for p in parameters if p["in"] == where]
    return {
        "type": "object",
        "properties": {p["name"]: {k: p[k] for k in keywords if k in p} for p in chosen},
        "required": [p["name"] for p in chosen if p.get("required")],
        "additionalProperties": False,
    }


# --- what the double records ----------------------------------------------------------------------


@dataclass
class RecordedRequest:
    """One request as it arrived; ``status`` is the double's answer."""

    method: str
    path: str
    content_type: str
    query: dict[str, str]
    form: dict[str, str]
    json: Any
    authorization: str | None
    at: float  # time.monotonic() on arrival
    status: int | None = None


@dataclass(frozen=True)
class SlackChannel:
    id: str
    name: str
    member: bool = True  # the bot has joined it
    archived: bool = False


CHANNELS = (
    SlackChannel("C0GENERAL01", "general"),
    SlackChannel("C0RANDOM001", "random"),
    SlackChannel("C0PUBLIC001", "announcements", member=False),
    SlackChannel("G0PRIVATE01", "secret-plans", member=False),
    SlackChannel("C0ARCHIVE01", "old-news", archived=True),
)
USERS = ("U0ALICE0001", "U0BOB000001")

Endpoint = Literal["api", "webhook"]
Fault = Callable[[Endpoint], tuple[Response, bool]]  # the answer, and whether to check it


def slack_error(code: str, status: int = 200, **extra: Any) -> JSONResponse:
    return JSONResponse({"ok": False, "error": code, **extra}, status_code=status)


# --- the double -----------------------------------------------------------------------------------


class SlackDouble:
    """A Slack workspace with one bot, a few channels and one incoming webhook, over real HTTP."""

    def __init__(
        self,
        *,
        token: str = "xoxb-0000000001-0000000002-DoubleBotToken000",
        webhook_secret: str = "DoubleWebhookSecret00000",
    ) -> None:
        self.token = token
        self.webhook_path = f"/services/{TEAM}/B0WEBHOOK1/{webhook_secret}"
        self.channels = {c.id: c for c in CHANNELS}
        self.webhook_channel = CHANNELS[0]
        self._server = LocalServer(self._app())
        self._sequence = itertools.count(1)
        self.url = ""
        self.reset()

    @property
    def api_url(self) -> str:
        return f"{self.url}/api"

    @property
    def webhook_url(self) -> str:
        return f"{self.url}{self.webhook_path}"

    def reset(self) -> None:
        """Forget every request, violation, message and fault: one server serves many tests."""
        self.requests: list[RecordedRequest] = []
        self.violations: list[Violation] = []
        self.messages: list[dict[str, Any]] = []
        self._faults: deque[Fault] = deque()

    def take_violations(self) -> list[Violation]:
        """The violations so far, cleared: for tests that provoke one on purpose."""
        taken, self.violations = self.violations, []
        return taken

    def to(self, endpoint: Endpoint) -> list[RecordedRequest]:
        path = POST_MESSAGE if endpoint == "api" else self.webhook_path
        return [r for r in self.requests if r.path.removeprefix("/api") == path]

    # -- what tests tell the double: faults for the next requests that pass the spec

    def rate_limit_next(self, count: int = 1, *, retry_after: float = 1.0) -> None:
        """Answer 429 with ``Retry-After``, as Slack does: ``ratelimited`` in the Web API's
        JSON, a plain-text ``rate_limited`` from the webhook."""
        headers = {"Retry-After": f"{retry_after:g}"}

        def fault(endpoint: Endpoint) -> tuple[Response, bool]:
            if endpoint == "webhook":
                return PlainTextResponse("rate_limited", 429, headers=headers), False
            return JSONResponse({"ok": False, "error": "ratelimited"}, 429, headers=headers), True

        self._faults.extend([fault] * count)

    def error_next(self, code: str, *, count: int = 1, status: int | None = None) -> None:
        """Answer with Slack's error ``code``: HTTP 200 ``ok: false`` from the Web API (checked
        against the spec's enum), the code as text from the webhook with Slack's status."""

        def fault(endpoint: Endpoint) -> tuple[Response, bool]:
            if endpoint == "webhook":
                return PlainTextResponse(code, status or WEBHOOK_STATUS.get(code, 400)), False
            return slack_error(code, status or 200), True

        self._faults.extend([fault] * count)

    def fail_next(self, count: int = 1, *, status: int = 500) -> None:
        """Answer a bare server error, as Slack's edge does."""
        if status < 500:
            raise ValueError("fail_next is for 5xx; error_next answers Slack's errors")
        answer = PlainTextResponse("Internal Server Error", status)
        self._faults.extend([lambda _: (answer, False)] * count)

    def answer_next(
        self,
        status: int,
        body: str | bytes,
        *,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer anything at all, unchecked: what a proxy, a captive portal or a broken
        server might send."""
        answer = Response(body, status, headers=headers, media_type=content_type)
        self._faults.append(lambda _: (answer, False))

    # -- the server's lifecycle

    def __enter__(self) -> SlackDouble:
        _post_message()  # parse the spec before the clock of any request starts
        self.url = self._server.__enter__()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.__exit__(*exc_info)

    def _app(self) -> Starlette:
        methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
        return Starlette(routes=[Route("/{path:path}", self._endpoint, methods=methods)])

    # -- every request: check it, record it, answer it, check the answer

    async def _endpoint(self, request: Request) -> Response:
        raw = await request.body()
        content_type = request.headers.get("content-type", "")
        recorded = RecordedRequest(
            method=request.method,
            path=request.url.path,
            content_type=content_type,
            query=dict(request.query_params),
            form={},
            json=None,
            authorization=request.headers.get("authorization"),
            at=time.monotonic(),
        )
        self.requests.append(recorded)
        try:
            response = await self._route(request, recorded, raw)
        except Exception as exc:  # a bug in the double must fail the test, not hide
            self._violate("double", request, f"{type(exc).__name__}: {exc}")
            response = PlainTextResponse("the Slack double crashed", 500)
        recorded.status = response.status_code
        return response

    async def _route(self, request: Request, recorded: RecordedRequest, raw: bytes) -> Response:
        path = request.url.path
        if path == self.webhook_path or path.startswith("/services/"):
            return self._webhook(request, recorded, raw)
        if path == f"/api{POST_MESSAGE}" and request.method == "POST":
            return self._post_message(request, recorded, raw)
        operation = path.removeprefix("/api")
        if path.startswith("/api/") and operation in slack_spec()["paths"]:
            self._violate("double", request, "operation not played by the double")
            return slack_error("unknown_method")
        self._violate("request", request, f"{request.method} {path} is not in the spec")
        return PlainTextResponse("Not Found", 404)

    def _violate(
        self, kind: Literal["request", "response", "double"], request: Request, message: str
    ) -> None:
        self.violations.append(Violation(kind, request.method, request.url.path, message))

    def _fault(self, endpoint: Endpoint) -> tuple[Response, bool] | None:
        try:
            return self._faults.popleft()(endpoint)
        except IndexError:
            return None

    # -- chat.postMessage

    def _post_message(self, request: Request, recorded: RecordedRequest, raw: bytes) -> Response:
        try:
            values = self._checked_form(request, recorded, raw)
        except _Refused as refused:
            if refused.violation is not None:
                self._violate("request", request, refused.violation)
            metadata = {"messages": refused.messages} if refused.messages else None
            extra = {"response_metadata": metadata} if metadata else {}
            return self._checked_answer(request, slack_error(refused.code, **extra))
        fault = self._fault("api")
        if fault is not None:
            response, check = fault
            return self._checked_answer(request, response) if check else response
        return self._checked_answer(request, self._post(values, recorded))

    def _checked_form(
        self, request: Request, recorded: RecordedRequest, raw: bytes
    ) -> dict[str, Any]:
        """The form's values as the spec types them, or ``_Refused``."""
        operation = _post_message()
        if operation.token_required and not _bearer(recorded.authorization):
            raise _Refused("not_authed", "no token: the spec requires one (Authorization: Bearer)")
        media = recorded.content_type.split(";")[0].strip().lower()
        if not media:
            raise _Refused("missing_post_type", "no Content-Type")
        if media not in operation.consumes:
            raise _Refused("invalid_post_type", f"Content-Type {media!r} is not consumed")
        if media != "application/x-www-form-urlencoded":
            self._violate("double", request, f"the double plays form bodies only, not {media}")
            raise _Refused("invalid_post_type")
        try:
            pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(raw))
        except ValueError as exc:  # UnicodeDecodeError too
            raise _Refused("invalid_form_data", f"the form does not decode: {exc}") from None
        recorded.form = dict(pairs)
        repeated = sorted({name for name, _ in pairs if [n for n, _ in pairs].count(name) > 1})
        if repeated:
            raise _Refused("invalid_arguments", f"repeated parameters: {', '.join(repeated)}")
        values = {name: _coerce(value, operation.types.get(name)) for name, value in pairs}
        errors = _errors(operation.query, recorded.query) + _errors(operation.form, values)
        if errors:
            missing_channel = "channel" not in values
            code = "channel_not_found" if missing_channel else "invalid_arguments"
            raise _Refused(code, "; ".join(errors), [f"[ERROR] {e}" for e in errors])
        for name in ("blocks", "attachments"):
            if name in values:
                values[name] = _json_array(name, values[name], operation.blocks)
        return values

    def _post(self, values: dict[str, Any], recorded: RecordedRequest) -> JSONResponse:
        """What Slack does with a request that fits the spec."""
        if not hmac.compare_digest(_bearer(recorded.authorization).encode(), self.token.encode()):
            return slack_error("invalid_auth")
        channel = self._resolve(values["channel"])
        if isinstance(channel, str):
            return slack_error(channel)
        text: str = values.get("text", "")
        blocks, attachments = values.get("blocks"), values.get("attachments")
        thread_ts = values.get("thread_ts")
        checks = [
            ("no_text", not text.strip() and not blocks and not attachments),
            ("msg_too_long", len(text) > MAX_TEXT),
            ("too_many_attachments", len(attachments or ()) > MAX_ATTACHMENTS),
            ("invalid_blocks", len(blocks or ()) > MAX_BLOCKS),
            ("invalid_arguments", thread_ts is not None and not _is_ts(thread_ts)),
        ]
        problem = next((code for code, failed in checks if failed), None)
        if problem is not None:
            return slack_error(problem)
        ts = self._ts()
        message: dict[str, Any] = {
            "type": "message",
            "text": text,
            "user": BOT_USER,
            "bot_id": BOT_ID,
            "team": TEAM,
            "ts": ts,
        }
        if blocks:
            message["blocks"] = blocks
        if attachments:  # Slack numbers them; the spec's attachment knows few other fields
            message["attachments"] = [
                {"id": i, "fallback": str(a.get("fallback", ""))}
                for i, a in enumerate(attachments, 1)
            ]
        if thread_ts is not None:
            message["thread_ts"] = thread_ts
        if "username" in values:
            message["username"] = values["username"]
        self.messages.append({**values, "channel": channel.id, "ts": ts, "via": "api"})
        return JSONResponse({"ok": True, "channel": channel.id, "ts": ts, "message": message})

    def _resolve(self, value: str) -> SlackChannel | str:
        """The channel a ``channel`` argument names (ID, name, #name, user ID), or the error."""
        name = value.removeprefix("#")
        channel = self.channels.get(value) or next(
            (c for c in self.channels.values() if c.name == name), None
        )
        if channel is None and value in USERS:  # the bot's direct messages with the user
            return SlackChannel(f"D{value[1:]}", value)
        if channel is None or (not channel.member and channel.id.startswith("G")):
            return "channel_not_found"  # a private channel is invisible to non-members
        if channel.archived:
            return "is_archived"
        return channel if channel.member else "not_in_channel"

    def _checked_answer(self, request: Request, response: Response) -> Response:
        body = json.loads(bytes(response.body))
        which = "200" if response.status_code == 200 and body.get("ok") is True else "default"
        errors = _errors(_post_message().answers[which], body)
        if errors:
            self._violate("response", request, f"answer {which}: " + "; ".join(errors))
        return response

    def _ts(self) -> str:
        return f"{int(time.time())}.{next(self._sequence):06d}"

    # -- the incoming webhook

    def _webhook(self, request: Request, recorded: RecordedRequest, raw: bytes) -> Response:
        if request.method != "POST" or not hmac.compare_digest(
            request.url.path.encode(), self.webhook_path.encode()
        ):
            return PlainTextResponse("no_service", 404)
        media = recorded.content_type.split(";")[0].strip().lower()
        try:
            if media != "application/json":
                raise ValueError(f"Content-Type {media or 'none'!r}, not application/json")
            body = json.loads(raw)
        except ValueError as exc:
            kind = "double" if media == "application/x-www-form-urlencoded" else "request"
            self._violate(kind, request, f"not a JSON body: {exc}"[:300])
            return PlainTextResponse("invalid_payload", 400)
        recorded.json = body
        errors = _errors(_webhook_body(), body)
        if errors:
            self._violate("request", request, "; ".join(errors))
            return PlainTextResponse("invalid_payload", 400)
        fault = self._fault("webhook")
        if fault is not None:
            return fault[0]
        if not (str(body.get("text", "")).strip() or body.get("blocks") or body.get("attachments")):
            return PlainTextResponse("no_text", 400)
        channel = self.webhook_channel.id
        self.messages.append({**body, "channel": channel, "ts": self._ts(), "via": "webhook"})
        return PlainTextResponse("ok")


# --- helpers --------------------------------------------------------------------------------------


class _Refused(Exception):
    """A request the double refuses: Slack's error code, the violation if it is one, and
    Slack's ``response_metadata.messages``."""

    def __init__(
        self, code: str, violation: str | None = None, messages: list[str] | None = None
    ) -> None:
        super().__init__(code)
        self.code, self.violation, self.messages = code, violation, messages or []


@functools.cache
def _webhook_body() -> Draft4Validator:
    return Draft4Validator(_WEBHOOK_BODY)


def _bearer(authorization: str | None) -> str:
    scheme, _, token = (authorization or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _coerce(value: str, kind: str | None) -> Any:
    """A form value as the type its parameter declares (Swagger 2.0: ``true``/``false``)."""
    if kind == "boolean":
        return {"true": True, "false": False}.get(value, value)
    if kind in ("integer", "number"):
        try:
            return int(value) if kind == "integer" else float(value)
        except ValueError:
            return value
    return value


def _json_array(name: str, value: str, blocks: Draft4Validator) -> list[Any]:
    """``blocks``/``attachments``: "a JSON-based array … presented as a URL-encoded string"."""
    code = "invalid_blocks_format" if name == "blocks" else "invalid_arguments"
    try:
        decoded = json.loads(value)
    except ValueError:
        raise _Refused(code, f"{name} is not JSON, as its description requires") from None
    errors = (
        _errors(blocks, decoded)
        if name == "blocks"
        else _errors(Draft4Validator({"type": "array", "items": {"type": "object"}}), decoded)
    )
    if errors:
        raise _Refused(code, f"{name}: " + "; ".join(errors))
    return list(decoded)


def _errors(validator: Draft4Validator, instance: Any) -> list[str]:
    found = sorted(validator.iter_errors(instance), key=lambda e: list(map(str, e.path)))
    return [f"{'/'.join(map(str, e.path)) or 'body'}: {e.message}"[:300] for e in found[:5]]


def _is_ts(value: Any) -> bool:
    return bool(Draft4Validator(slack_spec()["definitions"]["defs_ts"]).is_valid(value))
