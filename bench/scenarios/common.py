"""What the scenarios share: sizes, the messages, the standard hub with its SMTP sink, the raw
SMTP client, profiling and the delivery check."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiosmtplib

from bench.breakdown import breakdown
from bench.httpclient import Connection
from bench.hub import BIN, HubProcess
from bench.load import Deliveries, Outcome, closed_loop, settle
from bench.procs import Monitor, Sink, start_sink
from bench.report import Row

__all__ = [
    "BODY",
    "Context",
    "Sizes",
    "check_deliveries",
    "raw_message",
    "standard_hub",
    "trigger_body",
]

FLOW = "send-summary-email"
RECIPIENT = "recipient@example.com"
# An agent's summary: a heading, paragraphs and a list, about 1.5 KB of HTML.
BODY = (
    "<h2>Weekly summary</h2>"
    + "".join(
        f"<p>Paragraph {i}: the agent reviewed the open items, closed the ones that were done "
        f"and wrote down what is left for next week, with owners and dates.</p>"
        for i in range(1, 7)
    )
    + "<ul>"
    + "".join(f"<li>Item {i}: done</li>" for i in range(1, 9))
    + "</ul><p>Regards,<br>the Q Platform Agent</p>"
)
TEXT = "Weekly summary\n" + "\n".join(f"Paragraph {i}" for i in range(1, 7)) + "\n"


@dataclass(frozen=True)
class Sizes:
    intake: int = 2000
    intake_levels: tuple[int, ...] = (1, 32, 128)
    e2e: int = 5000
    e2e_c1: int = 500
    pulsar: int = 5000
    pulsar_concurrency: int = 16  # the hub's default INTEGRATIONHUB_WORKER_CONCURRENCY
    http: int = 5000
    footprint_burst: int = 2000
    scaleout: int = 3000
    time_cap: float = 120.0  # no new operation starts after this, per measured phase
    drain_cap: float = 120.0  # longest wait for the deliveries of a phase, after its load
    profile_count: int = 1500


QUICK = Sizes(
    intake=300, e2e=400, e2e_c1=100, pulsar=400, http=400, footprint_burst=300, scaleout=300,
    time_cap=30.0, drain_cap=60.0, profile_count=300,
)  # fmt: skip


@dataclass
class Context:
    sizes: Sizes
    workdir: Path
    results_dir: Path
    profile: bool = False
    scaleout_store: str = "postgresql"
    worker_processes: int = 0  # INTEGRATIONHUB_WORKER_PROCESSES of the standard hub
    rows: list[Row] = field(default_factory=list)

    def say(self, message: str) -> None:
        print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def token(label: str, index: int) -> str:
    return f"{label}-{index:06d}"


def trigger_body(tok: str) -> dict[str, Any]:
    return {
        "flow_id": FLOW,
        "parameters": {
            "to": RECIPIENT,
            "subject": f"Summary from the Q Platform Agent {tok}",
            "body": BODY,
        },
    }


def raw_message(tok: str) -> EmailMessage:
    """The message the hub sends for the same trigger: multipart/alternative, text and HTML."""
    message = EmailMessage()
    message["From"] = "raw@bench.localdomain"
    message["To"] = RECIPIENT
    message["Subject"] = f"Summary from the Q Platform Agent {tok}"
    message["Message-ID"] = f"<{tok}.send@bench.localdomain>"
    message.set_content(TEXT)
    message.add_alternative(BODY, subtype="html")
    return message


async def raw_send(sink: Sink, tok: str) -> float:
    """One email with a plain aiosmtplib client, a connection each (``aiosmtplib.send``);
    the send time in seconds."""
    message = raw_message(tok)
    started = time.monotonic()
    await aiosmtplib.send(message, hostname="127.0.0.1", port=sink.port, timeout=20)
    return time.monotonic() - started


@dataclass
class Standard:
    hub: HubProcess
    sink: Sink

    def pids(self) -> dict[str, int]:
        return {
            "hub": self.hub.pid,
            **self.hub.engines(),
            "sink": self.sink.pid,
            "driver": os.getpid(),
        }


@contextlib.asynccontextmanager
async def standard_hub(
    ctx: Context, name: str, *, sink_kind: str = "smtp", env: dict[str, str] | None = None
) -> AsyncIterator[Standard]:
    """The default hub (embedded OpenBao, pulsar-lite, SQLite) and an SMTP sink it sends to."""
    workdir = ctx.workdir / name
    workdir.mkdir(parents=True, exist_ok=True)
    sink = await start_sink("smtp", workdir)
    try:
        if ctx.worker_processes:
            env = {"INTEGRATIONHUB_WORKER_PROCESSES": str(ctx.worker_processes), **(env or {})}
        hub = await HubProcess.start(workdir, env=env)
        try:
            await hub.put_smtp_credential(sink.port)
            ctx.say(f"{name}: hub pid {hub.pid} healthy in {hub.startup_seconds:.1f}s")
            yield Standard(hub, sink)
        finally:
            await hub.stop()
    finally:
        await sink.stop()


async def hub_e2e(
    ctx: Context,
    hubs: list[HubProcess],
    sink: Sink,
    *,
    label: str,
    count: int,
    concurrency: int,
) -> tuple[Outcome, Deliveries, dict[str, tuple[str, float]]]:
    """Closed loop: each of ``concurrency`` callers triggers a run and waits until its email
    reaches the sink; latency is trigger sent to email received. Callers are spread over
    ``hubs``. Answers also token -> (run id, trigger sent) of every accepted trigger."""
    await sink.command("RESET")
    connections = [
        Connection("127.0.0.1", hubs[i % len(hubs)].port, headers=_auth(hubs[i % len(hubs)]))
        for i in range(concurrency)
    ]
    accepted: dict[str, tuple[str, float]] = {}
    async with Deliveries(sink) as deliveries:

        async def one(index: int, worker: int) -> float:
            tok = token(label, index)
            started = time.monotonic()
            status, body = await connections[worker].post_json("/api/v1/trigger", trigger_body(tok))
            if status != 202:
                raise RuntimeError(f"HTTP {status}: {body[:200]!r}")
            accepted[tok] = (json.loads(body)["run_id"], started)
            arrived = await deliveries.arrival(tok, timeout=ctx.sizes.drain_cap)
            return arrived - started

        outcome = await closed_loop(
            one, count=count, concurrency=concurrency, time_cap=ctx.sizes.time_cap
        )
        for connection in connections:
            connection.close()
        await settle(sink, expected=len(accepted), timeout=ctx.sizes.drain_cap)
    return outcome, deliveries, accepted


async def raw_e2e(
    ctx: Context, sink: Sink, *, label: str, count: int, concurrency: int
) -> tuple[Outcome, Deliveries, set[str]]:
    await sink.command("RESET")
    sent: set[str] = set()
    async with Deliveries(sink) as deliveries:

        async def one(index: int, _worker: int) -> float:
            tok = token(label, index)
            started = time.monotonic()
            latency = await raw_send(sink, tok)
            sent.add(tok)
            arrived = await deliveries.arrival(tok, timeout=ctx.sizes.drain_cap)
            secondary.append(arrived - started)
            return latency

        secondary: list[float] = []
        outcome = await closed_loop(
            one, count=count, concurrency=concurrency, time_cap=ctx.sizes.time_cap
        )
        outcome.secondary = secondary
        await settle(sink, expected=len(sent), timeout=ctx.sizes.drain_cap)
    return outcome, deliveries, sent


def run_breakdown(
    hub: HubProcess, deliveries: Deliveries, accepted: dict[str, tuple[str, float]]
) -> dict[str, dict[str, float | None]] | None:
    """Per segment of trigger-to-delivery (bench.breakdown), for a hub on its own SQLite."""
    database = hub.data_dir / "integrationhub.db"
    if not database.exists():
        return None
    runs = {
        run_id: (sent, deliveries.arrivals[tok])
        for tok, (run_id, sent) in accepted.items()
        if tok in deliveries.arrivals
    }
    return breakdown(database, runs)


def _auth(hub: HubProcess) -> dict[str, str]:
    return {"authorization": f"Bearer {hub.key}"}


def check_deliveries(
    row: Row, deliveries: Deliveries, expected: Collection[str], stats: dict[str, int] | None = None
) -> Row:
    """Exactly the expected tokens, each once: recorded in the row (``delivered``)."""
    got = set(deliveries.arrivals)
    missing = len(set(expected) - got)
    unexpected = len(got - set(expected))
    duplicates = deliveries.duplicates
    ok = not (missing or unexpected or duplicates)
    row.details["delivered"] = {
        "expected": len(expected),
        "received": len(got),
        "missing": missing,
        "unexpected": unexpected,
        "duplicates": duplicates,
        **({"sink": stats} if stats else {}),
    }
    row.delivered = f"{len(got)}/{len(expected)}" + ("" if ok else " FAIL")
    if not ok:
        row.note = (
            row.note + " " if row.note else ""
        ) + f"delivery check failed: missing {missing}, unexpected {unexpected}, dup {duplicates}"
    return row


def outcome_row(
    scenario: str, case: str, outcome: Outcome, *, unit: str = "runs/s", note: str = ""
) -> Row:
    row = Row(
        scenario,
        case,
        value=round(outcome.rate, 1),
        unit=unit,
        n=outcome.done,
        errors=outcome.errors,
        note=note,
    ).latencies(outcome.latencies)
    row.details.update(
        requested=outcome.requested,
        concurrency=outcome.concurrency,
        elapsed_s=round(outcome.elapsed, 2),
        capped=outcome.capped,
    )
    if outcome.error_samples:
        row.details["error_samples"] = outcome.error_samples
    if outcome.capped:
        row.note = (row.note + "; " if row.note else "") + (
            f"time cap reached after {outcome.done + outcome.errors} of {outcome.requested}"
        )
    return row


async def warm_up(ctx: Context, hub: HubProcess, sink: Sink, count: int = 20) -> None:
    """A few runs first: producers, the credential cache and connection pools get created."""
    await hub_e2e(ctx, [hub], sink, label="warm", count=count, concurrency=4)


@dataclass
class Watch:
    """Filled in when the ``monitored`` block ends: per process CPU and peak memory."""

    report: dict[str, dict[str, float]] = field(default_factory=dict)


@contextlib.asynccontextmanager
async def monitored(
    pids: dict[str, int], commands: dict[str, str] | None = None
) -> AsyncIterator[Watch]:
    monitor = Monitor(pids, commands or {}).start()
    watch = Watch()
    try:
        yield watch
    finally:
        watch.report = await monitor.stop()


@contextlib.asynccontextmanager
async def profiled(ctx: Context, pid: int, name: str) -> AsyncIterator[Path | None]:
    """py-spy samples the process while the block runs: the thread holding the GIL, i.e. what
    the interpreter spends its time on (``--gil``; an event-loop thread waiting in epoll is not
    counted), as collapsed stacks."""
    if not ctx.profile:
        yield None
        return
    if not (BIN / "py-spy").exists():
        ctx.say("no profile: py-spy is missing (pip install -r bench/requirements.txt)")
        yield None
        return
    path = ctx.results_dir / f"profile-{name}.txt"
    command = [str(BIN / "py-spy"), "record", "--pid", str(pid), "--rate", "100",
               "--format", "raw", "--gil", "-o", str(path)]  # fmt: skip
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    await asyncio.sleep(1.0)
    try:
        yield path
    finally:
        process.send_signal(signal.SIGINT)
        await asyncio.wait_for(process.wait(), 60)
        ctx.say(f"profile written: {path}")


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"
