"""How Zulip answers, turned into a typed result or one of the hub's errors.

Zulip wraps every answer in ``{"result": "success" | "error", "msg": ..., ...}``. Errors carry a
``code`` (``BAD_REQUEST``, ``STREAM_DOES_NOT_EXIST``, ``INVALID_API_KEY``, ...), usually with a
4xx status. A rate-limited answer is a 429 whose body says how long to wait in ``retry-after``
(seconds, often fractional although the spec types it ``integer``). The body is what the spec
documents, so it wins; the ``Retry-After``/``X-RateLimit-*`` headers are the fallback. An
error that says the state asked for already holds (``REACTION_ALREADY_EXISTS``) is told apart
by ``already_so``, for actions that ask for a state.
"""

from __future__ import annotations

from typing import Literal, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from integrationhub.connectors.answers import json_or_none
from integrationhub.core.http import RETRYABLE_STATUS, one_line, raise_for_status, retry_after
from integrationhub.errors import PermanentError, RateLimited

__all__ = [
    "EventsAnswer",
    "FileUploadedAnswer",
    "MessageSentAnswer",
    "QueueEvent",
    "QueueRegisteredAnswer",
    "ReceivedMessage",
    "Recipient",
    "SuccessAnswer",
    "ZulipErrorAnswer",
    "already_so",
    "queue_gone",
    "read_answer",
]


class _Answer(BaseModel):
    # Zulip adds fields over time (``ignored_parameters_unsupported``, ...): keep only ours.
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class ZulipErrorAnswer(_Answer):
    result: Literal["error"]
    msg: str = ""
    code: str = "BAD_REQUEST"  # Zulip before 4.0 sent no code for some errors
    retry_after: float | None = Field(default=None, alias="retry-after", ge=0)

    def describe(self) -> str:
        return f"{one_line(self.msg) or 'no message'} ({self.code})"


class MessageSentAnswer(_Answer):
    """The answer of ``POST /api/v1/messages``."""

    result: Literal["success"]
    msg: str = ""
    id: int


class SuccessAnswer(_Answer):
    """The answer of operations that only say they did it (``add-reaction``, ...)."""

    result: Literal["success"]
    msg: str = ""


class FileUploadedAnswer(_Answer):
    """The answer of ``POST /api/v1/user_uploads``: the file's URL, under ``url`` since Zulip
    9.0 (feature level 272) and ``uri`` before (still sent, deprecated); since Zulip 10.0
    (feature level 285) also the ``filename`` Zulip stored it as."""

    result: Literal["success"]
    url: str | None = Field(default=None, min_length=1)
    uri: str | None = Field(default=None, min_length=1)
    filename: str | None = None

    @model_validator(mode="after")
    def _has_a_url(self) -> FileUploadedAnswer:
        if self.url is None and self.uri is None:
            raise ValueError("neither url nor uri")
        return self

    @property
    def location(self) -> str:
        """The file's URL, by whichever name this server gives it."""
        return self.url or self.uri or ""  # never "": the validator saw one


class QueueRegisteredAnswer(_Answer):
    """The answer of ``POST /api/v1/register``: the new queue and the id to acknowledge from."""

    result: Literal["success"]
    queue_id: str
    last_event_id: int


class Recipient(_Answer):
    id: int
    email: str


class ReceivedMessage(_Answer):
    """A message in a ``message`` event, with the fields the hub passes on."""

    id: int
    type: str  # "stream" or "private"
    sender_id: int
    sender_email: str
    sender_full_name: str = ""
    # A stream's name for a stream message; the participants for a direct message.
    display_recipient: str | list[Recipient]
    stream_id: int | None = None
    subject: str = ""
    content: str
    content_type: str = "text/x-markdown"
    timestamp: int


class QueueEvent(_Answer):
    """One event of ``GET /api/v1/events``: ``message`` and ``flags`` only in message events."""

    id: int
    type: str
    message: ReceivedMessage | None = None
    flags: list[str] = []


class EventsAnswer(_Answer):
    """The answer of ``GET /api/v1/events``."""

    result: Literal["success"]
    events: list[QueueEvent]


Answer = TypeVar("Answer", bound=_Answer)


def queue_gone(response: httpx.Response) -> bool:
    """Whether Zulip says the event queue no longer exists (``BAD_EVENT_QUEUE_ID``): it was
    garbage-collected after some idle minutes or a server restart, and must be registered
    anew. The events it held are lost; Zulip cannot replay them."""
    error = _error(response)
    return error is not None and error.code == "BAD_EVENT_QUEUE_ID"


def already_so(response: httpx.Response, *, code: str, legacy_msg: str) -> bool:
    """Whether Zulip refused because what was asked already holds: the error ``code`` (say
    ``REACTION_ALREADY_EXISTS``), or, from servers older than that code, a ``BAD_REQUEST``
    with ``legacy_msg`` (in English: Zulip translates ``msg`` to the bot's language, so on
    such servers only an English-speaking bot is recognised)."""
    if response.status_code >= 500 or response.status_code == 429:
        return False
    error = _error(response)
    if error is None:
        return False
    if error.code == code:
        return True
    return error.code == "BAD_REQUEST" and error.msg.strip() == legacy_msg


def read_answer(response: httpx.Response, model: type[Answer], *, what: str) -> Answer:
    """The typed success answer, or raise what the answer means for the engine.

    429 → ``RateLimited`` waiting the body's ``retry-after`` (else the header); 5xx and the
    other retryable statuses → ``RetryableError``; a Zulip error body (200/4xx) →
    ``PermanentError`` with Zulip's message and code; a redirect or anything unreadable →
    ``PermanentError`` (the shared client does not follow redirects: they would drop auth).
    """
    status = response.status_code
    error = _error(response)
    if status == 429:
        wait = error.retry_after if error and error.retry_after is not None else None
        detail = error.describe() if error else "rate limited"
        raise RateLimited(
            f"{what} answered 429: {detail}",
            retry_after=wait if wait is not None else retry_after(response),
        )
    if status >= 500 or status in RETRYABLE_STATUS:
        raise_for_status(response, what=what)
    if error is not None:
        raise PermanentError(f"{what} answered {status}: {error.describe()}")
    raise_for_status(response, what=what)
    if response.is_redirect:  # e.g. http:// to https://, or a renamed organisation
        location = response.headers.get("Location", "?")
        raise PermanentError(
            f"{what} answered {status}, a redirect to {location}; check the credential's site"
        )
    try:
        return model.model_validate_json(response.content)
    except ValidationError as exc:
        raise PermanentError(
            f"{what} answered {status} with a body that is not a Zulip success answer"
        ) from exc


def _error(response: httpx.Response) -> ZulipErrorAnswer | None:
    body = json_or_none(response)
    if not isinstance(body, dict) or body.get("result") != "error":
        return None
    try:
        return ZulipErrorAnswer.model_validate(body)
    except ValidationError:
        return None
