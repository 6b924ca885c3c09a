"""1. Trigger intake: POST /api/v1/trigger for send-summary-email at concurrency 1, 32 and 128.

Each caller sends its next trigger as soon as the previous one is answered (a closed loop) over
a keep-alive connection; a trigger counts as accepted on 202. The runs execute in the same hub
meanwhile, as they would in production, and the phase ends only when every accepted run's email
has reached the sink.
"""

from __future__ import annotations

import time

from bench.httpclient import Connection
from bench.load import Deliveries, closed_loop, settle
from bench.report import Row
from bench.scenarios.common import (
    Context,
    Standard,
    check_deliveries,
    monitored,
    outcome_row,
    profiled,
    standard_hub,
    token,
    trigger_body,
    verdict,
    warm_up,
)

TARGET_RATE = 1000.0
TARGET_P99_MS = 50.0


async def run(ctx: Context) -> None:
    async with standard_hub(ctx, "intake") as std:
        await warm_up(ctx, std.hub, std.sink)
        for concurrency in ctx.sizes.intake_levels:
            row = await _level(ctx, std, concurrency, count=ctx.sizes.intake)
            ctx.rows.append(row)
            ctx.say(f"intake c={concurrency}: {row.value} triggers/s, p99 {row.p99} ms")
        if ctx.profile:
            async with profiled(ctx, std.hub.pid, "intake-c32"):
                await _level(ctx, std, 32, count=ctx.sizes.profile_count, label="prof")


async def _level(
    ctx: Context, std: Standard, concurrency: int, *, count: int, label: str = "in"
) -> Row:
    hub, sink = std.hub, std.sink
    await sink.command("RESET")
    headers = {"authorization": f"Bearer {hub.key}"}
    connections = [Connection("127.0.0.1", hub.port, headers=headers) for _ in range(concurrency)]
    accepted: set[str] = set()
    tag = f"{label}{concurrency}"

    async def one(index: int, worker: int) -> float:
        tok = token(tag, index)
        body = trigger_body(tok)
        started = time.monotonic()
        status, answer = await connections[worker].post_json("/api/v1/trigger", body)
        latency = time.monotonic() - started
        if status != 202:
            raise RuntimeError(f"HTTP {status}: {answer[:200]!r}")
        accepted.add(tok)
        return latency

    async with Deliveries(sink) as deliveries:
        async with monitored(std.pids()) as watch:
            outcome = await closed_loop(
                one, count=count, concurrency=concurrency, time_cap=ctx.sizes.time_cap
            )
        for connection in connections:
            connection.close()
        drain_started = time.monotonic()
        stats = await settle(sink, expected=len(accepted), timeout=ctx.sizes.drain_cap)
        drained = time.monotonic() - drain_started
    row = outcome_row("intake", f"c={concurrency}", outcome, unit="triggers/s")
    row.details["processes"] = watch.report
    row.details["backlog_drain_s"] = round(drained, 2)
    if concurrency == 32:
        row.target = f">={TARGET_RATE:.0f}/s, p99<{TARGET_P99_MS:.0f}ms"
        row.verdict = verdict(
            row.value is not None
            and row.value >= TARGET_RATE
            and row.p99 is not None
            and row.p99 < TARGET_P99_MS
        )
    return check_deliveries(row, deliveries, accepted, stats)
