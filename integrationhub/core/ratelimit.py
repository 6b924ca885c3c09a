"""Rate limits per connector and credential, enforced by the engine before each action call.

What limits a call, most specific first:

1. the credential's own ``rate_limit`` in its data (``"50/minute"``),
2. ``INTEGRATIONHUB_RATELIMIT_LIMITS`` for the connector (``{"zulip": "100/minute"}``;
   ``"none"`` lifts a limit),
3. the connector's ``rate_limit`` class attribute (Zulip: 200 requests per 60 s per user);

and, on top of any of them, what the remote side said: a 429 or 503 with ``Retry-After``, or
``X-RateLimit-Remaining: 0`` with its reset, blocks that connector and credential for every
later call until then (``core/http.py`` reports these answers; a ``RateLimited`` raised by a
connector counts too). A call that may not go yet *waits*, and the wait shows in
``integrationhub_ratelimit_wait_seconds{connector}``; only a wait that would end after the
step's deadline fails the step, at once and saying so.

Counting is the ``limits`` library's moving window (``limits.aio``). With
``INTEGRATIONHUB_REDIS_URL`` the windows and the blocks live in Redis, shared by every replica:
limits' Lua scripts make each hit atomic, and a block is a key with a TTL, so replicas need no
agreement on the time. Without it, both live in this process. Redis unreachable: the call is
retried like any transient failure.
"""

from __future__ import annotations

import asyncio
import functools
import random
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import limits
import structlog
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from prometheus_client import Counter, Histogram

from integrationhub.core.http import reporting_remote_limits
from integrationhub.errors import ConfigurationError, PermanentError, RateLimited, RetryableError

if TYPE_CHECKING:
    from integrationhub.connectors.base import BaseConnector, Credential
    from integrationhub.settings import RateLimitSettings

__all__ = ["LimitKey", "RateLimiter", "parse_rate_limit"]

log = structlog.get_logger()

WAIT_SECONDS = Histogram(
    "integrationhub_ratelimit_wait_seconds",
    "Time a call waited for its rate limit before it went out, by connector",
    ["connector"],
    buckets=(0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0),
)
REMOTE_SLOWDOWNS = Counter(
    "integrationhub_ratelimit_remote_slowdowns_total",
    "Answers that asked the hub to slow down (429, Retry-After, X-RateLimit-*), by connector",
    ["connector"],
)

_MIN_WAIT = 0.01  # a window that should have reset already: look again shortly
_JITTER = 0.05  # spreads waiters of one window, so they do not all race at its reset


@functools.lru_cache(maxsize=256)
def parse_rate_limit(text: str) -> limits.RateLimitItem | None:
    """``"50/minute"``, ``"200 per 60 seconds"``… as a limit; ``"none"`` as no limit."""
    if text.strip().lower() == "none":
        return None
    try:
        return limits.parse(text)
    except ValueError:
        raise ValueError(
            f"rate limit {text[:60]!r} is not like '50/minute' or '200 per 60 seconds'"
        ) from None


@dataclass(frozen=True, slots=True)
class LimitKey:
    """What a limit counts: the calls of one connector with one credential."""

    connector: str
    credential_id: str | None

    @property
    def ids(self) -> tuple[str, str]:
        return self.connector, self.credential_id or "-"

    def __str__(self) -> str:
        if self.credential_id is None:
            return self.connector
        return f"{self.connector} with credential {self.credential_id!r}"


class _Blocks(Protocol):
    async def extend(self, key: LimitKey, seconds: float) -> None: ...
    async def remaining(self, key: LimitKey) -> float: ...
    async def close(self) -> None: ...


class _MemoryBlocks:
    def __init__(self) -> None:
        self._until: dict[tuple[str, str], float] = {}

    async def extend(self, key: LimitKey, seconds: float) -> None:
        until = time.monotonic() + seconds
        self._until[key.ids] = max(self._until.get(key.ids, 0.0), until)

    async def remaining(self, key: LimitKey) -> float:
        left = self._until.get(key.ids, 0.0) - time.monotonic()
        if left <= 0:
            self._until.pop(key.ids, None)
        return max(left, 0.0)

    async def close(self) -> None:
        self._until.clear()


# Sets the block only when it ends later than the one in place: a short Retry-After does not
# shorten a long one.
_EXTEND = """
local wanted = tonumber(ARGV[1])
if redis.call('PTTL', KEYS[1]) < wanted then
  redis.call('SET', KEYS[1], '1', 'PX', wanted)
end
return 0
"""


class _RedisBlocks:
    def __init__(self, client: Any, *, prefix: str) -> None:
        self._client = client
        self._prefix = prefix
        self._extend = client.register_script(_EXTEND)

    def _name(self, key: LimitKey) -> str:
        return f"{self._prefix}:{key.ids[0]}:{key.ids[1]}"

    async def extend(self, key: LimitKey, seconds: float) -> None:
        await self._extend(keys=[self._name(key)], args=[max(1, round(seconds * 1000))])

    async def remaining(self, key: LimitKey) -> float:
        milliseconds = await self._client.pttl(self._name(key))
        return milliseconds / 1000 if milliseconds > 0 else 0.0

    async def close(self) -> None:
        await self._client.aclose()


class RateLimiter:
    """Waits for the rate limits of calls; ``from_settings`` picks Redis or this process."""

    def __init__(
        self,
        *,
        storage: Storage,
        blocks: _Blocks,
        overrides: Mapping[str, str] | None = None,
        max_remote_wait: float = 3600.0,
        store_errors: tuple[type[Exception], ...] = (),
        on_close: Callable[[], Any] | None = None,
    ) -> None:
        self._storage = storage
        self._strategy = MovingWindowRateLimiter(storage)
        self._blocks = blocks
        self._overrides = dict(overrides or {})
        self._max_remote_wait = max_remote_wait
        self._store_errors = store_errors
        self._on_close = on_close
        for text in self._overrides.values():
            parse_rate_limit(text)

    @classmethod
    def in_process(
        cls, *, overrides: Mapping[str, str] | None = None, max_remote_wait: float = 3600.0
    ) -> RateLimiter:
        return cls(
            storage=MemoryStorage(),
            blocks=_MemoryBlocks(),
            overrides=overrides,
            max_remote_wait=max_remote_wait,
        )

    @classmethod
    def from_settings(cls, settings: RateLimitSettings) -> RateLimiter:
        if settings.redis_url is None:
            return cls.in_process(
                overrides=settings.limits, max_remote_wait=settings.max_remote_wait
            )
        try:
            import redis.asyncio
            import redis.exceptions
            from limits.aio.storage import RedisStorage
        except ImportError:  # pragma: no cover - redis is a dependency of the hub
            raise ConfigurationError(
                "INTEGRATIONHUB_REDIS_URL needs the redis package: pip install 'redis>=5.2'"
            ) from None
        scheme, _, rest = settings.redis_url.partition("://")
        limits_scheme = {
            "redis": "async+redis",
            "rediss": "async+rediss",
            "unix": "async+redis+unix",
        }
        if scheme not in limits_scheme:
            raise ConfigurationError(
                f"INTEGRATIONHUB_REDIS_URL must be redis://, rediss:// or unix://, not {scheme}://"
            )
        # One pool for limits' windows and our blocks.
        pool = redis.asyncio.ConnectionPool.from_url(settings.redis_url)
        storage = RedisStorage(
            f"{limits_scheme[scheme]}://{rest}",
            implementation="redispy",
            connection_pool=pool,
            key_prefix=f"{settings.key_prefix}:limits",
            wrap_exceptions=True,
        )
        blocks = _RedisBlocks(
            redis.asyncio.Redis(connection_pool=pool), prefix=f"{settings.key_prefix}:blocked"
        )
        return cls(
            storage=storage,
            blocks=blocks,
            overrides=settings.limits,
            max_remote_wait=settings.max_remote_wait,
            store_errors=(limits.errors.StorageError, redis.exceptions.RedisError, OSError),
            on_close=pool.aclose,
        )

    def limit_for(
        self, connector: type[BaseConnector[Any]], credential: Credential | None
    ) -> limits.RateLimitItem | None:
        """The credential's own limit, else the settings' for the connector, else the
        connector's default; None for no limit."""
        text = getattr(credential, "rate_limit", None)
        if text is None:
            text = self._overrides.get(connector.name)
        if text is None:
            text = getattr(connector, "rate_limit", None)
        return None if text is None else parse_rate_limit(text)

    async def acquire(
        self, key: LimitKey, limit: limits.RateLimitItem | None, *, deadline: float
    ) -> float:
        """Wait until a call may go, and count it; the seconds waited. ``deadline`` is on the
        ``time.monotonic()`` clock: a wait that would end after it raises ``PermanentError``."""
        started = time.monotonic()
        try:
            while True:
                wait = await self._blocks.remaining(key)
                reason = "the remote side asked to slow down"
                if wait <= 0:
                    if limit is None or await self._strategy.hit(limit, *key.ids):
                        break
                    stats = await self._strategy.get_window_stats(limit, *key.ids)
                    wait = max(stats.reset_time - time.time(), _MIN_WAIT)
                    reason = f"its limit is {limit}"
                if time.monotonic() + wait > deadline:
                    raise PermanentError(
                        f"{key} may call again in {wait:.1f}s ({reason}): after the step's deadline"
                    )
                log.info("ratelimit.waiting", limit=str(key), wait=round(wait, 3), reason=reason)
                await asyncio.sleep(wait + random.uniform(0, _JITTER))
        except self._store_errors as exc:
            raise RetryableError(
                f"the rate-limit store is unreachable ({type(exc).__name__})"
            ) from exc
        waited = time.monotonic() - started
        WAIT_SECONDS.labels(key.connector).observe(waited)
        return waited

    async def block(self, key: LimitKey, seconds: float) -> None:
        """Hold every call of ``key`` off for ``seconds`` (bounded), as the remote side asked."""
        seconds = min(seconds, self._max_remote_wait)
        if seconds <= 0:
            return
        REMOTE_SLOWDOWNS.labels(key.connector).inc()
        log.info("ratelimit.remote_slow_down", limit=str(key), seconds=round(seconds, 3))
        try:
            await self._blocks.extend(key, seconds)
        except self._store_errors as exc:  # advisory: the retry still waits for Retry-After
            log.warning("ratelimit.store_unreachable", error=type(exc).__name__)

    @asynccontextmanager
    async def reporting(self, key: LimitKey) -> AsyncIterator[None]:
        """Within the block, answers and ``RateLimited`` errors that ask to slow down block
        ``key``: the engine wraps each action call in it. Calls without a credential block
        nothing: what the remote side limits then (the hub's address) is not the key, and one
        site's 429 must not hold up calls to others; their retry still honours Retry-After."""
        if key.credential_id is None:
            yield
            return

        async def sink(seconds: float) -> None:
            await self.block(key, seconds)

        with reporting_remote_limits(sink):
            try:
                yield
            except RateLimited as exc:
                if exc.retry_after:
                    await self.block(key, exc.retry_after)
                raise

    async def check(self) -> None:
        """Raise ``RetryableError`` unless the store answers."""
        try:
            healthy = await self._storage.check()
        except self._store_errors as exc:
            raise RetryableError(f"the rate-limit store is unreachable: {exc}") from exc
        if not healthy:
            raise RetryableError("the rate-limit store is unreachable")

    async def close(self) -> None:
        await self._blocks.close()
        timer = getattr(self._storage, "timer", None)  # MemoryStorage's expiry task
        if isinstance(timer, asyncio.Task) and not timer.done():
            timer.cancel()
        if self._on_close is not None:
            await self._on_close()
