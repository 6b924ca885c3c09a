"""The one outbound HTTP client connectors share, and how its answers are classified.

Connectors call ``self.http`` (a pooled ``httpx.AsyncClient``) with ``auth=self.auth`` and hand
the response to ``raise_for_status``: the framework, not each connector, decides what is worth
retrying. The client is built here, once per hub:

- its transport (``core/egress.py``) refuses loopback, private, link-local and other internal
  addresses at connect time unless ``INTEGRATIONHUB_HTTP_ALLOW_NETWORKS`` admits them, and caps
  every response body at ``INTEGRATIONHUB_HTTP_MAX_RESPONSE_BYTES``;
- it never follows redirects by itself: ``follow_redirects`` does, bounded, keeping the
  credential's authentication on the origin it was meant for;
- every answer that asks the caller to slow down (429/503 with ``Retry-After``,
  ``X-RateLimit-Remaining: 0``) is reported to the rate limiter of the call under way
  (``reporting_remote_limits``, set by the engine around each action).
"""

from __future__ import annotations

import datetime
import email.utils
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import httpx

from integrationhub.core.egress import DEFAULT_MAX_RESPONSE_BYTES, EgressPolicy, GuardedTransport
from integrationhub.errors import PermanentError, RateLimited, RetryableError

__all__ = [
    "DEFAULT_MAX_REDIRECTS",
    "DEFAULT_MAX_RESPONSE_BYTES",
    "RETRYABLE_STATUS",
    "answered_failure",
    "follow_redirects",
    "new_client",
    "one_line",
    "raise_for_status",
    "remote_slow_down",
    "reporting_remote_limits",
    "retry_after",
    "transport_failure",
]

# 408 Request Timeout, 409 Conflict, 425 Too Early, 429 Too Many Requests, and 5xx.
RETRYABLE_STATUS = frozenset({408, 409, 425, 429})
DEFAULT_MAX_REDIRECTS = 5
# Headers that identify the caller: never carried to another origin on a redirect.
_CREDENTIAL_HEADERS = ("Authorization", "Proxy-Authorization", "Cookie")
_BODY_HEADERS = ("Content-Length", "Content-Type", "Transfer-Encoding")

RemoteLimitSink = Callable[[float], Awaitable[None]]
_remote_limits: ContextVar[RemoteLimitSink | None] = ContextVar(
    "integrationhub_remote_limits", default=None
)


def new_client(
    *,
    timeout: float = 30.0,
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    allow: Iterable[str] = (),
) -> httpx.AsyncClient:
    """The pooled, guarded client. ``allow`` lists CIDRs and host names the SSRF guard admits
    besides public addresses (tests admit ``127.0.0.1/32`` for their local doubles)."""
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=50)
    transport = GuardedTransport(
        policy=EgressPolicy(allow), max_response_bytes=max_response_bytes, limits=limits
    )
    return httpx.AsyncClient(
        transport=transport,
        timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
        follow_redirects=False,
        trust_env=False,  # no proxy from the environment around the guard
        headers={"User-Agent": "IntegrationHub", "Accept-Encoding": "gzip, deflate"},
        event_hooks={"response": [_report_remote_limit]},
    )


@contextmanager
def reporting_remote_limits(sink: RemoteLimitSink) -> Iterator[None]:
    """Within this block, answers that ask to slow down are passed to ``sink(seconds)``."""
    token = _remote_limits.set(sink)
    try:
        yield
    finally:
        _remote_limits.reset(token)


def remote_slow_down(response: httpx.Response) -> float | None:
    """Seconds the remote side asked every caller with these credentials to hold off: the
    ``Retry-After`` of a 429 or 503, or the reset of ``X-RateLimit-Remaining: 0``."""
    if response.status_code in (429, 503) or response.headers.get("X-RateLimit-Remaining") == "0":
        wait = retry_after(response)
        return wait if wait else None
    return None


async def _report_remote_limit(response: httpx.Response) -> None:
    sink = _remote_limits.get()
    if sink is not None and (wait := remote_slow_down(response)) is not None:
        await sink(wait)


async def follow_redirects(
    client: httpx.AsyncClient,
    request: httpx.Request,
    *,
    auth: httpx.Auth | None = None,
    max_redirects: int = DEFAULT_MAX_REDIRECTS,
) -> httpx.Response:
    """Send ``request`` and follow its redirects by hand, at most ``max_redirects``.

    Each hop connects through the same guard. ``auth`` is applied again (a fresh signature, a
    valid token) on hops to the first request's origin only; hops elsewhere carry neither it
    nor ``Authorization``/``Cookie`` headers. 301/302 turn a POST into a GET and 303 anything
    but HEAD, dropping the body (httpx's rules); 307/308 repeat method and body.
    """
    origin = _origin(request.url)
    sent_headers = request.headers.copy()  # before ``auth`` adds its own
    response = await client.send(request, auth=auth)
    for _ in range(max_redirects):
        hop = response.next_request
        if hop is None:
            return response
        await response.aclose()
        if hop.url.scheme not in ("http", "https"):
            raise PermanentError(
                f"{request.method} {_where(request.url)} redirects to a {hop.url.scheme}: URL, "
                "which is not followed"
            )
        same_origin = _origin(hop.url) == origin
        headers = sent_headers.copy()
        headers.pop("Host", None)
        if hop.method != request.method:
            for name in _BODY_HEADERS:
                headers.pop(name, None)
        if not same_origin:
            for name in _CREDENTIAL_HEADERS:
                headers.pop(name, None)
        body = request.content if hop.method == request.method else None
        request = client.build_request(hop.method, hop.url, headers=headers, content=body)
        response = await client.send(request, auth=auth if same_origin else None)
    if response.next_request is not None:
        await response.aclose()
        raise PermanentError(
            f"{request.method} {_where(request.url)} redirected more than {max_redirects} times"
        )
    return response


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    default = {"http": 80, "https": 443}.get(url.scheme)
    return url.scheme, url.host, url.port or default


def _where(url: httpx.URL) -> str:
    """The URL without query or fragment: a query may carry a key."""
    return str(url.copy_with(query=None, fragment=None))


_SOME_DATE = 1_000_000_000.0  # 2001-09-09: a smaller reset is a number of seconds


def retry_after(response: httpx.Response, *, now: float | None = None) -> float | None:
    """Seconds the remote side asked us to wait: ``Retry-After`` as seconds (fractions
    allowed) or as an HTTP date, else ``X-RateLimit-Reset`` when nothing remains: Unix time
    (GitHub, Zulip), an ISO 8601 timestamp (Jira: ``2024-05-06T12:34Z``) or, when too small
    to be a date, seconds from now (some APIs)."""
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
        reset_at = _reset_time(response.headers.get("X-RateLimit-Reset", ""))
        if reset_at is not None:
            return max(0.0, reset_at if reset_at < _SOME_DATE else reset_at - now)
    return None


def _reset_time(value: str) -> float | None:
    """``X-RateLimit-Reset`` as a number: Unix time or seconds as sent, or an ISO 8601
    timestamp as Unix time (UTC when it names no offset)."""
    try:
        return float(value)
    except ValueError:
        pass
    try:
        reset_at = datetime.datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if reset_at.tzinfo is None:
        reset_at = reset_at.replace(tzinfo=datetime.UTC)
    return reset_at.timestamp()


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
        raise answered_failure(detail, response)
    raise PermanentError(detail)


def answered_failure(detail: str, response: httpx.Response) -> RetryableError:
    """The error for a retryable status (408, 409, 425, 5xx). A 503 or a 4xx says the request
    was not acted on; a 500, 502 or 504 may come after it was."""
    status = response.status_code
    return RetryableError(
        detail,
        retry_after=retry_after(response),
        effect_possible=status >= 500 and status != 503,
    )


# The request never left: nothing can have happened on the remote side.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def transport_failure(what: str, exc: httpx.TransportError) -> RetryableError:
    """The error for a request that got no answer. Once it may have been sent (a read that
    timed out, a connection lost), its effect may have happened."""
    return RetryableError(
        f"{what} failed: {type(exc).__name__}", effect_possible=not isinstance(exc, _NOT_SENT)
    )


def _excerpt(response: httpx.Response) -> str:
    return one_line(response.text)


def one_line(text: str, limit: int = 300) -> str:
    """``text`` on one line with its whitespace collapsed, cut to ``limit`` characters (``…``
    marks a cut): what an error message may quote of a remote answer."""
    text = " ".join(text[: limit * 4].split())  # a huge body is no clearer whole
    return text[:limit] + ("…" if len(text) > limit else "")
