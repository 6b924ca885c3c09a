"""How GitHub answers, turned into a typed result or one of the hub's errors.

GitHub's errors are ``{"message": ..., "documentation_url": ..., "errors": [...]?}``; a 422
lists what failed in ``errors`` (objects with ``resource``, ``field``, ``code`` and sometimes
``message``, or plain strings). Rate limits come as a 403 *or* a 429 (docs: "Rate limits for
the REST API", "Exceeding the rate limit"):

- primary: ``x-ratelimit-remaining: 0``; wait until ``x-ratelimit-reset`` (Unix time);
- secondary: ``retry-after`` in seconds, or only a message naming a secondary rate limit, in
  which case GitHub asks to wait at least a minute.

Either is ``RateLimited``, so the engine waits and the limiter holds back every later call
with the token; a 403 that is not a limit is a permission problem and permanent.
"""

from __future__ import annotations

from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict

from integrationhub.connectors.answers import AnswerReader, json_or_none
from integrationhub.core.http import one_line, retry_after
from integrationhub.errors import RateLimited

__all__ = ["CommentAnswer", "IssueAnswer", "read_answer"]

SECONDARY_LIMIT_WAIT = 60.0  # "wait for at least one minute before retrying"
_MAX_ERRORS = 5


class _Answer(BaseModel):
    # GitHub adds fields over time: keep only ours.
    model_config = ConfigDict(extra="ignore", frozen=True)


class IssueAnswer(_Answer):
    """The part of ``POST /repos/{owner}/{repo}/issues``'s 201 the hub passes on."""

    id: int
    number: int
    html_url: str
    url: str


class CommentAnswer(_Answer):
    """The part of ``POST /repos/{owner}/{repo}/issues/{issue_number}/comments``'s 201."""

    id: int
    html_url: str
    url: str


Answer = TypeVar("Answer", bound=_Answer)

_READER = AnswerReader(
    vendor="GitHub",
    tokens=r"\b(?:gh[pousr]_\w{20,}|github_pat_\w{20,})",
    hints={
        401: "GitHub refused the token: it is wrong, expired or revoked",
        403: "the token may not do this: a fine-grained token needs Issues read and write on "
        "the repository, a classic one the repo (or public_repo) scope",
        410: "issues are disabled for the repository",
        422: "GitHub refused the input",
    },
    redirect_hint="the repository was renamed or moved, or the credential's api_url is wrong",
    hidden="the token cannot see it (GitHub answers 404 for what a token may not read)",
)


def read_answer(
    response: httpx.Response, model: type[Answer], *, what: str, subject: str
) -> Answer:
    """The typed success answer, or raise what the answer means for the engine.

    ``what`` names the call (``"GitHub POST /repos/{owner}/{repo}/issues"``), ``subject`` what
    it was about (``"repository octo/hello"``) for a 404's message.
    """
    status = response.status_code
    body = json_or_none(response)
    said = _describe(body) if body is not None else _READER.excerpt(response)
    if status in (403, 429) and (wait := _rate_limit_wait(response, body)) is not None:
        raise RateLimited(f"{what} answered {status}, rate limited: {said}", retry_after=wait)
    return _READER.read(response, model, body=body, said=said, what=what, subject=subject)


def _rate_limit_wait(response: httpx.Response, body: Any) -> float | None:
    """The seconds to wait when a 403/429 is a rate limit, else None."""
    headers = response.headers
    if headers.get("x-ratelimit-remaining") == "0" or "retry-after" in headers:
        wait = retry_after(response)
        if wait is not None:
            return wait
    message = body.get("message") if isinstance(body, dict) else None
    if response.status_code == 429 or (
        isinstance(message, str) and "rate limit" in message.lower()
    ):
        return SECONDARY_LIMIT_WAIT
    return None


def _describe(body: Any) -> str:
    """GitHub's ``message`` and a summary of its ``errors``, on one bounded line."""
    if not isinstance(body, dict):
        return "an answer that is not a GitHub error"
    message = body.get("message")
    clean = _READER.clean
    parts = [clean(message) if isinstance(message, str) and message.strip() else "no message"]
    errors = body.get("errors")
    if isinstance(errors, list) and errors:
        found = [_error(e) for e in errors[:_MAX_ERRORS]]
        more = f" (and {len(errors) - _MAX_ERRORS} more)" if len(errors) > _MAX_ERRORS else ""
        parts.append("; ".join(found) + more)
    return one_line(": ".join(parts))


def _error(error: Any) -> str:
    if isinstance(error, str):
        return _READER.clean(error)
    if not isinstance(error, dict):
        return "?"
    field = ".".join(str(error[k]) for k in ("resource", "field") if error.get(k))
    detail = error.get("message") or error.get("code") or "invalid"
    text = f"{field} {detail}" if field else str(detail)
    if error.get("value") is not None:
        text += f" ({error['value']!r})"
    return _READER.clean(text)[:120]
