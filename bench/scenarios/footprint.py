"""5. Footprint: resident memory of the hub process idle and at peak, the embedded OpenBao and
pulsar-lite processes apart; start-up time to a healthy ``/health``.

Start-up is timed from exec to the first ``/health`` answering ``ok`` for every component: once
on a fresh data dir (OpenBao is initialised, migrations run) and once more on the same data dir
(a restart). Idle is read 5 s after start-up with the credential put; peak is the highest
resident size sampled (every 250 ms) during a burst of triggers at concurrency 128 and the
execution of its runs, and the hub's own high-water mark (VmHWM).
"""

from __future__ import annotations

import asyncio
import time

from bench.httpclient import Connection
from bench.hub import HubProcess
from bench.load import Deliveries, closed_loop, settle
from bench.procs import memory_mb, start_sink
from bench.report import Row
from bench.scenarios.common import (
    Context,
    Standard,
    check_deliveries,
    monitored,
    token,
    trigger_body,
    verdict,
)

TARGET_IDLE_MB = 150.0


async def run(ctx: Context) -> None:
    workdir = ctx.workdir / "footprint"
    workdir.mkdir(parents=True, exist_ok=True)
    sink = await start_sink("smtp", workdir)
    try:
        hub = await HubProcess.start(workdir)
        cold = hub.startup_seconds
        try:
            await hub.put_smtp_credential(sink.port)
            await asyncio.sleep(5)
            engines = hub.engines()
            idle = {"hub": memory_mb(hub.pid)[0]} | {
                name: memory_mb(pid)[0] for name, pid in engines.items()
            }
            std = Standard(hub, sink)
            async with monitored(std.pids()) as watch:
                burst = await _burst(ctx, std)
            hwm = memory_mb(hub.pid)[1]
        finally:
            await hub.stop()
        warm_hub = await HubProcess.start(workdir, data_dir=hub.data_dir, name="hub-restart")
        warm = warm_hub.startup_seconds
        await warm_hub.stop()
    finally:
        await sink.stop()
    peak = watch.report
    ctx.rows += [
        Row("footprint", "start-up, fresh data dir", value=round(cold, 2), unit="s",
            note="exec -> /health ok; OpenBao initialised, migrations run"),
        Row("footprint", "start-up, restart", value=round(warm, 2), unit="s",
            note="exec -> /health ok on the same data dir"),
        Row("footprint", "hub RSS idle", value=round(idle["hub"], 1), unit="MB",
            target=f"<{TARGET_IDLE_MB:.0f}MB", verdict=verdict(idle["hub"] < TARGET_IDLE_MB)),
        Row("footprint", "hub RSS peak", value=max(peak["hub"]["rss_peak_mb"], round(hwm, 1)),
            unit="MB", note=f"burst of {burst.n} triggers at c=128 and their runs; VmHWM "
            f"{hwm:.1f} MB"),
    ]  # fmt: skip
    for name in ("pulsar-lite", "openbao"):
        ctx.rows += [
            Row("footprint", f"{name} RSS idle", value=round(idle.get(name, 0.0), 1), unit="MB"),
            Row("footprint", f"{name} RSS peak",
                value=peak.get(name, {}).get("rss_peak_mb"), unit="MB"),
        ]  # fmt: skip
    ctx.rows.append(burst)
    ctx.say(f"footprint: idle {idle}, start-up {cold:.1f}s / {warm:.1f}s")


async def _burst(ctx: Context, std: Standard) -> Row:
    hub, sink = std.hub, std.sink
    await sink.command("RESET")
    connections = [
        Connection("127.0.0.1", hub.port, headers={"authorization": f"Bearer {hub.key}"})
        for _ in range(128)
    ]
    accepted: set[str] = set()

    async def one(index: int, worker: int) -> float:
        tok = token("fp", index)
        started = time.monotonic()
        status, answer = await connections[worker].post_json("/api/v1/trigger", trigger_body(tok))
        if status != 202:
            raise RuntimeError(f"HTTP {status}: {answer[:200]!r}")
        accepted.add(tok)
        return time.monotonic() - started

    async with Deliveries(sink) as deliveries:
        outcome = await closed_loop(
            one, count=ctx.sizes.footprint_burst, concurrency=128, time_cap=ctx.sizes.time_cap
        )
        for connection in connections:
            connection.close()
        stats = await settle(sink, expected=len(accepted), timeout=ctx.sizes.drain_cap)
    row = Row("footprint", "burst c=128 (load for peak)", value=round(outcome.rate, 1),
              unit="triggers/s", n=outcome.done, errors=outcome.errors)  # fmt: skip
    row.latencies(outcome.latencies)
    return check_deliveries(row, deliveries, accepted, stats)
