"""How Jira Cloud answers, turned into a typed result or one of the hub's errors.

Jira's errors are an ``ErrorCollection``: ``{"errorMessages": [...], "errors": {field: message}}``
(the spec's schema), summarised on one bounded line. Some answers are not JSON at all: a 401
for a wrong API token may be plain text, an unknown site or a proxy answers with HTML.

Rate limits (developer.atlassian.com/cloud/jira/platform/rate-limiting): a 429 with
``Retry-After`` in seconds and ``X-RateLimit-Reset`` as an ISO 8601 timestamp (both read by
``core.http.retry_after``) and ``RateLimit-Reason`` naming the limit hit; a 503 may carry
``Retry-After`` too.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from integrationhub.core.http import RETRYABLE_STATUS, retry_after
from integrationhub.errors import PermanentError, RateLimited, RetryableError

__all__ = ["CommentAnswer", "CreatedIssueAnswer", "read_answer"]

_MAX_TEXT = 300
_MAX_ERRORS = 5
# Credentials a hostile or echoing server might quote back: never into an error message.
_SECRETS = re.compile(
    r"(?i)\b(?:bearer|basic|token)\s+(?=[\w.~+/=-]*\d)[\w.~+/=-]{8,}|\bATATT[\w=-]{16,}"
)


class _Answer(BaseModel):
    # Jira adds fields over time: keep only ours.
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class CreatedIssueAnswer(_Answer):
    """``CreatedIssue``, the 201 of ``POST /rest/api/3/issue``."""

    id: str
    key: str
    self_url: str = Field(alias="self")


class CommentAnswer(_Answer):
    """The part of ``Comment``, the 201 of ``POST /rest/api/3/issue/{issueIdOrKey}/comment``,
    the hub passes on."""

    id: str
    self_url: str = Field(alias="self")


Answer = TypeVar("Answer", bound=_Answer)

_PERMANENT_HINTS = {
    401: "Jira refused the email and API token (wrong, revoked or expired)",
    403: "the account may not do this in the project (Browse projects and Create issues, or "
    "Add comments, are needed)",
    413: "the issue has reached a per-issue limit",
    422: "a configuration problem in Jira prevents this",
}


def read_answer(
    response: httpx.Response, model: type[Answer], *, what: str, subject: str
) -> Answer:
    """The typed success answer, or raise what the answer means for the engine.

    ``what`` names the call (``"Jira POST /rest/api/3/issue"``), ``subject`` what it was about
    (``"issue OPS-12"``) for a 404's message.
    """
    status = response.status_code
    body = _json(response)
    said = _describe(body) if isinstance(body, dict) else _excerpt(response)
    if status == 429:
        reason = _clean(response.headers.get("RateLimit-Reason", ""))[:60]
        raise RateLimited(
            f"{what} answered 429, rate limited{f' ({reason})' if reason else ''}: {said}",
            retry_after=retry_after(response),
        )
    if status >= 500 or status in RETRYABLE_STATUS:
        raise RetryableError(f"{what} answered {status}: {said}", retry_after=retry_after(response))
    if 300 <= status < 400:
        location = _clean(response.headers.get("Location", "?"))
        raise PermanentError(
            f"{what} answered {status}, a redirect to {location}: check the credential's site"
        )
    if status == 404:
        raise PermanentError(
            f"{what} answered 404: {subject} does not exist, or the account cannot see it: {said}"
        )
    if status >= 400:
        hint = _PERMANENT_HINTS.get(status, "Jira refused the request")
        raise PermanentError(f"{what} answered {status}: {hint}: {said}")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        kind = response.headers.get("Content-Type", "no content type").split(";")[0]
        raise PermanentError(
            f"{what} answered {status} with a body that is not what Jira sends "
            f"({_clean(kind)[:60]})"
        ) from exc


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _describe(body: dict[str, Any]) -> str:
    """``errorMessages`` and ``errors`` (``field: message``) on one bounded line."""
    messages = body.get("errorMessages")
    errors = body.get("errors")
    found = [str(m) for m in messages if m] if isinstance(messages, list) else []
    if isinstance(errors, dict):
        found += [f"{field}: {message}" for field, message in errors.items()]
    if not found:
        # Not an ErrorCollection: some gateways answer {"message": ...}.
        message = body.get("message")
        return _bounded(_clean(str(message))) if message else "no error message"
    more = f" (and {len(found) - _MAX_ERRORS} more)" if len(found) > _MAX_ERRORS else ""
    return _bounded("; ".join(_clean(text)[:150] for text in found[:_MAX_ERRORS]) + more)


def _excerpt(response: httpx.Response) -> str:
    text = _clean(response.text)
    return _bounded(text) if text else "an empty body"


def _clean(text: str) -> str:
    """One line, secrets redacted; long enough to bound after, short enough to scan."""
    return _SECRETS.sub("[redacted]", " ".join(str(text)[: 8 * _MAX_TEXT].split()))


def _bounded(text: str) -> str:
    return text if len(text) <= _MAX_TEXT else text[:_MAX_TEXT] + "…"
