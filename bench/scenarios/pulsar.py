"""3. From Pulsar: trigger messages published to the hub's trigger topic.

All messages are published at once (a burst, as a backlog from another service would arrive);
the figure is deliveries per second from the first publish to the last email at the sink. The
raw baseline is a plain pulsar-client consumer in a process of its own, on its own topic of the
same broker, that sends each email itself; both consume with the hub's default worker
concurrency (16).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import pulsar
from pulsar.asyncio import Client

from bench.load import Deliveries, settle
from bench.procs import ROOT, terminate
from bench.report import Row
from bench.scenarios.common import (
    Context,
    Standard,
    check_deliveries,
    monitored,
    standard_hub,
    token,
    trigger_body,
    warm_up,
)

TRIGGERS_TOPIC = "persistent://public/default/integrationhub.triggers"
RAW_TOPIC = "persistent://public/default/bench.raw-triggers"


async def run(ctx: Context) -> None:
    sizes = ctx.sizes
    async with standard_hub(ctx, "pulsar") as std:
        await warm_up(ctx, std.hub, std.sink)
        url = std.hub.log_events("pulsar.embedded.ready")["pulsar.embedded.ready"]["url"]
        client = Client(url, logger=pulsar.ConsoleLogger(pulsar.LoggerLevel.Warn))
        try:
            raw = await _raw(ctx, std, client, url, count=sizes.pulsar)
            ctx.rows.append(raw)
            ctx.say(f"pulsar raw: {raw.value}/s")
            hub = await _burst(
                ctx, std, client, TRIGGERS_TOPIC, label="pub", count=sizes.pulsar, case="hub"
            )
            ctx.rows.append(hub)
            ctx.say(f"pulsar hub: {hub.value}/s")
        finally:
            await client.close()
        ratio = (hub.value or 0) / (raw.value or 1)
        ctx.rows.append(Row("pulsar", "hub/raw", value=round(ratio, 3), unit="ratio"))


async def _raw(ctx: Context, std: Standard, client: Client, url: str, *, count: int) -> Row:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.raw_pulsar", "--url", url, "--topic", RAW_TOPIC,
        "--smtp-port", str(std.sink.port), "--expect", str(count),
        "--concurrency", str(ctx.sizes.pulsar_concurrency),
        stdout=asyncio.subprocess.PIPE, cwd=ROOT,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        ready = await asyncio.wait_for(process.stdout.readline(), 30)
        if not ready.startswith(b"READY"):
            raise RuntimeError(f"raw consumer did not start: {ready!r}")
        return await _burst(
            ctx, std, client, RAW_TOPIC, label="raw", count=count, case="raw consumer",
            extra_pids={"raw-consumer": process.pid},
        )  # fmt: skip
    finally:
        await terminate(process, grace=5)


async def _burst(
    ctx: Context,
    std: Standard,
    client: Client,
    topic: str,
    *,
    label: str,
    count: int,
    case: str,
    extra_pids: dict[str, int] | None = None,
) -> Row:
    sink = std.sink
    await sink.command("RESET")
    producer = await client.create_producer(topic, batching_enabled=False)
    published: dict[str, float] = {}
    cap = ctx.sizes.time_cap  # from the first publish to the last delivery counted
    async with (
        Deliveries(sink) as deliveries,
        monitored({**std.pids(), **(extra_pids or {})}) as watch,
    ):
        started = time.monotonic()

        async def publish(index: int) -> None:
            tok = token(label, index)
            published[tok] = time.monotonic()
            await producer.send(json.dumps(trigger_body(tok)).encode())

        for first in range(0, count, 500):
            await asyncio.gather(*(publish(i) for i in range(first, min(first + 500, count))))
        publish_s = time.monotonic() - started
        deadline = started + cap
        while len(deliveries.arrivals) < count and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.1)  # a progress poll with a deadline, not a wait for one event
        capped = len(deliveries.arrivals) < count
        last = max(deliveries.arrivals.values(), default=started)
        stats = await settle(sink, expected=0 if capped else count, timeout=1)
    await producer.close()
    arrived = len(deliveries.arrivals)
    row = Row(
        "pulsar",
        case,
        value=round(arrived / max(last - started, 1e-9), 1),
        unit="deliveries/s",
        n=arrived,
        errors=0,
        note="latency: published -> email at sink, burst (queueing included)",
    ).latencies(
        [at - published[tok] for tok, at in deliveries.arrivals.items() if tok in published]
    )
    row.details.update(
        published=count,
        publish_s=round(publish_s, 2),
        elapsed_s=round(last - started, 2),
        processes=watch.report,
        concurrency=ctx.sizes.pulsar_concurrency,
    )
    if capped:
        row.note += f"; time cap ({cap:g}s) reached with {arrived} of {count} delivered"
        row.details["capped"] = True
        expected = set(deliveries.arrivals) & set(published)
    else:
        expected = set(published)
    return check_deliveries(row, deliveries, expected, stats)
