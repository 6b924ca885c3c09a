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

import re
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

from integrationhub.core.http import RETRYABLE_STATUS, retry_after
from integrationhub.errors import PermanentError, RateLimited, RetryableError

__all__ = ["CommentAnswer", "IssueAnswer", "read_answer"]

SECONDARY_LIMIT_WAIT = 60.0  # "wait for at least one minute before retrying"
_MAX_TEXT = 300
_MAX_ERRORS = 5
# Tokens a hostile or echoing server might quote back: never into an error message.
_SECRETS = re.compile(
    r"(?i)\b(?:bearer|basic|token)\s+(?=[\w.~+/=-]*\d)[\w.~+/=-]{8,}"
    r"|\b(?:gh[pousr]_\w{20,}|github_pat_\w{20,})"
)


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

_PERMANENT_HINTS = {
    401: "GitHub refused the token: it is wrong, expired or revoked",
    403: "the token may not do this: a fine-grained token needs Issues read and write on the "
    "repository, a classic one the repo (or public_repo) scope",
    410: "issues are disabled for the repository",
    422: "GitHub refused the input",
}


def read_answer(
    response: httpx.Response, model: type[Answer], *, what: str, subject: str
) -> Answer:
    """The typed success answer, or raise what the answer means for the engine.

    ``what`` names the call (``"GitHub POST /repos/{owner}/{repo}/issues"``), ``subject`` what
    it was about (``"repository octo/hello"``) for a 404's message.
    """
    status = response.status_code
    body = _json(response)
    said = _describe(body) if body is not None else _excerpt(response)
    if status in (403, 429) and (wait := _rate_limit_wait(response, body)) is not None:
        raise RateLimited(f"{what} answered {status}, rate limited: {said}", retry_after=wait)
    if status >= 500 or status in RETRYABLE_STATUS:
        raise RetryableError(f"{what} answered {status}: {said}", retry_after=retry_after(response))
    if 300 <= status < 400:
        location = _clean(response.headers.get("Location", "?"))
        raise PermanentError(
            f"{what} answered {status}, a redirect to {location}: the repository was renamed "
            "or moved, or the credential's api_url is wrong"
        )
    if status == 404:
        raise PermanentError(
            f"{what} answered 404: {subject} does not exist, or the token cannot see it "
            f"(GitHub answers 404 for what a token may not read): {said}"
        )
    if status >= 400:
        hint = _PERMANENT_HINTS.get(status, "GitHub refused the request")
        raise PermanentError(f"{what} answered {status}: {hint}: {said}")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        kind = response.headers.get("Content-Type", "no content type").split(";")[0]
        raise PermanentError(
            f"{what} answered {status} with a body that is not what GitHub sends "
            f"({_clean(kind)[:60]})"
        ) from exc


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


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _describe(body: Any) -> str:
    """GitHub's ``message`` and a summary of its ``errors``, on one bounded line."""
    if not isinstance(body, dict):
        return "an answer that is not a GitHub error"
    message = body.get("message")
    parts = [_clean(message) if isinstance(message, str) and message.strip() else "no message"]
    errors = body.get("errors")
    if isinstance(errors, list) and errors:
        found = [_error(e) for e in errors[:_MAX_ERRORS]]
        more = f" (and {len(errors) - _MAX_ERRORS} more)" if len(errors) > _MAX_ERRORS else ""
        parts.append("; ".join(found) + more)
    return _bounded(": ".join(parts))


def _error(error: Any) -> str:
    if isinstance(error, str):
        return _clean(error)
    if not isinstance(error, dict):
        return "?"
    field = ".".join(str(error[k]) for k in ("resource", "field") if error.get(k))
    detail = error.get("message") or error.get("code") or "invalid"
    text = f"{field} {detail}" if field else str(detail)
    if error.get("value") is not None:
        text += f" ({error['value']!r})"
    return _clean(text)[:120]


def _excerpt(response: httpx.Response) -> str:
    text = _clean(response.text)
    return _bounded(text) if text else "an empty body"


def _clean(text: str) -> str:
    """One line, secrets redacted; long enough to bound after, short enough to scan."""
    return _SECRETS.sub("[redacted]", " ".join(str(text)[: 8 * _MAX_TEXT].split()))


def _bounded(text: str) -> str:
    return text if len(text) <= _MAX_TEXT else text[:_MAX_TEXT] + "…"
