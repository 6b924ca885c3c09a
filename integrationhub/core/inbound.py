"""Inbound sources: events outside the hub become Pulsar messages.

For each source configured in ``INTEGRATIONHUB_SOURCES``, one task runs this loop:

    take the lease ─▶ cursor ─▶ credential ─▶ poll once ─▶ publish each event ─▶ persist cursor
                                    ▲                                                  │
                                    └──────────────────────────────────────────────────┘

Delivery is at least once. The events of a poll are published (each keyed by its id at the
origin) *before* the cursor that passes them is persisted: a process that dies in between
publishes them again after a restart, and consumers dedupe on the key. The other order would
lose them instead. A source's poll must therefore be repeatable: polled again from the same
cursor, it returns those events again. Stopping the hub lets a batch being published finish
and persist its cursor, so a clean restart repeats nothing.

One process polls a source at a time: it holds a lease on the source's cursor row, renewed while
it polls. Other replicas stand by and take over once the lease expires, or at once when the
holder releases it at stop.

After ``RetryableError`` (and ``RateLimited``), ``CredentialStoreUnavailable``, ``BusError`` or a
database error a source backs off exponentially with jitter, never sooner than the remote side's
``Retry-After``. Anything else (``PermanentError``, a missing or invalid credential, a connector
bug) stops it with an error log; it is tried again after ``source_restart_interval``.
"""

from __future__ import annotations

import asyncio
import functools
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import httpx
import structlog
from prometheus_client import Counter
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError

from integrationhub.connectors.auth import TokenCache
from integrationhub.connectors.base import ActionContext, Batch, Credential, Cursor, Source
from integrationhub.connectors.registry import Registry
from integrationhub.core.bus_subscription import Publisher
from integrationhub.core.credentials import CredentialStore
from integrationhub.core.store import Store
from integrationhub.errors import (
    BusError,
    ConfigurationError,
    CredentialError,
    CredentialInvalid,
    CredentialStoreUnavailable,
    IntegrationHubError,
    PermanentError,
    RateLimited,
    RetryableError,
)
from integrationhub.settings import PulsarSettings, Settings, SourceConfig

__all__ = ["Inbound", "PlannedSource", "backoff", "plan_sources"]

log = structlog.get_logger()

EVENTS = Counter(
    "integrationhub_source_events_total", "Events inbound sources published", ["source"]
)
ERRORS = Counter(
    "integrationhub_source_errors_total",
    "Failed polls of inbound sources, and gaps they reported, by kind",
    ["source", "kind"],
)

_TRANSIENT = (RetryableError, CredentialStoreUnavailable, BusError, DBAPIError)
_CLOSE_TIMEOUT = 10.0


def backoff(
    failures: int,
    *,
    initial: float,
    maximum: float,
    retry_after: float | None = None,
    rng: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait after the ``failures``-th failure in a row (1-based).

    The bound doubles from ``initial`` up to ``maximum``; the wait is between half of it and
    all of it ("equal jitter"), so replicas spread out yet never hammer a failing remote side.
    Never less than ``retry_after``, the wait the remote side asked for.
    """
    bound = min(maximum, initial * 2.0 ** min(max(failures, 1) - 1, 64))
    return max(bound / 2 + rng() * bound / 2, retry_after or 0.0)


@dataclass(frozen=True, slots=True)
class PlannedSource:
    """A configured source, checked against the connector that declares it."""

    id: str
    source: Source
    credential: str | None
    topic: str
    options: BaseModel


def plan_sources(
    configs: Sequence[SourceConfig], *, registry: Registry, pulsar: PulsarSettings
) -> list[PlannedSource]:
    """Check the configured sources; one ``ConfigurationError`` names every problem."""
    planned: list[PlannedSource] = []
    problems: list[str] = []
    seen: set[str] = set()
    for index, config in enumerate(configs):
        where = f"INTEGRATIONHUB_SOURCES[{index}] (id {config.id!r})"
        if config.id in seen:
            problems.append(f"{where}: the id is used twice")
            continue
        seen.add(config.id)
        try:
            source = registry.source(config.source)
            options = source.validate_options(config.options)
        except ConfigurationError as exc:
            problems.append(f"{where}: {exc.message}")
            continue
        accepted = " or ".join(t.type for t in source.credential_types)
        if accepted and config.credential is None and not source.credential_optional:
            problems.append(
                f"{where}: {source.name} needs a {accepted} credential; set its id in 'credential'"
            )
            continue
        if not accepted and config.credential is not None:
            problems.append(f"{where}: {source.name} takes no credential")
            continue
        planned.append(
            PlannedSource(
                id=config.id,
                source=source,
                credential=config.credential,
                topic=pulsar.topic(config.topic or source.topic),
                options=options,
            )
        )
    if problems:
        raise ConfigurationError("invalid inbound sources: " + "; ".join(problems))
    return planned


@dataclass(slots=True)
class _Position:
    """A held source's cursor in memory: ahead of the persisted one while the store is down."""

    cursor: Cursor | None


class Inbound:
    """Runs every planned source until stopped. See the module's docstring."""

    def __init__(
        self,
        *,
        sources: Sequence[PlannedSource],
        store: Store,
        credentials: CredentialStore,
        bus: Publisher,
        http: httpx.AsyncClient,
        owner: str,
        settings: Settings,
    ) -> None:
        self.sources = list(sources)
        self.store = store
        self.credentials = credentials
        self.bus = bus
        self.http = http
        self.owner = owner
        self.lease = settings.source_lease_seconds
        self.backoff_initial = settings.source_backoff_initial
        self.backoff_max = settings.source_backoff_max
        self.restart_interval = settings.source_restart_interval
        self._tasks: list[asyncio.Task[None]] = []
        self._deliveries: set[asyncio.Task[bool]] = set()
        self._tokens = TokenCache()  # OAuth 2 tokens of the sources' credentials

    async def start(self) -> None:
        for planned in self.sources:
            task = asyncio.create_task(self._supervise(planned), name=f"source:{planned.id}")
            self._tasks.append(task)

    async def stop(self) -> None:
        """Stop polling; let batches being published persist their cursor; release leases."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self._deliveries:
            _, late = await asyncio.wait(set(self._deliveries), timeout=_CLOSE_TIMEOUT)
            for task in late:  # the broker or database hangs: the batch goes out again later
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        for planned in self.sources:
            try:
                await self.store.release_cursor(planned.id, owner=self.owner)
            except DBAPIError as exc:  # the lease expires by itself
                log.warning("source.release_failed", source_id=planned.id, error=_message(exc))

    async def _supervise(self, planned: PlannedSource) -> None:
        """Stand by until this process holds the source's lease; poll while it does."""
        structlog.contextvars.bind_contextvars(source_id=planned.id, source=planned.source.name)
        while True:
            claimed_at = time.monotonic()
            try:
                held = await self.store.claim_cursor(planned.id, owner=self.owner, lease=self.lease)
            except DBAPIError as exc:
                log.warning("source.claim_failed", error=_message(exc))
                held = False
            if not held:
                await asyncio.sleep(self.lease / 3)
                continue
            log.info("source.started", topic=planned.topic, owner=self.owner)
            await self._hold(planned, held_until=claimed_at + self.lease)
            log.warning("source.lease_lost", owner=self.owner)

    async def _hold(self, planned: PlannedSource, *, held_until: float) -> None:
        """Poll and keep the lease; return once it is lost."""
        poller = asyncio.create_task(self._poll(planned))
        keeper = asyncio.create_task(self._keep_lease(planned, held_until=held_until))
        try:
            await asyncio.wait({poller, keeper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            poller.cancel()
            keeper.cancel()
            await asyncio.gather(poller, keeper, return_exceptions=True)

    async def _keep_lease(self, planned: PlannedSource, *, held_until: float) -> None:
        """Renew the lease every third of its time; return when it is taken or runs out."""
        while True:
            await asyncio.sleep(self.lease / 3)
            renewing_at = time.monotonic()
            try:
                if not await self.store.claim_cursor(
                    planned.id, owner=self.owner, lease=self.lease
                ):
                    return
                held_until = renewing_at + self.lease
            except DBAPIError as exc:
                log.warning("source.lease_renewal_failed", error=_message(exc))
                if time.monotonic() + self.lease / 3 >= held_until:
                    return  # it may lapse before the next try: stop before another takes it

    async def _poll(self, planned: PlannedSource) -> None:
        """Poll, publish, persist, forever; back off or pause on errors. Returns when the
        lease turns out to be lost."""
        position: _Position | None = None
        failures = attempt = 0
        while True:
            attempt += 1
            try:
                if position is None:
                    position = _Position(await self.store.get_cursor(planned.id))
                credential = await self._credential(planned)
                context = ActionContext(
                    run_id=f"source:{planned.id}",
                    step_id=planned.source.name,
                    attempt=attempt,
                    http=self.http,
                    tokens=self._tokens,
                    save_credential=functools.partial(self._save_credential, planned),
                )
                batch = await planned.source.poll(
                    credential=credential,
                    cursor=position.cursor,
                    options=planned.options,
                    context=context,
                )
                # Shielded: stopping the hub lets the batch be published and its cursor
                # persisted (``stop`` waits for it), so a restart repeats nothing.
                delivery = asyncio.ensure_future(self._deliver(planned, batch, position))
                self._deliveries.add(delivery)
                delivery.add_done_callback(self._deliveries.discard)
                if not await asyncio.shield(delivery):
                    return
                failures = attempt = 0
            except _TRANSIENT as exc:
                failures += 1
                delay = backoff(
                    failures,
                    initial=self.backoff_initial,
                    maximum=self.backoff_max,
                    retry_after=exc.retry_after if isinstance(exc, RetryableError) else None,
                )
                ERRORS.labels(planned.id, _kind(exc)).inc()
                log.warning(
                    "source.retrying",
                    error=_message(exc),
                    failures=failures,
                    delay=round(delay, 3),
                )
                await asyncio.sleep(delay)
            except Exception as exc:  # a source must outlive its connector's failures
                ERRORS.labels(planned.id, _kind(exc)).inc()
                log.error(
                    "source.stopped",
                    error=_message(exc),
                    retry_in=self.restart_interval,
                    exc_info=None if isinstance(exc, IntegrationHubError) else exc,
                )
                failures = attempt = 0
                await asyncio.sleep(self.restart_interval)

    async def _deliver(self, planned: PlannedSource, batch: Batch, position: _Position) -> bool:
        """Publish the batch's events in order, then persist its cursor. False if the lease
        was lost (the events went out all the same: at least once)."""
        if batch.gap is not None:
            ERRORS.labels(planned.id, "gap").inc()
            log.warning("source.gap", reason=batch.gap)
        for event in batch.events:
            await self.bus.publish(
                planned.topic,
                event.payload.model_dump_json().encode(),
                key=event.key,
                properties={"source": planned.id},
            )
            EVENTS.labels(planned.id).inc()
        position.cursor = batch.cursor
        if batch.events:
            log.debug("source.published", count=len(batch.events), topic=planned.topic)
        return await self.store.put_cursor(
            planned.id, batch.cursor, owner=self.owner, lease=self.lease
        )

    async def _credential(self, planned: PlannedSource) -> Credential | None:
        """The source's credential, as the engine resolves a step's (``plan_sources`` made
        sure one is named when the source needs one)."""
        accepted = {t.type: t for t in planned.source.credential_types}
        if not accepted or planned.credential is None:
            return None
        stored = await self.credentials.read(planned.credential)
        credential_type = accepted.get(stored.metadata.type)
        if credential_type is None:
            raise CredentialInvalid(
                f"credential {planned.credential!r} is of type {stored.metadata.type!r}, "
                f"{planned.source.name} needs {' or '.join(map(repr, accepted))}"
            )
        try:
            return credential_type.model_validate(stored.data)
        except ValueError as exc:
            raise CredentialInvalid(
                f"credential {planned.credential!r} does not fit type {credential_type.type!r}"
            ) from exc

    async def _save_credential(self, planned: PlannedSource, credential: Credential) -> None:
        """Write a credential a poll changed (a refreshed OAuth 2 token) back to the store."""
        if planned.credential is not None:
            await self.credentials.write(
                planned.credential, type=credential.type, data=credential.reveal()
            )


def _kind(exc: BaseException) -> str:
    kinds: list[tuple[type[BaseException] | tuple[type[BaseException], ...], str]] = [
        (RateLimited, "rate_limited"),
        (RetryableError, "retryable"),
        (CredentialStoreUnavailable, "credential_store"),
        (BusError, "bus"),
        (DBAPIError, "database"),
        (CredentialError, "credential"),
        (PermanentError, "permanent"),
        ((TypeError, ValueError), "bug"),
    ]
    return next((kind for types, kind in kinds if isinstance(exc, types)), "unexpected")


def _message(exc: BaseException) -> str:
    if isinstance(exc, IntegrationHubError):
        return exc.message
    if isinstance(exc, DBAPIError):  # the statement would say nothing useful, nor its params
        return f"database error: {type(exc.orig).__name__}"
    return f"{type(exc).__name__}: {exc}"
