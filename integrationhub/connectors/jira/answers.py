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

from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, Field

from integrationhub.connectors.answers import AnswerReader, json_or_none
from integrationhub.core.http import one_line, retry_after
from integrationhub.errors import RateLimited

__all__ = ["CommentAnswer", "CreatedIssueAnswer", "read_answer"]

_MAX_ERRORS = 5


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

_READER = AnswerReader(
    vendor="Jira",
    tokens=r"\bATATT[\w=-]{16,}",
    hints={
        401: "Jira refused the email and API token (wrong, revoked or expired)",
        403: "the account may not do this in the project (Browse projects and Create issues, "
        "or Add comments, are needed)",
        413: "the issue has reached a per-issue limit",
        422: "a configuration problem in Jira prevents this",
    },
    redirect_hint="check the credential's site",
    hidden="the account cannot see it",
)


def read_answer(
    response: httpx.Response, model: type[Answer], *, what: str, subject: str
) -> Answer:
    """The typed success answer, or raise what the answer means for the engine.

    ``what`` names the call (``"Jira POST /rest/api/3/issue"``), ``subject`` what it was about
    (``"issue OPS-12"``) for a 404's message.
    """
    body = json_or_none(response)
    said = _describe(body) if isinstance(body, dict) else _READER.excerpt(response)
    if response.status_code == 429:
        reason = _READER.clean(response.headers.get("RateLimit-Reason", ""))[:60]
        raise RateLimited(
            f"{what} answered 429, rate limited{f' ({reason})' if reason else ''}: {said}",
            retry_after=retry_after(response),
        )
    return _READER.read(response, model, body=body, said=said, what=what, subject=subject)


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
        return one_line(_READER.clean(str(message))) if message else "no error message"
    more = f" (and {len(found) - _MAX_ERRORS} more)" if len(found) > _MAX_ERRORS else ""
    return one_line("; ".join(_READER.clean(text)[:150] for text in found[:_MAX_ERRORS]) + more)
