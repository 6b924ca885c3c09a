"""Answers no Zulip should give (HTML from a proxy or a login page, cut-off or odd JSON, huge
bodies) become clear, bounded errors, for every action."""

from __future__ import annotations

import json

import pytest

from integrationhub.core.http import new_client
from integrationhub.errors import PermanentError, RetryableError
from tests.contract.zulip_support import *  # noqa: F403
from tests.contract.zulip_support import Invoke
from tests.doubles.zulip import ZulipDouble

pytestmark = pytest.mark.contract

ACTIONS = {
    "zulip-reaction": {"message_id": 5, "emoji_name": "tada"},
    "zulip-upload": {"filename": "a.txt", "content": "hi"},
    "zulip-message": {"type": "stream", "to": "general", "topic": "t", "content": "hi"},
}


@pytest.mark.parametrize("action", list(ACTIONS))
@pytest.mark.parametrize(
    ("status", "body", "content_type", "error", "says"),
    [
        pytest.param(
            200,
            b"<html><body>Log in to Zulip</body></html>",
            "text/html",
            PermanentError,
            "answered 200 with a body that is not a Zulip success answer",
            id="html-login-page",
        ),
        pytest.param(
            200,
            b'{"result": "success", "msg": ',
            "application/json",
            PermanentError,
            "not a Zulip success answer",
            id="truncated-json",
        ),
        pytest.param(
            200,
            b'["result", "success"]',
            "application/json",
            PermanentError,
            "not a Zulip success answer",
            id="json-not-an-object",
        ),
        pytest.param(
            400,
            b"<html>Bad Request</html>",
            "text/html",
            PermanentError,
            "answered 400: <html>Bad Request</html>",
            id="html-error",
        ),
        pytest.param(
            502,
            b"<html>" + b"Bad Gateway " * 1000 + b"</html>",
            "text/html",
            RetryableError,
            "answered 502: <html>Bad Gateway",
            id="proxy-error",
        ),
    ],
)
async def test_malformed_answer_is_a_clear_error(
    zulip: ZulipDouble,
    invoke: Invoke,
    action: str,
    status: int,
    body: bytes,
    content_type: str,
    error: type[Exception],
    says: str,
) -> None:
    zulip.answer_next(status, body, content_type=content_type)

    with pytest.raises(error) as caught:
        await invoke(action, ACTIONS[action])

    message = str(caught.value)
    assert says in message
    assert len(message) < 500  # a bounded excerpt, never the whole body


async def test_upload_answer_without_a_url_is_permanent(zulip: ZulipDouble, invoke: Invoke) -> None:
    zulip.answer_next(200, b'{"result": "success", "msg": ""}', content_type="application/json")

    with pytest.raises(PermanentError, match="not a Zulip success answer"):
        await invoke("zulip-upload", {"filename": "a.txt", "content": "hi"})


async def test_zulip_error_with_a_huge_message_is_cut_to_one_line(
    zulip: ZulipDouble, invoke: Invoke
) -> None:
    msg = "line\n" * 5000
    body = json.dumps({"result": "error", "msg": msg, "code": "BAD_REQUEST"}).encode()
    zulip.answer_next(400, body, content_type="application/json")

    with pytest.raises(PermanentError) as caught:
        await invoke("zulip-reaction", ACTIONS["zulip-reaction"])

    assert "\n" not in caught.value.message
    assert caught.value.message.endswith("… (BAD_REQUEST)")
    assert len(caught.value.message) < 400


@pytest.mark.parametrize("action", list(ACTIONS))
async def test_answer_over_the_response_cap_is_permanent(
    zulip: ZulipDouble, invoke: Invoke, action: str
) -> None:
    zulip.answer_next(200, b'{"result": "success", "msg": "' + b"x" * 200_000 + b'"}')

    async with new_client(max_response_bytes=64 * 1024, allow=["127.0.0.1/32"]) as small:
        with pytest.raises(PermanentError, match="larger than the cap of 65536 bytes"):
            await invoke(action, ACTIONS[action], client=small)
