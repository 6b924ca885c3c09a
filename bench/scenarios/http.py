"""4. HTTP connector: ``http-request`` steps to a local HTTP sink versus plain httpx at the same
concurrency (32), both closed loops; the hub's latency is trigger sent to request received.

Skipped, with a note, while no ``http-request`` action is registered. Also measured here: the
capacity of the bench's own HTTP client against the sink, so the intake figures can be read
knowing that the load generator was not the limit.
"""

from __future__ import annotations

import os
import time
from typing import Any

import httpx

from bench.httpclient import Connection
from bench.hub import HubProcess
from bench.load import Deliveries, Outcome, closed_loop, settle
from bench.procs import Sink, start_sink
from bench.report import Row
from bench.scenarios.common import (
    Context,
    check_deliveries,
    monitored,
    outcome_row,
    standard_hub,
    token,
    verdict,
)

ACTION = "http-request"
FLOW = "bench-http-request"
CONCURRENCY = 32
TARGET_RATIO = 0.5  # the end-to-end target, applied here too for comparison


async def run(ctx: Context) -> None:
    workdir = ctx.workdir / "http"
    workdir.mkdir(parents=True, exist_ok=True)
    http_sink = await start_sink("http", workdir)
    try:
        ctx.rows.append(await _client_capacity(ctx, http_sink))
        # The connector refuses private and loopback addresses unless allowed: the sink is local.
        allow = {"INTEGRATIONHUB_HTTP_ALLOW_NETWORKS": "127.0.0.1/32"}
        async with standard_hub(ctx, "http", env=allow) as std:
            reason = await _prepare(std.hub, http_sink)
            if reason:
                ctx.rows.append(Row("http", "hub vs httpx", verdict="skipped", note=reason))
                ctx.say(f"http: skipped ({reason})")
                return
            count = ctx.sizes.http
            pids = {**std.pids(), "sink": http_sink.pid}
            async with monitored(pids) as watch:
                raw = await _loop(ctx, http_sink, _httpx_send(http_sink), label="hx", count=count)
            raw.details["processes"] = watch.report
            async with monitored(pids) as watch:
                hub = await _loop(ctx, http_sink, _hub_send(std.hub), label="hr", count=count)
            hub.details["processes"] = watch.report
            ctx.rows += [raw, hub]
            ratio = (hub.value or 0) / (raw.value or 1)
            ctx.rows.append(
                Row(
                    "http",
                    f"hub/raw c={CONCURRENCY}",
                    value=round(ratio, 3),
                    unit="ratio",
                    target=f">={TARGET_RATIO} (as e2e)",
                    verdict=verdict(ratio >= TARGET_RATIO),
                )
            )
    finally:
        await http_sink.stop()


async def _prepare(hub: HubProcess, sink: Sink) -> str | None:
    """Put the benchmark flow; the reason to skip, or None."""
    async with hub.client() as client:
        connectors = (await client.get("/api/v1/connectors")).json()
        actions = {a["name"] for c in connectors for a in c.get("actions", [])}
        if ACTION not in actions:
            return f"no {ACTION!r} action registered in this build (actions: {sorted(actions)})"
        flow = {
            "id": FLOW,
            "description": "bench: one POST to the local HTTP sink",
            "parameters": {
                "type": "object",
                "required": ["token"],
                "properties": {"token": {"type": "string"}, "text": {"type": "string"}},
            },
            "steps": [
                {
                    "id": "call",
                    "action": ACTION,
                    "input": {
                        "method": "POST",
                        "url": f"http://127.0.0.1:{sink.port}/hook",
                        "headers": {"X-Bench-Token": "{{ parameters.token }}"},
                        "json": {
                            "token": "{{ parameters.token }}",
                            "text": "{{ parameters.text }}",
                        },
                    },
                }
            ],
        }
        response = await client.put(f"/api/v1/flows/{FLOW}", json=flow)
        if response.status_code >= 300:
            return f"the {FLOW} flow was refused: HTTP {response.status_code} {response.text[:300]}"
        probe = await client.post(
            "/api/v1/trigger?wait=10",
            json={"flow_id": FLOW, "parameters": {"token": "probe-0", "text": "probe"}},
        )
        run = probe.json()
        if run.get("status") != "succeeded":
            return f"a probe run did not succeed: {str(run)[:400]}"
    return None


def _httpx_send(sink: Sink) -> Any:
    client = httpx.AsyncClient(limits=httpx.Limits(max_connections=CONCURRENCY))
    url = f"http://127.0.0.1:{sink.port}/hook"

    async def send(tok: str, _worker: int) -> None:
        response = await client.post(
            url, headers={"X-Bench-Token": tok}, json={"token": tok, "text": "hello"}
        )
        response.raise_for_status()

    send.close = client.aclose  # type: ignore[attr-defined]
    return send


def _hub_send(hub: HubProcess) -> Any:
    headers = {"authorization": f"Bearer {hub.key}"}
    connections = [Connection("127.0.0.1", hub.port, headers=headers) for _ in range(CONCURRENCY)]

    async def send(tok: str, worker: int) -> None:
        body = {"flow_id": FLOW, "parameters": {"token": tok, "text": "hello"}}
        status, answer = await connections[worker].post_json("/api/v1/trigger", body)
        if status != 202:
            raise RuntimeError(f"HTTP {status}: {answer[:200]!r}")

    async def close() -> None:
        for connection in connections:
            connection.close()

    send.close = close  # type: ignore[attr-defined]
    return send


async def _loop(ctx: Context, sink: Sink, send: Any, *, label: str, count: int) -> Row:
    await sink.command("RESET")
    sent: set[str] = set()
    async with Deliveries(sink) as deliveries:

        async def one(index: int, worker: int) -> float:
            tok = token(label, index)
            started = time.monotonic()
            await send(tok, worker)
            sent.add(tok)
            return await deliveries.arrival(tok, timeout=ctx.sizes.drain_cap) - started

        outcome = await closed_loop(
            one, count=count, concurrency=CONCURRENCY, time_cap=ctx.sizes.time_cap
        )
        await send.close()
        stats = await settle(sink, expected=len(sent), timeout=ctx.sizes.drain_cap)
    case = ("hub http-request" if label == "hr" else "raw httpx") + f" c={CONCURRENCY}"
    row = outcome_row("http", case, outcome, unit="requests/s",
                      note="latency: sent -> request at sink")  # fmt: skip
    return check_deliveries(row, deliveries, sent, stats)


async def _client_capacity(ctx: Context, sink: Sink) -> Row:
    """The bench client alone against the HTTP sink: the most intake it could measure."""
    await sink.command("RESET")
    connections = [Connection("127.0.0.1", sink.port) for _ in range(CONCURRENCY)]
    body = {"flow_id": "send-summary-email", "parameters": {"to": "x@example.com"}}
    sent: set[str] = set()

    async def one(index: int, worker: int) -> float:
        tok = token("cap", index)
        started = time.monotonic()
        status, _ = await connections[worker].post_json(
            "/hook", body, headers={"X-Bench-Token": tok}
        )
        if status != 200:
            raise RuntimeError(f"HTTP {status}")
        sent.add(tok)
        return time.monotonic() - started

    count = max(ctx.sizes.intake * 3, 1000)
    pids = {"sink": sink.pid, "driver": os.getpid()}
    async with Deliveries(sink) as deliveries, monitored(pids) as watch:
        outcome: Outcome = await closed_loop(
            one, count=count, concurrency=CONCURRENCY, time_cap=ctx.sizes.time_cap
        )
    for connection in connections:
        connection.close()
    stats = await settle(sink, expected=outcome.done, timeout=10, quiet=0.2)
    row = outcome_row("http", f"bench client -> sink c={CONCURRENCY}", outcome,
                      unit="requests/s", note="load generator capacity (no hub)")  # fmt: skip
    row.details["processes"] = watch.report
    return check_deliveries(row, deliveries, sent, stats)
