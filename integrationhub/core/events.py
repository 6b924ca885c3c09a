"""Run events: every state change of a run, published as JSON keyed by run id, so another
service can follow a run without polling; and, in process, the wake-up for ``?wait=``."""

from __future__ import annotations

import asyncio
import functools
import json
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from integrationhub.core.schema import utcnow
from integrationhub.errors import BusError
from integrationhub.models.run import RunStatus

__all__ = ["Publish", "RunEvents"]

log = structlog.get_logger()

Publish = Callable[..., Awaitable[None]]


class RunEvents:
    def __init__(self, *, publish: Publish | None, topic: str) -> None:
        self._publish = publish
        self._topic = topic
        self._pending: set[asyncio.Task[None]] = set()
        self._last: dict[str, asyncio.Task[None]] = {}  # the latest event of each run
        self._waiters: defaultdict[str, set[asyncio.Event]] = defaultdict(set)

    def emit(
        self,
        *,
        run_id: str,
        flow_id: str,
        type: str,
        status: RunStatus,
        step: dict[str, Any] | None = None,
    ) -> None:
        """Publish in the background: a broker outage must not slow or fail a run."""
        if status.finished:
            for waiter in self._waiters.pop(run_id, ()):
                waiter.set()
        if self._publish is None:
            return
        event: dict[str, Any] = {
            "run_id": run_id,
            "flow_id": flow_id,
            "type": type,
            "status": status,
            "at": utcnow().isoformat(),
        }
        if step is not None:
            event["step"] = step
        # A run's events are published one after the other, each once the broker has the one
        # before: a follower must never see a run finish before its last step.
        previous = self._last.get(run_id)
        task = asyncio.create_task(self._send(run_id, json.dumps(event).encode(), previous))
        self._last[run_id] = task
        self._pending.add(task)
        task.add_done_callback(functools.partial(self._sent, run_id))

    def _sent(self, run_id: str, task: asyncio.Task[None]) -> None:
        self._pending.discard(task)
        if self._last.get(run_id) is task:
            del self._last[run_id]

    async def _send(self, run_id: str, payload: bytes, previous: asyncio.Task[None] | None) -> None:
        assert self._publish is not None
        if previous is not None:
            await asyncio.wait([previous])
        try:
            await self._publish(self._topic, payload, key=run_id)
        except BusError as exc:
            log.warning("run_event.not_published", run_id=run_id, reason=exc.message)

    async def finished(self, run_id: str, *, timeout: float) -> None:
        """Return when this process finishes the run, or after ``timeout`` seconds."""
        event = asyncio.Event()
        self._waiters[run_id].add(event)
        try:
            async with asyncio.timeout(timeout):
                await event.wait()
        except TimeoutError:
            pass
        finally:
            waiters = self._waiters.get(run_id)
            if waiters is not None:
                waiters.discard(event)
                if not waiters:
                    del self._waiters[run_id]

    async def drain(self) -> None:
        if self._pending:
            await asyncio.wait(self._pending, timeout=5)
