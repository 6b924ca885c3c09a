"""2. End to end: send-summary-email runs from trigger to email received at the sink.

At concurrency 32 (throughput) and 1 (added latency), each caller triggers a run and waits until
its email has arrived before it sends the next (a closed loop). The raw baseline sends the same
messages to the same sink at the same concurrency with a plain aiosmtplib client, one
connection per email (``aiosmtplib.send``; the hub's connector keeps sessions open per
credential), and no hub; its latency is the client's send time.
"""

from __future__ import annotations

from bench.report import Row, percentile
from bench.scenarios.common import (
    Context,
    check_deliveries,
    hub_e2e,
    monitored,
    outcome_row,
    profiled,
    raw_e2e,
    run_breakdown,
    standard_hub,
    verdict,
    warm_up,
)

TARGET_RATIO = 0.5
TARGET_ADDED_MS = 10.0


async def run(ctx: Context) -> None:
    sizes = ctx.sizes
    async with standard_hub(ctx, "e2e") as std:
        await warm_up(ctx, std.hub, std.sink)
        rows: dict[tuple[str, int], Row] = {}
        for concurrency, count in ((32, sizes.e2e), (1, sizes.e2e_c1)):
            for who in ("raw", "hub"):
                async with monitored(std.pids()) as watch:
                    if who == "hub":
                        outcome, deliveries, expected = await hub_e2e(
                            ctx, [std.hub], std.sink, label=f"e{concurrency}",
                            count=count, concurrency=concurrency,
                        )  # fmt: skip
                    else:
                        outcome, deliveries, expected = await raw_e2e(
                            ctx, std.sink, label=f"r{concurrency}",
                            count=count, concurrency=concurrency,
                        )  # fmt: skip
                case = f"{who} c={concurrency}"
                row = outcome_row(
                    "e2e",
                    case,
                    outcome,
                    unit="deliveries/s",
                    note="latency: trigger sent -> email at sink"
                    if who == "hub"
                    else "latency: aiosmtplib send time",
                )
                row.details["processes"] = watch.report
                if who == "hub":
                    split = run_breakdown(std.hub, deliveries, expected)  # type: ignore[arg-type]
                    row.details["breakdown_ms"] = split
                    if split:
                        ctx.say(
                            "  p50 ms: " + ", ".join(f"{k} {v['p50']}" for k, v in split.items())
                        )
                if who == "raw":
                    sink_pct = watch.report.get("sink", {}).get("cpu_pct")
                    row.note += f"; the sink used {sink_pct}% of a core"
                    p50 = percentile(outcome.secondary, 50)
                    row.details["send_start_to_arrival_p50_ms"] = p50 and round(p50 * 1000, 2)
                ctx.rows.append(check_deliveries(row, deliveries, expected))
                rows[who, concurrency] = row
                ctx.say(f"e2e {case}: {row.value}/s, p50 {row.p50} ms, p99 {row.p99} ms")
        hub32, raw32 = rows["hub", 32], rows["raw", 32]
        ratio = (hub32.value or 0) / (raw32.value or 1)
        ctx.rows.append(
            Row(
                "e2e",
                "hub/raw c=32",
                value=round(ratio, 3),
                unit="ratio",
                target=f">={TARGET_RATIO}",
                verdict=verdict(ratio >= TARGET_RATIO),
            )
        )
        hub1, raw1 = rows["hub", 1], rows["raw", 1]
        if hub1.p50 is not None and raw1.p50 is not None:
            added = hub1.p50 - raw1.p50
            ctx.rows.append(
                Row(
                    "e2e",
                    "added p50 c=1",
                    value=round(added, 2),
                    unit="ms",
                    target=f"<{TARGET_ADDED_MS:.0f}ms",
                    verdict=verdict(added < TARGET_ADDED_MS),
                    note="hub p50 trigger->delivery minus raw p50 send time",
                )
            )
        if ctx.profile:
            for concurrency in (32, 1):
                count = sizes.profile_count if concurrency == 32 else sizes.profile_count // 5
                async with profiled(ctx, std.hub.pid, f"e2e-c{concurrency}"):
                    await hub_e2e(
                        ctx, [std.hub], std.sink, label=f"p{concurrency}",
                        count=count, concurrency=concurrency,
                    )  # fmt: skip
