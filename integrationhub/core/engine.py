"""Executes runs, step by step, and alone decides what happens after a failure.

For each step: resolve the credential, render the input in the sandbox, invoke the action within
its timeout, and persist the outcome before moving on. ``RetryableError`` is retried with
exponential backoff and full jitter (never sooner than the remote side's ``Retry-After``);
anything else fails the step and the run. A call that may already have had its effect (a step
found ``sending`` when a run is taken over; an attempt that timed out or lost its connection
after the request went out) is repeated only if its action is safe to repeat or the flow says
so; otherwise the run fails with "outcome unknown" for a person to decide. A worker whose lease
ran out and whose run was taken over starts no further call and records nothing more: marking a
step ``sending`` and recording its outcome check the lease in the same transaction. A cancel
request is honoured between steps and between attempts.

A step whose ``when`` is falsy is recorded ``skipped``, with a null output. A ``for_each`` step
(``core/control.py``) is marked ``sending`` once, before its first call, and its output
``{"items": [...]}`` persisted when every item is done: each item has its own retries, and its
call id ``<step>.<index>``. So the rules above hold for the step as a whole: taken over or
retried, it runs all its items again, or fails as "outcome unknown". Each item's call that is not
safe to repeat first checks that this worker still holds the run.
"""

from __future__ import annotations

import asyncio
import functools
import random
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import structlog
from prometheus_client import Counter, Gauge, Histogram

from integrationhub.connectors.auth import TokenCache
from integrationhub.connectors.base import Action, ActionContext, Credential
from integrationhub.connectors.registry import Registry
from integrationhub.core import control, expressions
from integrationhub.core.bus_subscription import Publisher
from integrationhub.core.connections import ConnectionPool
from integrationhub.core.credentials import CredentialStore
from integrationhub.core.events import RunEvents
from integrationhub.core.ratelimit import LimitKey, RateLimiter
from integrationhub.core.store import ClaimedRun, StepOutcome, Store
from integrationhub.errors import (
    CredentialInvalid,
    CredentialStoreUnavailable,
    IntegrationHubError,
    PermanentError,
    RetryableError,
)
from integrationhub.models.flow import Step
from integrationhub.models.run import RunStatus, StepStatus

__all__ = ["Engine"]

log = structlog.get_logger()

RUNS = Counter(
    "integrationhub_runs_total", "Runs finished, by flow and status", ["flow_id", "status"]
)
RUNS_IN_PROGRESS = Gauge(
    "integrationhub_runs_in_progress", "Runs executing", multiprocess_mode="livesum"
)
STEP_SECONDS = Histogram(
    "integrationhub_step_duration_seconds",
    "One attempt of a step, by action and outcome",
    ["action", "outcome"],
)
RETRIES = Counter(
    "integrationhub_step_retries_total", "Step attempts retried, by action", ["action"]
)
OUTCOME_UNKNOWN = Counter(
    "integrationhub_step_outcome_unknown_total",
    "Steps failed because their call may have had its effect and may not be repeated",
    ["action"],
)


class _Cancelled(Exception):
    pass


class _LeaseLost(Exception):
    """Another worker took the run over after this one's lease expired."""


class _StepFailed(Exception):
    def __init__(self, error: str) -> None:
        self.error = error


_DONE = frozenset({StepStatus.succeeded, StepStatus.skipped})  # not run again, nor by a retry


class Engine:
    def __init__(
        self,
        *,
        store: Store,
        credentials: CredentialStore,
        registry: Registry,
        http: httpx.AsyncClient,
        bus: Publisher,
        events: RunEvents,
        owner: str,
        lease: float,
        rate_limits: RateLimiter | None = None,
    ) -> None:
        self.rate_limits = rate_limits or RateLimiter.in_process()
        self.tokens = TokenCache()  # OAuth 2 tokens, shared by the steps of this engine
        self.connections = ConnectionPool()  # SMTP sessions, say, kept across runs
        self.store = store
        self.credentials = credentials
        self.registry = registry
        self.http = http
        self.bus = bus
        self.events = events
        self.owner = owner
        self.lease = lease

    async def execute(self, run_id: str) -> None:
        """Execute the run if it can be claimed. A run that is finished, unknown, or held under
        a live lease by another worker is left alone: if that worker dies, its lease expires and
        the sweeper queues the run again."""
        claimed = await self.store.claim(run_id, owner=self.owner, lease=self.lease)
        if claimed is None:
            log.debug("run.not_claimed", run_id=run_id)
            return
        flow_id = claimed.flow.id
        with structlog.contextvars.bound_contextvars(run_id=run_id, flow_id=flow_id):
            self.events.emit(
                run_id=run_id, flow_id=flow_id, type="run.running", status=RunStatus.running
            )
            RUNS_IN_PROGRESS.inc()
            try:
                async with self._lease_kept(run_id):
                    status, error, last_step = await self._run_steps(claimed)
            except CredentialStoreUnavailable as exc:
                # Put back, not failed: the sweeper queues it again until the store is back.
                log.warning("run.deferred", reason=exc.message)
                await self.store.release(run_id, owner=self.owner, reason=exc.message)
                return
            except _LeaseLost:
                # The worker that took the run over decides about its steps: a call started
                # here as well could repeat an effect that must happen once, and an outcome
                # recorded here could overwrite its own.
                log.warning("run.lease_lost", outcome="abandoned: no further call or record")
                return
            finally:
                RUNS_IN_PROGRESS.dec()
            if not await self.store.finish_run(
                run_id, owner=self.owner, status=status, error=error, last_step=last_step
            ):
                log.warning("run.lease_lost")
                return
            if last_step is not None:
                self._step_recorded(claimed, last_step)
            RUNS.labels(flow_id, status).inc()
            log.info("run.finished", status=status, error=error, deliveries=claimed.deliveries)
            self.events.emit(run_id=run_id, flow_id=flow_id, type=f"run.{status}", status=status)

    async def _run_steps(
        self, claimed: ClaimedRun
    ) -> tuple[RunStatus, str | None, StepOutcome | None]:
        """The run's outcome, and the outcome of the step that decided it when that step is
        not recorded yet: it is recorded with the run's, in one transaction."""
        context: dict[str, Any] = {
            "parameters": claimed.parameters,
            "run": {"id": claimed.id, "flow_id": claimed.flow.id},
            "steps": {},
        }
        last = claimed.flow.steps[-1].id
        cancel_seen = None  # the claim read the flag a moment ago: no need to ask again yet
        for step in claimed.flow.steps:
            record = claimed.steps[step.id]
            if record.status in _DONE:
                context["steps"][step.id] = {"output": record.output}
                continue
            if cancel_seen is None:
                cancel_seen = claimed.cancel_requested
            else:
                cancel_seen = await self.store.cancel_requested(claimed.id)
            if cancel_seen:
                return RunStatus.cancelled, f"cancelled before step {step.id!r}", None
            with structlog.contextvars.bound_contextvars(step=step.id, action=step.action):
                try:
                    # A step found sending had its `when` true, and its call may have happened.
                    if record.status != StepStatus.sending and not _should_run(step, context):
                        await self._record(claimed, StepOutcome(step.id, StepStatus.skipped))
                        context["steps"][step.id] = {"output": None}
                        continue
                    output = await self._run_step(
                        claimed.id, step, record.status, record.attempts, context
                    )
                except _Cancelled:
                    error = f"cancelled during step {step.id!r}"
                    if step.for_each is None:  # a single call was put back to pending
                        return RunStatus.cancelled, error, None
                    # Items may have run before the cancel: the step must not stay sending.
                    stopped = "cancelled between items; the items before may have been done"
                    return (
                        RunStatus.cancelled,
                        error,
                        StepOutcome(step.id, StepStatus.failed, error=stopped),
                    )
                except _StepFailed as failure:
                    error = f"step {step.id!r} failed: {failure.error}"
                    failed = StepOutcome(step.id, StepStatus.failed, error=failure.error)
                    return RunStatus.failed, error, failed
                if step.id == last:
                    succeeded = StepOutcome(step.id, StepStatus.succeeded, output=output)
                    return RunStatus.succeeded, None, succeeded
                await self._record(claimed, StepOutcome(step.id, StepStatus.succeeded, output))
                context["steps"][step.id] = {"output": output}
        return RunStatus.succeeded, None, None

    async def _record(self, claimed: ClaimedRun, step: StepOutcome) -> None:
        await self._finish_step(claimed.id, step)
        self._step_recorded(claimed, step)

    async def _finish_step(self, run_id: str, step: StepOutcome) -> None:
        if not await self.store.finish_step(run_id, step, owner=self.owner, lease=self.lease):
            raise _LeaseLost

    def _step_recorded(self, claimed: ClaimedRun, step: StepOutcome) -> None:
        with structlog.contextvars.bound_contextvars(step=step.step_id):
            log.info(f"step.{step.status}", **({"error": step.error} if step.error else {}))
        self._step_event(claimed, step.step_id, step.status)

    async def _run_step(
        self, run_id: str, step: Step, previous: StepStatus, attempts: int, context: dict[str, Any]
    ) -> dict[str, Any]:
        try:
            action = self.registry.action(step.action)
        except IntegrationHubError as exc:
            raise _StepFailed(exc.message) from exc
        if previous == StepStatus.sending and not _repeatable(step, action):
            OUTCOME_UNKNOWN.labels(action.name).inc()
            items = " (for_each: any of its items may have been done)" if step.for_each else ""
            raise _StepFailed(
                f"outcome unknown: {action.name} was under way when its worker stopped{items}, "
                "and it is not safe to repeat; check the remote side, then retry the run if needed"
            )
        if step.for_each is not None:
            return await self._run_items(run_id, step, action, attempts, context)
        return await self._call(run_id, step, action, attempts=attempts, context=context)

    async def _run_items(
        self, run_id: str, step: Step, action: Action, attempts: int, context: dict[str, Any]
    ) -> dict[str, Any]:
        try:
            found = control.items(step, context)
        except IntegrationHubError as exc:
            raise _StepFailed(exc.message) from exc
        if found and not await self.store.start_step(
            run_id, step.id, attempt=attempts + 1, owner=self.owner, lease=self.lease
        ):
            raise _LeaseLost

        async def call(index: int, item: Any) -> dict[str, Any]:
            if index and await self.store.cancel_requested(run_id):
                raise _Cancelled
            with structlog.contextvars.bound_contextvars(item=index):
                try:
                    return await self._call(
                        run_id,
                        step,
                        action,
                        attempts=0,
                        context=control.item_context(context, index, item),
                        item=index,
                    )
                except _StepFailed as failure:
                    error = f"item {index} of {len(found)}: {failure.error}"
                    raise _StepFailed(error) from failure

        outputs = await control.each(found, concurrency=step.concurrency or 1, call=call)
        return {"items": outputs}

    async def _call(
        self,
        run_id: str,
        step: Step,
        action: Action,
        *,
        attempts: int,
        context: dict[str, Any],
        item: int | None = None,
    ) -> dict[str, Any]:
        """The action's call for the step, or for one of its items, with retries."""
        policy = step.retry
        deadline = time.monotonic() + policy.deadline
        while True:
            attempts += 1
            try:
                return await self._attempt(run_id, step, action, attempts, context, deadline, item)
            except RetryableError as exc:
                if exc.effect_possible and not _repeatable(step, action):
                    OUTCOME_UNKNOWN.labels(action.name).inc()
                    raise _StepFailed(
                        f"outcome unknown: {exc.message}; the call may have had its effect, and "
                        f"{action.name} is not safe to repeat: check the remote side, then retry "
                        "the run if needed"
                    ) from exc
                if attempts >= policy.max_attempts:
                    raise _StepFailed(f"{exc.message} (after {attempts} attempts)") from exc
                delay = max(exc.retry_after or 0.0, random.uniform(0, policy.delay(attempts)))
                if time.monotonic() + delay > deadline:
                    raise _StepFailed(
                        f"{exc.message} (no retry fits in the step's {policy.deadline:g}s deadline)"
                    ) from exc
                RETRIES.labels(action.name).inc()
                log.info(
                    "step.retrying", attempt=attempts, error=exc.message, delay=round(delay, 3)
                )
                if item is None:  # an item's retry leaves the step sending: others may be
                    await self._finish_step(
                        run_id, StepOutcome(step.id, StepStatus.pending, error=exc.message)
                    )
                await asyncio.sleep(delay)
                if await self.store.cancel_requested(run_id):
                    raise _Cancelled from None

    async def _attempt(
        self,
        run_id: str,
        step: Step,
        action: Action,
        attempt: int,
        context: dict[str, Any],
        deadline: float,
        item: int | None,
    ) -> dict[str, Any]:
        """One attempt. Raises RetryableError to be retried, _StepFailed to stop."""
        limit_key = LimitKey(action.connector.name, step.credential)
        try:
            credential = await self._credential(step, action)
            params = expressions.render(step.input, context, ("input",))
            # Waits (before the step counts as sending) until the rate limit lets it go.
            limit = self.rate_limits.limit_for(action.connector, credential)
            await self.rate_limits.acquire(limit_key, limit, deadline=deadline)
        except CredentialStoreUnavailable as exc:
            if item is None:
                raise  # the run is put back, its step still pending
            # Put back now, the step would be taken up again as sending, its outcome unknown.
            raise RetryableError(exc.message) from exc
        except RetryableError:
            raise
        except IntegrationHubError as exc:
            raise _StepFailed(exc.message) from exc
        invoke_context = ActionContext(
            run_id=run_id,
            step_id=step.id if item is None else control.call_id(step.id, item),
            attempt=attempt,
            http=self.http,
            bus=self.bus,
            tokens=self.tokens,
            save_credential=functools.partial(self._save_credential, step.credential),
            connections=self.connections,
        )
        if item is None:
            held = await self.store.start_step(
                run_id, step.id, attempt=attempt, owner=self.owner, lease=self.lease
            )
        else:  # the step is sending already; a call that must happen once checks the lease
            held = action.safe_to_repeat or await self.store.renew(
                run_id, owner=self.owner, lease=self.lease
            )
        if not held:
            raise _LeaseLost
        started = time.perf_counter()
        outcome = "failed"
        try:
            async with self.rate_limits.reporting(limit_key):  # 429s slow later calls down
                result = await action.invoke(
                    credential=credential,
                    params=params,
                    context=invoke_context,
                    timeout=step.timeout,
                )
            outcome = "succeeded"
            return result.model_dump(mode="json")
        except RetryableError:
            outcome = "retryable"
            raise
        except IntegrationHubError as exc:
            raise _StepFailed(exc.message) from exc
        except Exception as exc:  # a connector bug must fail the step, not strand the run
            log.exception("step.crashed")
            raise _StepFailed(f"unexpected error in {action.name}: {type(exc).__name__}") from exc
        finally:
            STEP_SECONDS.labels(action.name, outcome).observe(time.perf_counter() - started)

    async def _credential(self, step: Step, action: Action) -> Credential | None:
        accepted = {t.type: t for t in action.credential_types}
        if not accepted or (step.credential is None and action.credential_optional):
            return None
        if step.credential is None:
            raise PermanentError(
                f"{action.name} needs a {' or '.join(accepted)} credential; the step names none"
            )
        stored = await self.credentials.read(step.credential)
        credential_type = accepted.get(stored.metadata.type)
        if credential_type is None:
            raise CredentialInvalid(
                f"credential {step.credential!r} is of type {stored.metadata.type!r}, "
                f"{action.name} needs {' or '.join(map(repr, accepted))}"
            )
        try:
            return credential_type.model_validate(stored.data)
        except ValueError as exc:
            raise CredentialInvalid(
                f"credential {step.credential!r} does not fit type {credential_type.type!r}"
            ) from exc

    async def _save_credential(self, credential_id: str | None, credential: Credential) -> None:
        """Write a credential an action changed (a refreshed OAuth 2 token) back to the store."""
        if credential_id is None:
            return
        await self.credentials.write(credential_id, type=credential.type, data=credential.reveal())

    def _step_event(self, claimed: ClaimedRun, step_id: str, status: StepStatus) -> None:
        self.events.emit(
            run_id=claimed.id,
            flow_id=claimed.flow.id,
            type="step.finished",
            status=RunStatus.running,
            step={"id": step_id, "status": status},
        )

    @asynccontextmanager
    async def _lease_kept(self, run_id: str) -> AsyncIterator[None]:
        async def renew() -> None:
            while True:
                await asyncio.sleep(self.lease / 3)
                try:
                    held = await self.store.renew(run_id, owner=self.owner, lease=self.lease)
                except Exception as exc:  # a database hiccup: try again before the lease ends
                    log.warning("run.lease_renewal_failed", error=type(exc).__name__)
                    continue
                if not held:
                    log.warning("run.lease_lost")
                    return

        task = asyncio.create_task(renew())
        try:
            yield
        finally:
            task.cancel()


def _repeatable(step: Step, action: Action) -> bool:
    """Whether a call that may already have had its effect may be made again."""
    return action.safe_to_repeat or step.on_unknown_outcome == "repeat"


def _should_run(step: Step, context: dict[str, Any]) -> bool:
    try:
        return control.should_run(step, context)
    except IntegrationHubError as exc:
        raise _StepFailed(exc.message) from exc
