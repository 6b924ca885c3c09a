"""The errors the client raises, as one tree.

    ClientError                 status (None when no answer came), code, message
    ├── InvalidRequest          400, 413, 422: the request breaks the API's rules or a schema
    ├── Unauthorized            401, 403: no API key, or not one the hub knows
    ├── NotFound                404: no such flow, run or credential
    ├── Conflict                409: an idempotency key reused, a run in the wrong state,
    │                           a flow that comes from a file
    ├── ServerUnavailable       429, 502, 503, 504: the hub or a part it needs is busy or down;
    │   │                       trying again later may help
    │   └── HubUnreachable      no answer at all: connection refused, timed out
    ├── ServerError             500 and any answer the client does not expect
    └── WaitTimedOut            the run did not finish in the time given; ``run`` is its state

``code`` and ``message`` are the API's own ``{"error": {"code", "message"}}``; errors that
enter from httpx are translated where they enter (``raise HubUnreachable(...) from exc``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from integrationhub.models.run import RunPublic

__all__ = [
    "ClientError",
    "Conflict",
    "HubUnreachable",
    "InvalidRequest",
    "NotFound",
    "ServerError",
    "ServerUnavailable",
    "Unauthorized",
    "WaitTimedOut",
    "error_from_response",
]


class ClientError(Exception):
    """Root of every error the client raises."""

    def __init__(self, message: str, *, code: str = "client_error", status: int | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status

    def __str__(self) -> str:
        return (
            f"{self.message} ({self.code})"
            if self.status is None
            else (f"{self.message} ({self.status} {self.code})")
        )


class InvalidRequest(ClientError):
    pass


class Unauthorized(ClientError):
    pass


class NotFound(ClientError):
    pass


class Conflict(ClientError):
    pass


class ServerUnavailable(ClientError):
    pass


class HubUnreachable(ServerUnavailable):
    pass


class ServerError(ClientError):
    pass


class WaitTimedOut(ClientError):
    def __init__(self, run: RunPublic, timeout: float) -> None:
        super().__init__(
            f"run {run.run_id!r} is still {run.status} after {timeout:g} s",
            code="wait_timed_out",
        )
        self.run = run


_BY_STATUS: dict[int, type[ClientError]] = {
    400: InvalidRequest,
    401: Unauthorized,
    403: Unauthorized,
    404: NotFound,
    409: Conflict,
    413: InvalidRequest,
    422: InvalidRequest,
    429: ServerUnavailable,
    502: ServerUnavailable,
    503: ServerUnavailable,
    504: ServerUnavailable,
}


def error_from_response(response: httpx.Response) -> ClientError:
    """The typed error for an answer that is not a success."""
    code, message = "http_error", response.reason_phrase or f"HTTP {response.status_code}"
    try:
        body = response.json()
        error = body["error"]
        code, message = str(error["code"]), str(error["message"])
    except (ValueError, KeyError, TypeError):
        pass
    cls = _BY_STATUS.get(response.status_code, ServerError)
    return cls(message, code=code, status=response.status_code)


def unreachable(url: httpx.URL, exc: httpx.TransportError) -> HubUnreachable:
    what = "timed out" if isinstance(exc, httpx.TimeoutException) else "failed"
    origin = f"{url.scheme}://{url.netloc.decode()}"
    return HubUnreachable(
        f"request to the hub at {origin} {what}: {exc or type(exc).__name__}", code="unreachable"
    )
