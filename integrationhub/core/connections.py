"""Long-lived connections of connectors that speak their own protocol (SMTP), reused across calls.

HTTP connectors share the framework's pooled httpx client; a connector with its own protocol
asks this pool instead, so that a thousand emails through one credential cost one TCP, TLS and
login handshake rather than a thousand::

    async with context.connections.connection(key, open_smtp, close_smtp) as smtp:
        await smtp.send_message(message)

A connection goes back to the pool when the block ends normally and is closed when it raises,
since after an error its protocol state is unknown; when the block was cancelled (the action's
timeout, say), it is dropped with ``abort`` if given, without waiting on the remote side: a
polite close would wait for the answer the call was cancelled for. Idle connections are kept
per key (the credential: different secrets never share one), a few at most; one idle past
``idle_timeout`` is not used again, but closed when its key is next asked for, or when the
pool closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import structlog
from prometheus_client import Counter

__all__ = ["ConnectionPool"]

log = structlog.get_logger()

T = TypeVar("T")

CONNECTIONS = Counter(
    "integrationhub_connector_connections_total",
    "Connector connections by what the pool did: opened, reused, discarded (broken, stale)",
    ["outcome"],
)


@dataclass(slots=True)
class _Idle(Generic[T]):
    connection: T
    close: Callable[[T], Awaitable[None]]
    since: float


class ConnectionPool:
    def __init__(self, *, max_idle_per_key: int = 16, idle_timeout: float = 30.0) -> None:
        self.max_idle_per_key = max_idle_per_key
        self.idle_timeout = idle_timeout
        self._idle: defaultdict[Hashable, deque[_Idle[Any]]] = defaultdict(deque)

    @contextlib.asynccontextmanager
    async def connection(
        self,
        key: Hashable,
        open: Callable[[], Awaitable[T]],
        close: Callable[[T], Awaitable[None]],
        *,
        usable: Callable[[T], bool] = lambda _: True,
        abort: Callable[[T], object] | None = None,
    ) -> AsyncIterator[T]:
        """An idle connection for ``key`` that is still ``usable``, else a new one."""
        connection = await self._take(key, usable)
        if connection is None:
            connection = await open()
            CONNECTIONS.labels("opened").inc()
        else:
            CONNECTIONS.labels("reused").inc()
        try:
            yield connection
        except BaseException as exc:
            if abort is not None and isinstance(exc, asyncio.CancelledError):
                abort(connection)
            else:
                await _quietly(close, connection)
            raise
        idle = self._idle[key]
        if len(idle) < self.max_idle_per_key:
            idle.append(_Idle(connection, close, time.monotonic()))
        else:
            await _quietly(close, connection)

    async def close(self) -> None:
        idle, self._idle = self._idle, defaultdict(deque)
        for entry in (entry for entries in idle.values() for entry in entries):
            await _quietly(entry.close, entry.connection)

    async def _take(self, key: Hashable, usable: Callable[[Any], bool]) -> Any | None:
        idle = self._idle.get(key)
        now = time.monotonic()
        while idle:
            entry = idle.pop()  # the most recently used: the likeliest to be alive
            if now - entry.since < self.idle_timeout and usable(entry.connection):
                return entry.connection
            CONNECTIONS.labels("discarded").inc()
            await _quietly(entry.close, entry.connection)
        return None


async def _quietly(close: Callable[[T], Awaitable[None]], connection: T) -> None:
    # A connection being thrown away may already be broken; closing it must not fail the call.
    try:
        await asyncio.wait_for(close(connection), timeout=5)
    except Exception as exc:
        log.debug("connection.close_failed", error=type(exc).__name__)
