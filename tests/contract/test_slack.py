"""The Slack connector against a Slack double that checks every request with Slack's spec.

The actions run exactly as the engine runs them (``Action.invoke``: input validation, timeout,
output check) over real HTTP; the double (tests/doubles/slack.py) validates each
chat.postMessage request against shared/specs/slack_web_openapi_v2.json, each webhook body
against Slack's documented payload, and the ``slack`` fixture fails the test on any violation.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from pydantic import BaseModel, ValidationError

from integrationhub.connectors.base import Action, ActionContext, Credential
from integrationhub.connectors.slack import (
    SlackBotCredential,
    SlackConnector,
    SlackMessageSent,
    SlackWebhookCredential,
    SlackWebhookMessageSent,
    read_message_answer,
)
from integrationhub.core.http import new_client
from integrationhub.errors import ConnectorError, PermanentError, RateLimited, RetryableError
from tests.doubles.slack import SlackDouble

pytestmark = pytest.mark.contract

SEND = SlackConnector.actions["slack-message"]
WEBHOOK = SlackConnector.actions["slack-webhook-message"]
Invoke = Callable[..., Awaitable[BaseModel]]


def bot(slack: SlackDouble, **changes: str) -> SlackBotCredential:
    return SlackBotCredential.model_validate(
        {"token": slack.token, "base_url": slack.api_url, **changes}
    )


def hook(slack: SlackDouble, url: str | None = None) -> SlackWebhookCredential:
    return SlackWebhookCredential.model_validate({"url": url or slack.webhook_url})


def invoker(
    slack: SlackDouble,
    http: httpx.AsyncClient,
    action: Action,
    default: Callable[[SlackDouble], Credential],
) -> Invoke:
    async def invoke(params: dict[str, Any], *, credential: Credential | None = None) -> BaseModel:
        context = ActionContext(run_id="run-1", step_id="notify", attempt=1, http=http)
        return await action.invoke(
            credential=credential or default(slack), params=params, context=context
        )

    return invoke


@pytest.fixture
def send(slack: SlackDouble, http: httpx.AsyncClient) -> Invoke:
    """Invoke ``slack-message`` the way the engine does, with the double's bot token."""
    return invoker(slack, http, SEND, bot)


@pytest.fixture
def post(slack: SlackDouble, http: httpx.AsyncClient) -> Invoke:
    """Invoke ``slack-webhook-message`` the way the engine does, with the double's webhook."""
    return invoker(slack, http, WEBHOOK, hook)


def assert_no_secret(error: BaseException, *secrets: str) -> None:
    """Not in the error, nor in the chain a traceback would show with it."""
    seen: BaseException | None = error
    while seen is not None:
        for text in (str(seen), repr(seen), getattr(seen, "message", "")):
            for secret in secrets:
                assert secret not in text, f"{secret!r} in {text!r}"
        seen = seen.__cause__ or (None if seen.__suppress_context__ else seen.__context__)


HI = {"channel": "#general", "text": "hi"}


# --- messages arrive as the spec describes -----------------------------------------------------


async def test_message_is_form_encoded_with_bearer_auth_as_the_spec_declares(
    slack: SlackDouble, send: Invoke
) -> None:
    result = await send({"channel": "#general", "text": "*Deploy* of <https://x.example|v2.3>"})

    (request,) = slack.requests
    assert (request.method, request.path) == ("POST", "/api/chat.postMessage")
    assert request.authorization == f"Bearer {slack.token}"
    assert request.content_type.startswith("application/x-www-form-urlencoded")
    assert request.form == {"channel": "#general", "text": "*Deploy* of <https://x.example|v2.3>"}
    (message,) = slack.messages
    assert result == SlackMessageSent(channel="C0GENERAL01", ts=message["ts"])


async def test_blocks_thread_and_options_are_encoded_as_the_spec_types_them(
    slack: SlackDouble, send: Invoke
) -> None:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*Build* ✅ passed"}}]

    result = await send(
        {
            "channel": "C0GENERAL01",
            "text": "Build passed",
            "blocks": blocks,
            "thread_ts": "1503435956.000247",
            "reply_broadcast": True,
            "unfurl_links": False,
            "unfurl_media": True,
            "mrkdwn": True,
            "username": "CI",
            "icon_emoji": ":robot_face:",
        }
    )

    form = slack.requests[0].form
    assert json.loads(form.pop("blocks")) == blocks
    assert form == {
        "channel": "C0GENERAL01",
        "text": "Build passed",
        "thread_ts": "1503435956.000247",
        "reply_broadcast": "true",
        "unfurl_links": "false",
        "unfurl_media": "true",
        "mrkdwn": "true",
        "username": "CI",
        "icon_emoji": ":robot_face:",
    }
    assert slack.messages[0]["blocks"] == blocks  # as the double decoded them
    assert result.model_dump() == {
        "channel": "C0GENERAL01",
        "ts": slack.messages[0]["ts"],
        "thread_ts": "1503435956.000247",
    }


async def test_blocks_alone_are_sent_without_text(slack: SlackDouble, send: Invoke) -> None:
    await send({"channel": "#general", "text": "  ", "blocks": [{"type": "divider"}]})

    assert "text" not in slack.requests[0].form
    assert json.loads(slack.requests[0].form["blocks"]) == [{"type": "divider"}]


@pytest.mark.parametrize(
    ("channel", "channel_id"),
    [
        ("C0RANDOM001", "C0RANDOM001"),
        ("random", "C0RANDOM001"),
        ("#random", "C0RANDOM001"),
        ("U0ALICE0001", "D0ALICE0001"),
    ],
    ids=["id", "name", "hash-name", "user-id"],
)
async def test_the_answer_names_the_channel_by_id(
    send: Invoke, channel: str, channel_id: str
) -> None:
    result = await send({"channel": channel, "text": "hi"})

    assert isinstance(result, SlackMessageSent) and result.channel == channel_id


async def test_text_of_exactly_the_limit_is_sent_whole(slack: SlackDouble, send: Invoke) -> None:
    await send({"channel": "#general", "text": "x" * 40_000})

    assert slack.messages[0]["text"] == "x" * 40_000


# --- the double holds requests to the spec ------------------------------------------------------


@pytest.mark.parametrize(
    ("form", "code", "complaint"),
    [
        ({"text": "hi"}, "channel_not_found", "'channel' is a required property"),
        ({**HI, "mrkdwn": "yes"}, "invalid_arguments", "'yes' is not of type 'boolean'"),
        ({**HI, "as_robot": "true"}, "invalid_arguments", "'as_robot' was unexpected"),
        ({**HI, "blocks": "[{'type'"}, "invalid_blocks_format", "blocks is not JSON"),
        ({**HI, "blocks": '[{"text": "x"}]'}, "invalid_blocks_format", "'type' is a required"),
        ({**HI, "attachments": '{"a": 1}'}, "invalid_arguments", "is not of type 'array'"),
    ],
    ids=[
        "no-channel",
        "bad-boolean",
        "unknown-argument",
        "blocks-not-json",
        "untyped-block",
        "attachments-not-list",
    ],
)
async def test_double_answers_a_form_that_breaks_the_spec_as_slack_would(
    slack: SlackDouble, http: httpx.AsyncClient, form: dict[str, str], code: str, complaint: str
) -> None:
    response = await http.post(
        f"{slack.api_url}/chat.postMessage",
        data=form,
        headers={"Authorization": f"Bearer {slack.token}"},
    )

    assert response.status_code == 200
    assert response.json()["ok"] is False and response.json()["error"] == code
    (violation,) = slack.take_violations()
    assert (violation.kind, violation.path) == ("request", "/api/chat.postMessage")
    assert complaint in violation.message
    assert slack.messages == []


@pytest.mark.parametrize(
    ("request_args", "code", "kind"),
    [
        ({"data": HI}, "not_authed", "request"),
        ({"data": HI, "headers": {"Authorization": "Basic eDp5"}}, "not_authed", "request"),
        (
            {"content": b"x", "headers": {"Content-Type": "text/plain"}},
            "invalid_post_type",
            "request",
        ),
        ({"json": HI}, "invalid_post_type", "double"),
    ],
    ids=["no-token", "basic-auth", "text-body", "json-body"],
)
async def test_double_answers_a_request_it_cannot_check(
    slack: SlackDouble, http: httpx.AsyncClient, request_args: dict[str, Any], code: str, kind: str
) -> None:
    request_args = dict(request_args)
    headers = dict(request_args.pop("headers", {}))
    if code != "not_authed":
        headers["Authorization"] = f"Bearer {slack.token}"
    response = await http.post(f"{slack.api_url}/chat.postMessage", headers=headers, **request_args)

    assert response.json() == {"ok": False, "error": code}
    assert [v.kind for v in slack.take_violations()] == [kind]


async def test_double_checks_its_own_answers_against_the_spec(
    slack: SlackDouble, send: Invoke
) -> None:
    slack.error_next("made_up_error")

    with pytest.raises(PermanentError, match="made_up_error"):
        await send(HI)

    (violation,) = slack.take_violations()
    assert violation.kind == "response" and "'made_up_error' is not one of" in violation.message


async def test_double_plays_slacks_own_refusals_without_a_violation(
    slack: SlackDouble, http: httpx.AsyncClient
) -> None:
    auth = {"Authorization": f"Bearer {slack.token}"}
    url = f"{slack.api_url}/chat.postMessage"

    no_text = await http.post(url, data={"channel": "#general"}, headers=auth)
    too_long = await http.post(url, data={**HI, "text": "x" * 40_001}, headers=auth)

    assert no_text.json() == {"ok": False, "error": "no_text"}
    assert too_long.json() == {"ok": False, "error": "msg_too_long"}
    assert slack.violations == []


# --- answers become the hub's errors -----------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"channel": "#nope", "text": "hi"}, "channel_not_found: use the channel's ID"),
        ({"channel": "secret-plans", "text": "hi"}, "channel_not_found"),
        ({"channel": "announcements", "text": "hi"}, "not_in_channel: invite the bot"),
        ({"channel": "old-news", "text": "hi"}, "is_archived"),
    ],
    ids=["unknown", "private-not-joined", "public-not-joined", "archived"],
)
async def test_ok_false_is_a_permanent_failure_with_slacks_error(
    slack: SlackDouble, send: Invoke, params: dict[str, Any], says: str
) -> None:
    with pytest.raises(PermanentError) as caught:
        await send(params)

    assert caught.value.message.startswith("Slack chat.postMessage failed: ")
    assert says in caught.value.message
    assert [r.status for r in slack.requests] == [200]  # HTTP 200, and still a failure
    assert slack.messages == []


@pytest.mark.parametrize(
    ("code", "error"),
    [
        ("internal_error", RetryableError),
        ("fatal_error", RetryableError),
        ("service_unavailable", RetryableError),
        ("request_timeout", RetryableError),
        ("team_added_to_org", RetryableError),
        ("ratelimited", RateLimited),
        ("rate_limited", RateLimited),
        ("invalid_auth", PermanentError),
        ("not_authed", PermanentError),
        ("token_revoked", PermanentError),
        ("missing_scope", PermanentError),
        ("msg_too_long", PermanentError),
        ("too_many_attachments", PermanentError),
        ("invalid_blocks", PermanentError),
        ("restricted_action", PermanentError),
        ("invalid_arguments", PermanentError),
    ],
)
async def test_slack_errors_are_classified_for_the_engine(
    slack: SlackDouble, send: Invoke, code: str, error: type[ConnectorError]
) -> None:
    slack.error_next(code)

    with pytest.raises(ConnectorError) as caught:
        await send(HI)

    assert type(caught.value) is error
    assert code in caught.value.message
    assert slack.messages == []


async def test_ratelimited_without_retry_after_waits_a_second(
    slack: SlackDouble, send: Invoke
) -> None:
    slack.error_next("ratelimited")

    with pytest.raises(RateLimited) as caught:
        await send(HI)

    assert caught.value.retry_after == 1.0


@pytest.mark.parametrize("wait", [1, 0.5, 30])
async def test_429_is_rate_limited_waiting_its_retry_after(
    slack: SlackDouble, send: Invoke, wait: float
) -> None:
    slack.rate_limit_next(1, retry_after=wait)

    with pytest.raises(RateLimited) as caught:
        await send(HI)

    assert caught.value.retry_after == pytest.approx(wait)
    assert caught.value.message == "Slack chat.postMessage answered 429: ratelimited"


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_server_error_is_retryable(slack: SlackDouble, send: Invoke, status: int) -> None:
    slack.fail_next(1, status=status)

    with pytest.raises(RetryableError) as caught:
        await send(HI)

    assert type(caught.value) is RetryableError and str(status) in caught.value.message


async def test_message_after_an_injected_failure_goes_through(
    slack: SlackDouble, send: Invoke
) -> None:
    slack.rate_limit_next(1)

    with pytest.raises(RateLimited):
        await send(HI)
    result = await send(HI)

    assert [r.status for r in slack.requests] == [429, 200]
    assert isinstance(result, SlackMessageSent)


async def test_wrong_token_is_permanent_and_no_token_is_ever_shown(
    slack: SlackDouble, send: Invoke
) -> None:
    wrong = "xoxb-wrong-s3cr3t-do-not-print"

    with pytest.raises(PermanentError) as caught:
        await send(HI, credential=bot(slack, token=wrong))

    assert "invalid_auth: check the slack-bot credential's token" in caught.value.message
    assert_no_secret(caught.value, wrong, slack.token)
    assert slack.requests[0].authorization == f"Bearer {wrong}"


async def test_unreachable_api_is_retryable(slack: SlackDouble, send: Invoke) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago, now closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    with pytest.raises(RetryableError, match="ConnectError"):
        await send(HI, credential=bot(slack, base_url=f"http://127.0.0.1:{port}/api"))


async def test_a_webhook_credential_cannot_send_as_a_bot(slack: SlackDouble, send: Invoke) -> None:
    with pytest.raises(PermanentError, match="slack-message needs a slack-bot credential"):
        await send(HI, credential=hook(slack))

    assert slack.requests == []


# --- malformed and hostile answers --------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "content_type", "error", "says"),
    [
        (200, "OK", "text/plain", PermanentError, "answered 200 with OK, not a chat.postMessage"),
        (200, "", "application/json", PermanentError, "with an empty body"),
        (
            200,
            "<!DOCTYPE html><html><head><title>Sign in | Corp Proxy</title></head></html>",
            "text/html",
            PermanentError,
            "with an HTML page (Sign in | Corp Proxy)",
        ),
        (200, '{"ok": true}', "application/json", PermanentError, "not a chat.postMessage"),
        (200, '{"ok": false}', "application/json", PermanentError, "failed: unknown_error"),
        (200, '{"ok": "yes", "ts": 1}', "application/json", PermanentError, "not a chat.post"),
        (502, "<html><title>502 Bad Gateway</title></html>", "text/html", RetryableError, "502"),
        (404, "<html>Not Found</html>", "text/html", PermanentError, "answered 404: an HTML"),
        (302, "", "text/plain", PermanentError, "check the credential's base_url"),
    ],
    ids=[
        "text",
        "empty",
        "html-login",
        "ok-without-ts",
        "ok-false-bare",
        "wrong-types",
        "html-502",
        "html-404",
        "redirect",
    ],
)
async def test_malformed_answers_give_clear_errors(
    slack: SlackDouble,
    send: Invoke,
    status: int,
    body: str,
    content_type: str,
    error: type[ConnectorError],
    says: str,
) -> None:
    headers = {"Location": "https://slack.example/login"} if status == 302 else None
    slack.answer_next(status, body, content_type=content_type, headers=headers)

    with pytest.raises(ConnectorError) as caught:
        await send(HI)

    assert type(caught.value) is error
    assert says in caught.value.message


async def test_a_huge_error_answer_gives_a_bounded_message(
    slack: SlackDouble, send: Invoke
) -> None:
    slack.answer_next(200, json.dumps({"ok": False, "error": "e" * 1_000_000}))

    with pytest.raises(PermanentError) as caught:
        await send(HI)

    assert len(caught.value.message) < 200 and "eeee" in caught.value.message


async def test_an_answer_over_the_size_cap_is_refused(slack: SlackDouble, send: Invoke) -> None:
    slack.answer_next(200, "x" * 100_000, content_type="text/plain")

    async with new_client(max_response_bytes=64 * 1024, allow=["127.0.0.1/32"]) as small:
        context = ActionContext(run_id="r", step_id="s", attempt=1, http=small)
        with pytest.raises(PermanentError, match="larger than the cap of 65536 bytes"):
            await SEND.invoke(credential=bot(slack), params=HI, context=context)


async def test_an_answer_echoing_the_token_does_not_leak_it(
    slack: SlackDouble, send: Invoke
) -> None:
    slack.answer_next(400, f"bad token {slack.token}", content_type="text/plain")
    slack.answer_next(200, json.dumps({"ok": False, "error": slack.token}))

    for _ in range(2):
        with pytest.raises(PermanentError) as caught:
            await send(HI)
        assert "[redacted]" in caught.value.message
        assert_no_secret(caught.value, slack.token)


# --- bad input never reaches Slack --------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "complaint"),
    [
        ({"channel": "#general"}, "needs text, blocks or attachments"),
        ({**HI, "text": " \n "}, "needs text, blocks or attachments"),
        ({**HI, "text": "x" * 40_001}, "at most 40000 characters"),
        ({**HI, "text": "a\x00b"}, "NUL"),
        ({**HI, "blocks": []}, "at least 1 item"),
        ({**HI, "blocks": [{"text": "no type"}]}, 'every block needs a "type"'),
        ({**HI, "blocks": [{"type": "divider"}] * 51}, "at most 50 items"),
        ({**HI, "attachments": [{"text": "a"}] * 101}, "at most 100 items"),
        ({**HI, "thread_ts": "1503435956.2"}, "should match pattern"),
        ({**HI, "thread_ts": 1503435956.000247}, "valid string"),
        ({**HI, "reply_broadcast": True}, "set thread_ts too"),
        ({**HI, "channel": ""}, "at least 1 character"),
        ({**HI, "channel": "gen eral"}, "should match pattern"),
        ({**HI, "channel": "general\r\nX-Injected: 1"}, "should match pattern"),
        ({**HI, "icon_emoji": ":a:", "icon_url": "https://x.example/i.png"}, "not both"),
        ({**HI, "icon_emoji": "robot"}, "should match pattern"),
        ({**HI, "icon_url": "javascript:alert(1)"}, "http:// or https://"),
        ({**HI, "username": "bot\nname"}, "invalid character"),
        ({**HI, "as_user": True}, "Extra inputs are not permitted"),
        ({"text": "hi"}, "channel: Field required"),
    ],
    ids=[
        "nothing",
        "blank-text",
        "oversized-text",
        "nul",
        "empty-blocks",
        "untyped-block",
        "too-many-blocks",
        "too-many-attachments",
        "short-thread-ts",
        "float-thread-ts",
        "broadcast-without-thread",
        "empty-channel",
        "space-in-channel",
        "crlf-in-channel",
        "two-icons",
        "bad-emoji",
        "script-icon-url",
        "newline-in-username",
        "unknown-field",
        "no-channel",
    ],
)
async def test_invalid_input_is_refused_before_any_request(
    slack: SlackDouble, send: Invoke, params: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(PermanentError, match="invalid input for slack-message") as caught:
        await send(params)

    assert complaint in caught.value.message
    assert slack.requests == []


# --- the credentials ----------------------------------------------------------------------------


def test_bot_credential_defaults_to_slack_and_masks_its_token() -> None:
    credential = SlackBotCredential(token="xoxb-1-2-s3cr3t")  # type: ignore[arg-type]

    assert credential.base_url == "https://slack.com/api"
    assert SlackBotCredential.secret_fields() == ["token"]
    assert "s3cr3t" not in repr(credential) and "s3cr3t" not in str(credential.model_dump())


@pytest.mark.parametrize(
    "token", ["xoxp-1-2-user-token", "s3cr3t", "xoxb-12", "xoxb-1 2-s3cr3t", "xoxb-1-2-s3cr3t\n"]
)
def test_a_token_that_is_not_a_bot_token_is_refused_without_showing_it(token: str) -> None:
    with pytest.raises(ValidationError) as caught:
        SlackBotCredential(token=token)  # type: ignore[arg-type]

    messages = [e["msg"] for e in caught.value.errors(include_input=False)]
    assert not any(token.strip() in m for m in messages)


@pytest.mark.parametrize(
    ("base_url", "normalised"),
    [("https://slack.com/api/", "https://slack.com/api"), ("http://127.0.0.1:9/api", None)],
)
def test_base_url_is_normalised(base_url: str, normalised: str | None) -> None:
    credential = SlackBotCredential(token="xoxb-1-2-3", base_url=base_url)  # type: ignore[arg-type]

    assert credential.base_url == (normalised or base_url)


@pytest.mark.parametrize(
    "url",
    [
        "hooks.slack.com/services/T0/B0/s3cr3t",
        "ftp://hooks.slack.com/services/T0/B0/s3cr3t",
        "https://hooks.slack.com",
        "https://user:s3cr3t@hooks.slack.com/services/T0/B0/x",
        "https://hooks.slack.com/services/T0/B0/s3cr3t?x=1",
    ],
)
def test_a_webhook_url_that_is_not_one_is_refused_without_showing_it(url: str) -> None:
    with pytest.raises(ValidationError) as caught:
        SlackWebhookCredential(url=url)  # type: ignore[arg-type]

    (error,) = caught.value.errors(include_input=False)
    assert "s3cr3t" not in error["msg"]


# --- the incoming webhook -----------------------------------------------------------------------


async def test_webhook_message_arrives_as_json_without_auth_header(
    slack: SlackDouble, post: Invoke
) -> None:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*deployed*"}}]

    result = await post(
        {"text": "deployed", "blocks": blocks, "thread_ts": "1503435956.000247", "mrkdwn": True}
    )

    assert result == SlackWebhookMessageSent()
    (request,) = slack.requests
    assert request.path == slack.webhook_path and request.authorization is None
    assert request.content_type == "application/json"
    assert request.json == {
        "text": "deployed",
        "blocks": blocks,
        "thread_ts": "1503435956.000247",
        "mrkdwn": True,
    }
    assert slack.messages[0]["channel"] == "C0GENERAL01"


@pytest.mark.parametrize(
    ("code", "status", "says"),
    [
        ("invalid_payload", 400, "invalid_payload: Slack could not read the message"),
        ("no_text", 400, "no_text"),
        ("action_prohibited", 403, "action_prohibited: an admin restricted"),
        ("invalid_token", 403, "invalid_token"),
        ("channel_not_found", 404, "channel_not_found"),
        ("no_service", 404, "no_service: the webhook was removed"),
        ("channel_is_archived", 410, "channel_is_archived"),
    ],
)
async def test_webhook_error_codes_are_permanent_and_never_show_the_url(
    slack: SlackDouble, post: Invoke, code: str, status: int, says: str
) -> None:
    slack.error_next(code)

    with pytest.raises(PermanentError) as caught:
        await post({"text": "hi"})

    assert caught.value.message.startswith(f"Slack incoming webhook answered {status}: {says}")
    assert_no_secret(caught.value, slack.webhook_url, slack.webhook_path)


async def test_webhook_429_is_rate_limited_and_5xx_retryable(
    slack: SlackDouble, post: Invoke
) -> None:
    slack.rate_limit_next(1, retry_after=2)
    slack.error_next("rollup_error")

    with pytest.raises(RateLimited) as limited:
        await post({"text": "hi"})
    with pytest.raises(RetryableError) as failed:
        await post({"text": "hi"})

    assert limited.value.retry_after == 2.0
    assert type(failed.value) is RetryableError and "500: rollup_error" in failed.value.message


async def test_webhook_that_no_longer_exists_is_permanent(slack: SlackDouble, post: Invoke) -> None:
    gone = slack.webhook_url.replace("DoubleWebhookSecret", "RemovedWebhookSecret")

    with pytest.raises(PermanentError, match="404: no_service") as caught:
        await post({"text": "hi"}, credential=hook(slack, gone))

    assert_no_secret(caught.value, gone, "RemovedWebhookSecret")


@pytest.mark.parametrize(
    ("status", "body", "says"),
    [
        (
            200,
            "<html><title>Welcome</title></html>",
            "200 with an HTML page (Welcome), not Slack's ok",
        ),
        (200, "", "200 with an empty body, not Slack's ok"),
        (404, "<html>Cannot POST {path}</html>", "404: an HTML page"),
        (400, "no such webhook {url}", "400: no such webhook [redacted]"),
        (301, "", "301: an empty body; check the credential's url"),
    ],
    ids=["html-200", "empty-200", "html-404-echoing-path", "echoing-url", "redirect"],
)
async def test_webhook_malformed_answers_give_clear_errors_without_the_url(
    slack: SlackDouble, post: Invoke, status: int, body: str, says: str
) -> None:
    headers = {"Location": slack.webhook_url + "/new"} if status == 301 else None
    text = body.format(path=slack.webhook_path, url=slack.webhook_url)
    content_type = "text/html" if text.startswith("<") else "text/plain"
    slack.answer_next(status, text, content_type=content_type, headers=headers)

    with pytest.raises(PermanentError) as caught:
        await post({"text": "hi"})

    assert says in caught.value.message
    assert_no_secret(caught.value, slack.webhook_url, slack.webhook_path)


async def test_webhook_answer_over_the_cap_is_refused_without_the_url(
    slack: SlackDouble,
) -> None:
    slack.answer_next(200, "x" * 100_000, content_type="text/plain")

    async with new_client(max_response_bytes=64 * 1024, allow=["127.0.0.1/32"]) as small:
        context = ActionContext(run_id="r", step_id="s", attempt=1, http=small)
        with pytest.raises(PermanentError, match="larger than the cap") as caught:
            await WEBHOOK.invoke(credential=hook(slack), params={"text": "hi"}, context=context)

    assert_no_secret(caught.value, slack.webhook_url, slack.webhook_path)


async def test_unreachable_webhook_is_retryable_without_the_url(
    slack: SlackDouble, post: Invoke
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/services/T0/B0/UnreachableSecret000"

    with pytest.raises(RetryableError, match="ConnectError") as caught:
        await post({"text": "hi"}, credential=hook(slack, url))

    assert_no_secret(caught.value, url, "UnreachableSecret000")


@pytest.mark.parametrize(
    ("params", "complaint"),
    [
        ({}, "needs text, blocks or attachments"),
        ({"text": "hi", "channel": "#general"}, "Extra inputs are not permitted"),
        ({"text": "x" * 40_001}, "at most 40000 characters"),
        ({"blocks": [{}]}, 'every block needs a "type"'),
    ],
    ids=["empty", "channel-override", "oversized", "untyped-block"],
)
async def test_invalid_webhook_input_is_refused_before_any_request(
    slack: SlackDouble, post: Invoke, params: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(PermanentError, match="invalid input for slack-webhook-message") as caught:
        await post(params)

    assert complaint in caught.value.message
    assert slack.requests == []


async def test_a_bot_credential_cannot_post_to_a_webhook(slack: SlackDouble, post: Invoke) -> None:
    with pytest.raises(PermanentError, match="needs a slack-webhook credential"):
        await post({"text": "hi"}, credential=bot(slack))


async def test_double_checks_webhook_bodies_by_hand(
    slack: SlackDouble, http: httpx.AsyncClient
) -> None:
    typo = await http.post(slack.webhook_url, json={"txt": "hi"})
    not_json = await http.post(
        slack.webhook_url, content=b"text=hi", headers={"Content-Type": "text/plain"}
    )
    empty = await http.post(slack.webhook_url, json={"text": " "})

    assert [(r.status_code, r.text) for r in (typo, not_json, empty)] == [
        (400, "invalid_payload"),
        (400, "invalid_payload"),
        (400, "no_text"),
    ]
    assert [v.kind for v in slack.take_violations()] == ["request", "request"]


# --- read_message_answer, table-driven on canned answers ----------------------------------------


def answer(status: int, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.Response(status, content=content, headers=headers)


@pytest.mark.parametrize(
    ("response", "error", "retry_after", "says"),
    [
        (
            answer(200, {"ok": False, "error": "brand_new_error"}),
            PermanentError,
            None,
            "brand_new_error",
        ),
        (
            answer(
                200,
                {
                    "ok": False,
                    "error": "missing_scope",
                    "needed": "chat:write",
                    "provided": "users:read",
                },
            ),
            PermanentError,
            None,
            "missing_scope: needs scope chat:write",
        ),
        (
            answer(200, {"ok": False, "error": "bad\nline <x>"}),
            PermanentError,
            None,
            "bad?line??x?",
        ),
        (answer(429, b"", {"Retry-After": "7"}), RateLimited, 7.0, "429: rate limited"),
        (
            answer(503, {"ok": False, "error": "service_unavailable"}, {"Retry-After": "5"}),
            RetryableError,
            5.0,
            "503",
        ),
        (answer(408, b"timeout"), RetryableError, None, "408: timeout"),
        (
            answer(200, {"ok": False, "error": "internal_error"}, {"Retry-After": "2"}),
            RetryableError,
            2.0,
            "internal_error",
        ),
        (
            answer(
                400,
                {
                    "ok": False,
                    "error": "invalid_arguments",
                    "response_metadata": {"messages": ["[ERROR] missing channel"]},
                },
            ),
            PermanentError,
            None,
            "[ERROR] missing channel",
        ),
    ],
)
def test_answers_are_classified_for_the_engine(
    response: httpx.Response, error: type[Exception], retry_after: float | None, says: str
) -> None:
    with pytest.raises(error) as caught:
        read_message_answer(response, what="Slack chat.postMessage")

    assert type(caught.value) is error
    assert says in str(caught.value)
    assert getattr(caught.value, "retry_after", None) == retry_after


def test_success_answer_ignores_fields_slack_adds_later() -> None:
    response = answer(
        200,
        {
            "ok": True,
            "channel": "C0GENERAL01",
            "ts": "1503435956.000247",
            "message": {"type": "message", "text": "hi", "ts": "1503435956.000247"},
            "warning": "missing_charset",
            "response_metadata": {"warnings": ["missing_charset"]},
        },
    )

    assert read_message_answer(response, what="w").ts == "1503435956.000247"
