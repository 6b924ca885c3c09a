"""How Slack answers, turned into a typed result or one of the hub's errors.

The Web API answers HTTP 200 whether or not it did what was asked: ``{"ok": true, ...}`` or
``{"ok": false, "error": "channel_not_found"}``. An ``ok: false`` is a failure, never a success.
Rate limits come as HTTP 429 with ``Retry-After`` (body ``ratelimited``); the spec also lists
``rate_limited`` as an error of chat.postMessage. Incoming webhooks answer a plain-text ``ok``,
or a 4xx whose body is the error code (``no_service``, ``channel_is_archived``, ...).

Every message here is bounded and carries no request header; ``redacting`` takes the secrets
out of errors raised under it, which may quote a URL (the transport's) or an echoing answer.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

from integrationhub.connectors.answers import json_or_none
from integrationhub.core.http import RETRYABLE_STATUS, answered_failure, one_line, retry_after
from integrationhub.errors import IntegrationHubError, PermanentError, RateLimited, RetryableError

__all__ = [
    "MessagePostedAnswer",
    "SlackErrorAnswer",
    "read_message_answer",
    "read_webhook_answer",
    "redacting",
]

# Slack names how long to wait in every 429; without one, chat.postMessage's documented pace
# (about a message a second per channel) makes one second the least wait that can help.
FALLBACK_WAIT = 1.0
RATE_LIMITED = frozenset({"ratelimited", "rate_limited"})
# Slack-side trouble that may pass (Web API "errors" common to every method).
TRANSIENT = frozenset(
    {"internal_error", "fatal_error", "service_unavailable", "request_timeout", "team_added_to_org"}
)
_CHECK_TOKEN = "check the slack-bot credential's token"
_ARCHIVED = "the channel is archived"
_API_HINTS = {
    "not_authed": _CHECK_TOKEN,
    "invalid_auth": _CHECK_TOKEN,
    "account_inactive": _CHECK_TOKEN,
    "token_revoked": _CHECK_TOKEN,
    "token_expired": _CHECK_TOKEN,
    "not_allowed_token_type": "use a bot token (xoxb-)",
    "missing_scope": "add the scope to the Slack app and reinstall it",
    "channel_not_found": "use the channel's ID; invite the bot to private channels",
    "not_in_channel": "invite the bot to the channel (/invite @the-bot)",
    "is_archived": _ARCHIVED,
    "msg_too_long": "shorten the text",
    "no_text": "send text, blocks or attachments",
    "invalid_blocks": "check the blocks, e.g. in Block Kit Builder",
    "invalid_blocks_format": "blocks must be a JSON array of block objects",
    "restricted_action": "a workspace setting keeps the bot from posting there",
}
_WEBHOOK_HINTS = {
    "invalid_payload": "Slack could not read the message",
    "no_text": "send text, blocks or attachments",
    "invalid_token": "the webhook's URL is no longer valid",
    "no_service": "the webhook was removed or its app uninstalled",
    "no_team": "the webhook's workspace is gone",
    "channel_not_found": "the webhook's channel was deleted",
    "channel_is_archived": _ARCHIVED,
    "action_prohibited": "an admin restricted posting to this channel",
    "posting_to_general_channel_denied": "only admins may post in this channel",
}


class _Answer(BaseModel):
    # Slack adds fields over time (``warning``, ``response_metadata``): keep only ours.
    model_config = ConfigDict(extra="ignore", frozen=True)


class SlackErrorAnswer(_Answer):
    ok: Literal[False]
    error: str = "unknown_error"
    needed: str | None = None  # the scope missing_scope is about
    response_metadata: dict[str, Any] | None = None

    @property
    def code(self) -> str:
        return _code(self.error)

    def describe(self) -> str:
        parts = [self.code]
        if self.needed:
            parts.append(f"needs scope {_code(self.needed)}")
        messages = (self.response_metadata or {}).get("messages")
        if isinstance(messages, list) and messages:
            parts.append(" ".join(str(m) for m in messages[:3]))
        if hint := _API_HINTS.get(self.code):
            parts.append(hint)
        return one_line(": ".join(parts))


class PostedMessage(_Answer):
    ts: str
    thread_ts: str | None = None


class MessagePostedAnswer(_Answer):
    """The answer of ``chat.postMessage``."""

    ok: Literal[True]
    channel: str
    ts: str
    message: PostedMessage | None = None


def read_message_answer(response: httpx.Response, *, what: str) -> MessagePostedAnswer:
    """The success answer, or raise what the answer means for the engine.

    429 or ``ratelimited`` → ``RateLimited`` waiting ``Retry-After``; 5xx, 408/409/425 and
    Slack's transient errors → ``RetryableError``; any other ``ok: false``, 4xx, redirect or
    unreadable body → ``PermanentError`` (the message may have been posted: never retried).
    """
    status = response.status_code
    error = _error(response)
    if status == 429 or (error is not None and error.code in RATE_LIMITED):
        detail = error.code if error else "rate limited"
        raise RateLimited(f"{what} answered {status}: {detail}", retry_after=_wait(response))
    if status >= 500 or status in RETRYABLE_STATUS:
        detail = error.describe() if error else _body(response)
        raise answered_failure(f"{what} answered {status}: {detail}", response)
    if error is not None:
        if error.code in TRANSIENT:
            raise RetryableError(
                f"{what} failed: {error.describe()}", retry_after=retry_after(response)
            )
        raise PermanentError(f"{what} failed: {error.describe()}")
    if status >= 300:
        raise PermanentError(f"{what} answered {status}: {_body(response)}{_redirect(response)}")
    try:
        return MessagePostedAnswer.model_validate_json(response.content)
    except ValidationError:
        raise PermanentError(
            f"{what} answered {status} with {_body(response)}, not a chat.postMessage answer"
        ) from None


def read_webhook_answer(response: httpx.Response, *, what: str) -> None:
    """Return if Slack said ``ok``, else raise what the answer means for the engine."""
    status = response.status_code
    if status == 429:
        raise RateLimited(f"{what} answered 429: {_body(response)}", retry_after=_wait(response))
    if status >= 500 or status in RETRYABLE_STATUS:
        raise answered_failure(f"{what} answered {status}: {_body(response)}", response)
    if status >= 300:
        detail = _body(response)
        if hint := _WEBHOOK_HINTS.get(_code(response.text.strip())):
            detail = f"{detail}: {hint}"
        if status < 400:  # its Location may be the webhook's own URL: not quoted
            detail = f"{detail}; check the credential's url"
        raise PermanentError(f"{what} answered {status}: {detail}")
    if response.text.strip() != "ok":
        raise PermanentError(f"{what} answered {status} with {_body(response)}, not Slack's ok")


@contextmanager
def redacting(*secrets: str) -> Iterator[None]:
    """Errors raised in the block name none of ``secrets``: each is replaced by [redacted].
    A redacted error is raised without its chain, which still holds the secrets."""
    secrets = tuple(sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True))
    try:
        yield
    except IntegrationHubError as exc:
        message = exc.message
        for secret in secrets:
            message = message.replace(secret, "[redacted]")
        if message == exc.message:
            raise
        clean = copy.copy(exc)  # the same class, with ``retry_after`` and the like
        clean.message, clean.args = message, (message,)
        raise clean from None


def _error(response: httpx.Response) -> SlackErrorAnswer | None:
    body = json_or_none(response)
    if not isinstance(body, dict) or body.get("ok") is not False:
        return None
    try:
        return SlackErrorAnswer.model_validate(body)
    except ValidationError:
        return None


def _wait(response: httpx.Response) -> float:
    wait = retry_after(response)
    return FALLBACK_WAIT if wait is None else wait


def _code(text: str) -> str:
    """An error code as Slack spells them (``channel_not_found``); anything else, bounded."""
    return re.sub(r"[^\w.:-]", "?", text)[:80] or "?"


def _redirect(response: httpx.Response) -> str:
    if not response.is_redirect:
        return ""
    location = response.headers.get("Location", "?")
    return f", a redirect to {one_line(location, 200)}; check the credential's base_url"


def _body(response: httpx.Response) -> str:
    """What the body is, in a few words: a bounded one-line excerpt, or the kind of page."""
    content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    text = " ".join(response.text[:4096].split())  # a huge body is no clearer whole
    if not text:
        return "an empty body"
    if content_type == "text/html" or text[:15].lower().startswith(("<!doctype", "<html")):
        title = re.search(r"<title[^>]*>(.*?)</title>", text, re.IGNORECASE)
        return "an HTML page" + (f" ({one_line(title.group(1), 100)})" if title else "")
    return one_line(text)
