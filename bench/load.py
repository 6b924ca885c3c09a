"""Bounded load: a fixed number of operations at a fixed concurrency, stopped by a time cap,
and the deliveries a sink reports, matched to what was sent by token."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from bench.procs import Sink

__all__ = ["Deliveries", "Outcome", "closed_loop", "settle"]


@dataclass
class Outcome:
    """What a closed loop did: ``latencies`` in seconds, one per successful operation."""

    requested: int
    concurrency: int
    done: int = 0
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    secondary: list[float] = field(default_factory=list)  # a second latency, if any
    started: float = 0.0
    finished: float = 0.0
    capped: bool = False

    @property
    def elapsed(self) -> float:
        return max(self.finished - self.started, 1e-9)

    @property
    def rate(self) -> float:
        return self.done / self.elapsed


async def closed_loop(
    operation: Callable[[int, int], Awaitable[float]],
    *,
    count: int,
    concurrency: int,
    time_cap: float,
) -> Outcome:
    """Run ``operation(index, worker)`` ``count`` times, ``concurrency`` at once; each returns
    its latency in seconds or raises. No new operation starts after ``time_cap`` seconds."""
    outcome = Outcome(requested=count, concurrency=concurrency)
    next_index = 0
    deadline = time.monotonic() + time_cap

    async def worker(number: int) -> None:
        nonlocal next_index
        while next_index < count:
            if time.monotonic() > deadline:
                outcome.capped = True
                return
            index, next_index = next_index, next_index + 1
            try:
                latency = await operation(index, number)
            except Exception as exc:  # counted and sampled: the run goes on
                outcome.errors += 1
                if len(outcome.error_samples) < 5:
                    outcome.error_samples.append(f"{type(exc).__name__}: {exc}"[:300])
            else:
                outcome.done += 1
                outcome.latencies.append(latency)

    outcome.started = time.monotonic()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    outcome.finished = time.monotonic()
    return outcome


class Deliveries:
    """Follows a sink's WATCH stream: the arrival time of every token, and a way to wait for
    one."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self.arrivals: dict[str, float] = {}
        self.ids: dict[str, str] = {}
        self.duplicates = 0
        self._waiting: dict[str, asyncio.Future[float]] = {}
        self._task: asyncio.Task[None] | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def __aenter__(self) -> Deliveries:
        reader, self._writer = await asyncio.open_connection("127.0.0.1", self.sink.control_port)
        self._writer.write(b"WATCH\n")
        await self._writer.drain()
        await reader.readline()
        self._task = asyncio.create_task(self._follow(reader))
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._writer is not None:
            self._writer.close()

    async def _follow(self, reader: asyncio.StreamReader) -> None:
        while line := await reader.readline():
            token, at, ident = line.decode().split(" ", 2)
            if token in self.arrivals:
                self.duplicates += 1
                continue
            self.arrivals[token] = float(at)
            self.ids[token] = ident.strip()
            waiter = self._waiting.pop(token, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(float(at))

    async def arrival(self, token: str, *, timeout: float) -> float:
        """When ``token`` reached the sink, waiting up to ``timeout`` seconds for it."""
        if token in self.arrivals:
            return self.arrivals[token]
        waiter = self._waiting.setdefault(token, asyncio.get_running_loop().create_future())
        try:
            return await asyncio.wait_for(asyncio.shield(waiter), timeout)
        except TimeoutError:
            raise TimeoutError(f"{token} not delivered within {timeout:g}s") from None


async def settle(
    sink: Sink, *, expected: int, timeout: float, quiet: float = 1.0
) -> dict[str, int]:
    """Wait until the sink has at least ``expected`` deliveries (or ``timeout``), then ``quiet``
    seconds more so that a late duplicate would be seen; the sink's counts."""
    deadline = time.monotonic() + timeout
    stats = json.loads(await sink.command("STATS"))
    while stats["deliveries"] < expected and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        stats = json.loads(await sink.command("STATS"))
    await asyncio.sleep(quiet)
    return dict(json.loads(await sink.command("STATS")))
