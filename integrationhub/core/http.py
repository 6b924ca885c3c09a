"""The one outbound HTTP client connectors share, and how its answers are classified.

Connectors call ``self.http`` (a pooled ``httpx.AsyncClient``) and hand the response to
``raise_for_status``: the framework, not each connector, decides what is worth retrying.
"""

from __future__ import annotations

import email.utils
import time

import httpx

from integrationhub.errors import PermanentError, RateLimited, RetryableError

__all__ = ["RETRYABLE_STATUS", "new_client", "raise_for_status", "retry_after"]

# 408 Request Timeout, 409 Conflict, 425 Too Early, 429 Too Many Requests, and 5xx.
RETRYABLE_STATUS = frozenset({408, 409, 425, 429})


def new_client(*, timeout: float = 30.0) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
        limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
        follow_redirects=False,
        headers={"User-Agent": "IntegrationHub"},
    )


def retry_after(response: httpx.Response, *, now: float | None = None) -> float | None:
    """Seconds the remote side asked us to wait: ``Retry-After`` as seconds (fractions
    allowed) or as an HTTP date, else ``X-RateLimit-Reset`` when nothing remains."""
    value = response.headers.get("Retry-After")
    now = time.time() if now is None else now
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            pass
        try:
            return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - now)
        except (TypeError, ValueError):
            pass
    if response.headers.get("X-RateLimit-Remaining") == "0":
        reset = response.headers.get("X-RateLimit-Reset")
        try:
            reset_at = float(reset) if reset else None
        except ValueError:
            reset_at = None
        if reset_at is not None:
            return max(0.0, reset_at - now)
    return None


def raise_for_status(response: httpx.Response, *, what: str) -> None:
    """Raise ``RateLimited``/``RetryableError``/``PermanentError`` for a failed response.

    ``what`` names the call for the message (``"Zulip POST /messages"``); the message carries the
    status and a bounded excerpt of the body, never request headers (they hold credentials).
    """
    status = response.status_code
    if status < 400:
        return
    detail = f"{what} answered {status}: {_excerpt(response)}"
    if status == 429:
        raise RateLimited(detail, retry_after=retry_after(response))
    if status in RETRYABLE_STATUS or status >= 500:
        raise RetryableError(detail, retry_after=retry_after(response))
    raise PermanentError(detail)


def _excerpt(response: httpx.Response, limit: int = 300) -> str:
    text = response.text.strip().replace("\n", " ")
    return text[:limit] + ("…" if len(text) > limit else "")
