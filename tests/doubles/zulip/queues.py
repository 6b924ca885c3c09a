"""Zulip's event queues as the double keeps them: registered by ``POST /register``, long-polled
by ``GET /events``, fed by tests (from their own thread) and by the double's operations."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

__all__ = ["EventQueues"]


@dataclass
class _Queue:
    id: str
    event_types: list[str] | None
    events: list[dict[str, Any]] = field(default_factory=list)
    next_id: int = 0
    gone: bool = False
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def wants(self, event_type: str) -> bool:
        return self.event_types is None or event_type in self.event_types


class EventQueues:
    """The queues, safe to use from the tests' thread and the server's loop alike."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queues: dict[str, _Queue] = {}
        self.loop: asyncio.AbstractEventLoop | None = None  # the server's, to wake long-polls

    def clear(self) -> None:
        self.expire()  # releases long-polls still waiting
        with self._lock:
            self._queues = {}

    def register(self, event_types: list[str] | None) -> str:
        queue = _Queue(id=str(uuid.uuid4()), event_types=event_types)
        with self._lock:
            self._queues[queue.id] = queue
        return queue.id

    def push(self, event: dict[str, Any], *, queue_id: str | None = None) -> None:
        """Add an event (its ``id`` is set here) to one queue, or to every live queue that
        registered for its type, and wake the long-polls waiting on them."""
        with self._lock:
            queues = [self._queues[queue_id]] if queue_id else list(self._queues.values())
            for queue in queues:
                if not queue.gone and (queue_id or queue.wants(event["type"])):
                    queue.events.append({**event, "id": queue.next_id})
                    queue.next_id += 1
                    self._wake(queue)

    def expire(self, queue_id: str | None = None) -> None:
        """Garbage-collect one queue (or all), as Zulip does after ~10 idle minutes."""
        with self._lock:
            for queue in self._queues.values():
                if queue_id in (None, queue.id):
                    queue.gone = True
                    self._wake(queue)

    @property
    def ids(self) -> list[str]:
        with self._lock:
            return [q.id for q in self._queues.values() if not q.gone]

    async def events(
        self, queue_id: str, *, last_event_id: int, dont_block: bool, timeout: float
    ) -> list[dict[str, Any]] | None:
        """Long-poll: at once the events newer than ``last_event_id`` (dropping the
        acknowledged ones), else wait up to ``timeout`` and answer a heartbeat. None when the
        queue does not exist (any more)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            with self._lock:
                queue = self._queues.get(queue_id)
                if queue is None or queue.gone:
                    return None
                queue.events = [e for e in queue.events if e["id"] > last_event_id]
                if queue.events or dont_block:
                    return list(queue.events)
                queue.changed.clear()
            remaining = deadline - loop.time()
            if remaining <= 0:
                self.push({"type": "heartbeat"}, queue_id=queue_id)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(queue.changed.wait(), remaining)

    def _wake(self, queue: _Queue) -> None:
        loop = self.loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(queue.changed.set)
