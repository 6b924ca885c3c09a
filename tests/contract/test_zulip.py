"""The Zulip connector against a Zulip double that checks every request with Zulip's spec.

The action runs exactly as the engine runs it (``Action.invoke``: input validation, timeout,
output check) over real HTTP; the double (tests/doubles/zulip/) validates each request
against shared/specs/zulip.yaml and the ``zulip`` fixture fails the test on any violation.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from pydantic import BaseModel, ValidationError

from integrationhub.connectors.base import ActionContext
from integrationhub.connectors.zulip import (
    ZulipConnector,
    ZulipCredential,
    ZulipMessageSent,
    read_answer,
)
from integrationhub.connectors.zulip.answers import MessageSentAnswer
from integrationhub.errors import PermanentError, RateLimited, RetryableError
from tests.contract.zulip_support import *  # noqa: F403
from tests.contract.zulip_support import credential_for
from tests.doubles.zulip import ZulipDouble

pytestmark = pytest.mark.contract

SEND = ZulipConnector.actions["zulip-message"]
Send = Callable[..., Awaitable[BaseModel]]


@pytest.fixture
def send(zulip: ZulipDouble, http: httpx.AsyncClient) -> Send:
    """Invoke ``zulip-message`` the way the engine does, with the double's bot credential."""

    async def invoke(
        params: dict[str, Any],
        *,
        credential: ZulipCredential | None = None,
    ) -> BaseModel:
        context = ActionContext(run_id="run-1", step_id="notify", attempt=1, http=http)
        return await SEND.invoke(
            credential=credential or credential_for(zulip), params=params, context=context
        )

    return invoke


# --- messages arrive as the spec describes ---------------------------------------------------


@pytest.mark.parametrize(
    ("to", "wire_to", "stream_id"),
    [
        pytest.param("general", '"general"', 1, id="by-name"),
        pytest.param(2, "2", 2, id="by-id"),
    ],
)
async def test_stream_message_arrives_with_topic_and_basic_auth(
    zulip: ZulipDouble, send: Send, to: str | int, wire_to: str, stream_id: int
) -> None:
    result = await send(
        {"type": "stream", "to": to, "topic": "Deploys", "content": "**v2.3** is live"}
    )

    assert isinstance(result, ZulipMessageSent)
    (request,) = zulip.requests
    assert (request.method, request.path, request.user) == ("POST", "/api/v1/messages", zulip.email)
    assert request.form == {
        "type": "stream",
        "to": wire_to,
        "topic": "Deploys",
        "content": "**v2.3** is live",
    }
    (message,) = zulip.messages
    assert (message["id"], message["stream_id"], message["subject"]) == (
        result.message_id,
        stream_id,
        "Deploys",
    )


@pytest.mark.parametrize(
    "to",
    [
        pytest.param(["alice@example.com", "bob@example.com"], id="by-email"),
        pytest.param([11, 12], id="by-user-id"),
    ],
)
async def test_direct_message_arrives_with_json_encoded_recipients(
    zulip: ZulipDouble, send: Send, to: list[Any]
) -> None:
    result = await send({"type": "direct", "to": to, "content": "Your report is ready."})

    (request,) = zulip.requests
    assert request.user == zulip.email
    assert request.form["type"] == "direct"
    assert json.loads(request.form["to"]) == to
    assert "topic" not in request.form
    assert request.body is not None and request.body["to"] == to  # as the spec decodes it
    recipients = {r["email"] for r in zulip.messages[0]["display_recipient"]}
    assert recipients == {zulip.email, "alice@example.com", "bob@example.com"}
    assert result.model_dump() == {"message_id": zulip.messages[0]["id"]}


async def test_numeric_stream_name_is_sent_as_a_name_not_an_id(
    send: Send, zulip: ZulipDouble
) -> None:
    zulip.streams["2024"] = 7

    await send({"type": "stream", "to": "2024", "topic": "plans", "content": "hi"})

    assert zulip.requests[0].body is not None
    assert zulip.requests[0].body["to"] == "2024"
    assert zulip.messages[0]["stream_id"] == 7


async def test_content_of_exactly_the_limit_is_sent_whole(send: Send, zulip: ZulipDouble) -> None:
    content = "x" * 10_000

    await send({"type": "stream", "to": "general", "topic": "big", "content": content})

    assert zulip.messages[0]["content"] == content


# --- the double holds requests to the spec ---------------------------------------------------


@pytest.mark.parametrize(
    ("form", "auth", "status", "complaint"),
    [
        pytest.param(
            {"type": "stream", "to": "general", "topic": "t", "content": "hi"},
            True,
            400,
            "cannot decode 'general' as application/json",
            id="stream-name-not-json",
        ),
        pytest.param(
            {"type": "direct", "to": '["alice@example.com"]'},
            True,
            400,
            "'content' is a required property",
            id="missing-content",
        ),
        pytest.param(
            {"type": "email", "to": "[11]", "content": "hi"},
            True,
            400,
            "'email' is not one of",
            id="unknown-type",
        ),
        pytest.param(
            {"type": "direct", "to": "[11]", "content": "hi"},
            False,
            401,
            "Security not found",
            id="no-auth",
        ),
    ],
)
async def test_double_records_a_request_that_breaks_the_spec(
    zulip: ZulipDouble,
    http: httpx.AsyncClient,
    form: dict[str, str],
    auth: bool,
    status: int,
    complaint: str,
) -> None:
    response = await http.post(
        f"{zulip.url}/api/v1/messages",
        data=form,
        auth=(zulip.email, zulip.api_key) if auth else None,
    )

    assert response.status_code == status
    assert complaint in response.json()["msg"]
    (violation,) = zulip.take_violations()
    assert (violation.kind, violation.method, violation.path) == (
        "request",
        "POST",
        "/api/v1/messages",
    )
    assert complaint in violation.message
    assert zulip.messages == []


async def test_double_records_a_call_to_an_operation_it_does_not_play(
    zulip: ZulipDouble, http: httpx.AsyncClient
) -> None:
    response = await http.get(f"{zulip.url}/api/v1/users/me", auth=(zulip.email, zulip.api_key))

    assert response.status_code == 501
    assert [v.kind for v in zulip.take_violations()] == ["double"]


# --- answers become the hub's errors -----------------------------------------------------------


@pytest.mark.parametrize("header", [True, False], ids=["with-header", "body-only"])
@pytest.mark.parametrize("wait", [0.25, 1.5, 28.706807374954224])
async def test_rate_limit_is_rate_limited_waiting_zulips_fractional_retry_after(
    zulip: ZulipDouble, send: Send, wait: float, header: bool
) -> None:
    zulip.rate_limit_next(1, retry_after=wait, header=header)

    with pytest.raises(RateLimited) as caught:
        await send({"type": "stream", "to": "general", "topic": "t", "content": "hi"})

    assert caught.value.retry_after == pytest.approx(wait)
    assert "429" in caught.value.message and "RATE_LIMIT_HIT" in caught.value.message
    assert zulip.messages == []


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_server_error_is_retryable(zulip: ZulipDouble, send: Send, status: int) -> None:
    zulip.fail_next(1, status=status)

    with pytest.raises(RetryableError) as caught:
        await send({"type": "direct", "to": [11], "content": "hi"})

    assert not isinstance(caught.value, RateLimited)
    assert str(status) in caught.value.message
    # A 503 refused the request; after a 500, 502 or 504 the message may have been posted.
    assert caught.value.effect_possible is (status != 503)


async def test_request_after_the_injected_failures_succeeds(zulip: ZulipDouble, send: Send) -> None:
    zulip.fail_next(1)
    with pytest.raises(RetryableError):
        await send({"type": "direct", "to": [11], "content": "hi"})

    result = await send({"type": "direct", "to": [11], "content": "hi"})

    assert [r.status for r in zulip.requests] == [500, 200]
    assert isinstance(result, ZulipMessageSent)


@pytest.mark.parametrize(
    ("params", "zulip_says"),
    [
        pytest.param(
            {"type": "stream", "to": "nope", "topic": "t", "content": "hi"},
            "Channel 'nope' does not exist (STREAM_DOES_NOT_EXIST)",
            id="unknown-stream",
        ),
        pytest.param(
            {"type": "stream", "to": 99, "topic": "t", "content": "hi"},
            "Channel with ID '99' does not exist (STREAM_DOES_NOT_EXIST)",
            id="unknown-stream-id",
        ),
        pytest.param(
            {"type": "direct", "to": ["eve@example.com"], "content": "hi"},
            "Invalid email 'eve@example.com' (BAD_REQUEST)",
            id="unknown-user",
        ),
        pytest.param(
            {"type": "direct", "to": [404], "content": "hi"},
            "Invalid user ID 404 (BAD_REQUEST)",
            id="unknown-user-id",
        ),
    ],
)
async def test_zulip_error_is_permanent_with_zulips_message_and_code(
    zulip: ZulipDouble, send: Send, params: dict[str, Any], zulip_says: str
) -> None:
    with pytest.raises(PermanentError) as caught:
        await send(params)

    assert caught.value.message == f"Zulip POST /messages answered 400: {zulip_says}"
    assert [r.status for r in zulip.requests] == [400]


async def test_wrong_api_key_is_permanent_and_never_shows_the_key(
    zulip: ZulipDouble, send: Send
) -> None:
    wrong_key = "wrong-key-s3cr3t-do-not-print"

    with pytest.raises(PermanentError) as caught:
        await send(
            {"type": "direct", "to": [11], "content": "hi"},
            credential=credential_for(zulip, api_key=wrong_key),
        )

    assert "401" in caught.value.message and "Invalid API key" in caught.value.message
    for text in (caught.value.message, str(caught.value), repr(caught.value)):
        assert wrong_key not in text and zulip.api_key not in text
    assert zulip.requests[0].user == zulip.email


async def test_unreachable_site_is_retryable(send: Send, zulip: ZulipDouble) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago, now closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    with pytest.raises(RetryableError, match="ConnectError"):
        await send(
            {"type": "direct", "to": [11], "content": "hi"},
            credential=credential_for(zulip, site=f"http://127.0.0.1:{port}"),
        )


# --- bad input never reaches Zulip -------------------------------------------------------------


STREAM = {"type": "stream", "to": "general", "topic": "t", "content": "hi"}
DIRECT = {"type": "direct", "to": ["alice@example.com"], "content": "hi"}


@pytest.mark.parametrize(
    ("params", "complaint"),
    [
        pytest.param(
            {k: v for k, v in STREAM.items() if k != "topic"},
            "stream.topic: Field required",
            id="stream-without-topic",
        ),
        pytest.param({**STREAM, "content": ""}, "must not be empty", id="empty-content"),
        pytest.param({**STREAM, "content": " \n\t "}, "must not be empty", id="blank-content"),
        pytest.param({**STREAM, "content": "x" * 10_001}, "at most 10000", id="oversized-content"),
        pytest.param({**STREAM, "content": "a\x00b"}, "NUL", id="nul-in-content"),
        pytest.param(
            {**STREAM, "topic": "ok\r\nX-Injected: 1"},
            "invalid character '\\r'",
            id="crlf-in-topic",
        ),
        pytest.param({**STREAM, "topic": "t" * 61}, "at most 60", id="oversized-topic"),
        pytest.param({**STREAM, "topic": "   "}, "at least 1", id="blank-topic"),
        pytest.param({**STREAM, "to": ""}, "at least 1", id="empty-stream-name"),
        pytest.param({**STREAM, "to": 0}, "greater than 0", id="stream-id-zero"),
        pytest.param({**STREAM, "to": True}, "not a boolean", id="stream-id-boolean"),
        pytest.param({**DIRECT, "to": []}, "at least 1", id="no-recipients"),
        pytest.param(
            {**DIRECT, "to": [11, "bob@example.com"]}, "valid string", id="mixed-ids-and-emails"
        ),
        pytest.param({**DIRECT, "to": ["not-an-email"]}, "should match pattern", id="bad-email"),
        pytest.param({**DIRECT, "to": "alice@example.com"}, "valid list", id="recipients-not-list"),
        pytest.param({**DIRECT, "topic": "t"}, "Extra inputs", id="topic-on-direct"),
        pytest.param(
            {**STREAM, "type": "private"},
            "does not match any of the expected tags",
            id="unknown-type",
        ),
        pytest.param({"to": "general", "content": "hi"}, "Unable to extract tag", id="no-type"),
    ],
)
async def test_invalid_input_is_refused_before_any_request(
    zulip: ZulipDouble, send: Send, params: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(PermanentError, match="invalid input for zulip-message") as caught:
        await send(params)

    assert complaint in caught.value.message
    assert zulip.requests == []


# --- the credential ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("site", "normalised"),
    [
        ("https://example.zulipchat.com", "https://example.zulipchat.com"),
        ("https://example.zulipchat.com/", "https://example.zulipchat.com"),
        (" https://chat.example.org:8443// ", "https://chat.example.org:8443"),
        ("http://127.0.0.1:9991", "http://127.0.0.1:9991"),
    ],
)
def test_site_is_normalised_without_trailing_slash(site: str, normalised: str) -> None:
    credential = ZulipCredential(site=site, email="bot@example.com", api_key="k")  # type: ignore[arg-type]

    assert credential.site == normalised


@pytest.mark.parametrize(
    "site",
    [
        "ftp://example.zulipchat.com",
        "file:///etc/passwd",
        "example.zulipchat.com",
        "https://",
        "https://bot:key@example.zulipchat.com",
        "https://example.com/?x=1",
    ],
)
def test_site_that_is_not_a_plain_http_url_is_refused(site: str) -> None:
    with pytest.raises(ValidationError):
        ZulipCredential(site=site, email="bot@example.com", api_key="k")  # type: ignore[arg-type]


def test_api_key_is_the_only_secret_and_is_masked() -> None:
    credential = ZulipCredential(
        site="https://x.zulipchat.com", email="bot@x.zulipchat.com", api_key="s3cr3t"
    )  # type: ignore[arg-type]

    assert ZulipCredential.secret_fields() == ["api_key"]
    assert "s3cr3t" not in repr(credential) and "s3cr3t" not in str(credential.model_dump())


# --- read_answer, table-driven on canned answers -------------------------------------------------


def answer(status: int, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.Response(status, content=content, headers=headers)


@pytest.mark.parametrize(
    ("response", "error", "retry_after", "says"),
    [
        (
            answer(200, {"result": "error", "msg": "Invalid email 'x'", "code": "BAD_REQUEST"}),
            PermanentError,
            None,
            "answered 200: Invalid email 'x' (BAD_REQUEST)",
        ),
        (
            answer(
                400,
                {
                    "result": "error",
                    "msg": "Missing 'content' argument",
                    "code": "REQUEST_VARIABLE_MISSING",
                    "var_name": "content",
                },
            ),
            PermanentError,
            None,
            "(REQUEST_VARIABLE_MISSING)",
        ),
        (
            answer(400, {"result": "error", "msg": "line one\nline two"}),
            PermanentError,
            None,
            "line one line two (BAD_REQUEST)",
        ),
        (
            answer(
                429,
                {"result": "error", "msg": "", "code": "RATE_LIMIT_HIT", "retry-after": 0.75},
                {"Retry-After": "1"},
            ),
            RateLimited,
            0.75,
            "answered 429",
        ),
        (answer(429, b"Too Many Requests", {"Retry-After": "3"}), RateLimited, 3.0, "429"),
        (
            answer(429, b"", {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "0"}),
            RateLimited,
            0.0,
            "429",
        ),
        (answer(502, b"<html>Bad Gateway</html>"), RetryableError, None, "answered 502"),
        (
            answer(503, {"result": "error", "msg": "down"}, {"Retry-After": "5"}),
            RetryableError,
            5.0,
            "503",
        ),
        (answer(404, b"<html>Not Found</html>"), PermanentError, None, "answered 404"),
        (
            answer(301, b"", {"Location": "https://new.zulipchat.com/api/v1/messages"}),
            PermanentError,
            None,
            "redirect to https://new.zulipchat.com/api/v1/messages",
        ),
        (answer(200, b"<html>login</html>"), PermanentError, None, "not a Zulip success answer"),
        (answer(200, {"result": "success", "msg": ""}), PermanentError, None, "not a Zulip"),
    ],
)
def test_answers_are_classified_for_the_engine(
    response: httpx.Response, error: type[Exception], retry_after: float | None, says: str
) -> None:
    with pytest.raises(error) as caught:
        read_answer(response, MessageSentAnswer, what="Zulip POST /messages")

    assert type(caught.value) is error
    assert says in str(caught.value)
    assert getattr(caught.value, "retry_after", None) == retry_after


def test_success_answer_is_typed_and_ignores_fields_zulip_adds_later() -> None:
    response = answer(
        200,
        {
            "result": "success",
            "msg": "",
            "id": 42,
            "automatic_new_visibility_policy": 2,
            "ignored_parameters_unsupported": ["x"],
        },
    )

    assert read_answer(response, MessageSentAnswer, what="w").id == 42


# --- the double's inbound side (register a queue, long-poll its events) ------------------------


async def register(http: httpx.AsyncClient, zulip: ZulipDouble, **form: str) -> str:
    response = await http.post(
        f"{zulip.url}/api/v1/register", data=form, auth=(zulip.email, zulip.api_key)
    )
    assert response.status_code == 200, response.text
    return str(response.json()["queue_id"])


async def events(
    http: httpx.AsyncClient,
    zulip: ZulipDouble,
    queue_id: str,
    last_event_id: int = -1,
    **params: str,
) -> httpx.Response:
    return await http.get(
        f"{zulip.url}/api/v1/events",
        auth=(zulip.email, zulip.api_key),
        params={"queue_id": queue_id, "last_event_id": last_event_id, **params},
    )


async def test_idle_queue_answers_a_heartbeat_after_the_long_poll(
    zulip: ZulipDouble, http: httpx.AsyncClient
) -> None:
    zulip.longpoll_timeout = 0.1
    queue_id = await register(http, zulip, event_types='["message"]')

    response = await events(http, zulip, queue_id)

    assert response.json()["events"] == [{"type": "heartbeat", "id": 0}]


async def test_pushed_message_wakes_a_waiting_long_poll(
    zulip: ZulipDouble, http: httpx.AsyncClient
) -> None:
    zulip.longpoll_timeout = 5.0
    queue_id = await register(http, zulip, event_types='["message"]')
    poll = asyncio.create_task(events(http, zulip, queue_id))
    await asyncio.to_thread(zulip.wait_for_request, "/api/v1/events")
    message = zulip.push_message(content="deploy?", stream="general", topic="ops")
    response = await asyncio.wait_for(poll, timeout=2.0)

    (event,) = response.json()["events"]
    assert event["type"] == "message" and event["message"] == message


async def test_acknowledged_events_are_not_sent_again(
    zulip: ZulipDouble, http: httpx.AsyncClient, send: Send
) -> None:
    queue_id = await register(http, zulip)
    await send({"type": "stream", "to": "general", "topic": "t", "content": "one"})
    await send({"type": "stream", "to": "general", "topic": "t", "content": "two"})

    first = (await events(http, zulip, queue_id)).json()["events"]
    rest = (await events(http, zulip, queue_id, last_event_id=first[0]["id"])).json()["events"]

    assert [e["message"]["content"] for e in first] == ["one", "two"]
    assert [e["message"]["content"] for e in rest] == ["two"]


async def test_expired_queue_answers_bad_event_queue_id(
    zulip: ZulipDouble, http: httpx.AsyncClient
) -> None:
    queue_id = await register(http, zulip)
    zulip.expire_queue(queue_id)

    response = await events(http, zulip, queue_id, dont_block="true")

    assert response.status_code == 400
    assert response.json() == {
        "result": "error",
        "code": "BAD_EVENT_QUEUE_ID",
        "msg": f"Bad event queue ID: {queue_id}",
        "queue_id": queue_id,
    }
    assert zulip.queue_ids == []
