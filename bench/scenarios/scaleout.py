"""6. Scale-out: end-to-end throughput with one and with two hub processes sharing the store,
the broker and Vault.

The shared engines are started apart from any hub, as at scale: a pulsar-lite broker and an
OpenBao server (the hub's own supervisors, run by the bench), and a database of its own on the
local PostgreSQL (or one SQLite file with ``--scaleout-store sqlite``). Each hub is pointed at
them through the README's variables. The closed loop (concurrency 32, trigger to email at the
sink) spreads its callers over the hubs; the runs are taken from the shared run queue by
whichever hub's workers are free.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

from bench.hub import HubProcess
from bench.procs import start_sink
from bench.report import Row
from bench.scenarios.common import (
    Context,
    check_deliveries,
    hub_e2e,
    monitored,
    outcome_row,
    warm_up,
)
from integrationhub.embedded.openbao import EmbeddedOpenBao
from integrationhub.embedded.pulsar import EmbeddedPulsar

CONCURRENCY = 32
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


async def run(ctx: Context) -> None:
    workdir = ctx.workdir / "scaleout"
    workdir.mkdir(parents=True, exist_ok=True)
    broker = EmbeddedPulsar(workdir / "shared")
    vault = EmbeddedOpenBao(workdir / "shared")
    sink = await start_sink("smtp", workdir)
    hubs: list[HubProcess] = []
    try:
        pulsar_url = await broker.start()
        vault_addr, vault_token = await vault.start()
        async with _database(ctx, workdir) as (database_url, store_name):
            env = {
                "INTEGRATIONHUB_DATABASE_URL": database_url,
                "INTEGRATIONHUB_PULSAR_URL": pulsar_url,
                "VAULT_ADDR": vault_addr,
                "VAULT_TOKEN": vault_token,
            }
            key = secrets.token_urlsafe(24)
            results: dict[int, Row] = {}
            for size in (1, 2):
                while len(hubs) < size:
                    hub = await HubProcess.start(
                        workdir, name=f"hub{len(hubs) + 1}", env=env, key=key
                    )
                    hubs.append(hub)
                    ctx.say(f"scaleout: {hub.name} healthy in {hub.startup_seconds:.1f}s")
                await hubs[0].put_smtp_credential(sink.port)
                for hub in hubs:
                    await warm_up(ctx, hub, sink)
                finished_before = [hub.count_events("run.finished") for hub in hubs]
                pids = {hub.name: hub.pid for hub in hubs}
                pids |= {"sink": sink.pid, "driver": os.getpid()}
                pids |= {"pulsar-lite": broker_pid(broker), "openbao": vault_pid(vault)}
                # PostgreSQL's server and backends are part of the system measured.
                commands = {"postgresql": "postgres"} if store_name == "PostgreSQL" else {}
                async with monitored(pids, commands) as watch:
                    outcome, deliveries, accepted = await hub_e2e(
                        ctx, hubs, sink, label=f"s{size}", count=ctx.sizes.scaleout,
                        concurrency=CONCURRENCY,
                    )  # fmt: skip
                split = [
                    hub.count_events("run.finished") - before
                    for hub, before in zip(hubs, finished_before, strict=True)
                ]
                row = outcome_row(
                    "scaleout",
                    f"{size} hub{'s' if size > 1 else ''} c={CONCURRENCY} ({store_name})",
                    outcome,
                    unit="deliveries/s",
                    note=f"runs executed per hub: {split}",
                )
                row.details.update(processes=watch.report, runs_per_hub=split)
                ctx.rows.append(check_deliveries(row, deliveries, accepted))
                results[size] = row
                ctx.say(f"scaleout {size}: {row.value}/s, split {split}")
            ratio = (results[2].value or 0) / (results[1].value or 1)
            ctx.rows.append(Row("scaleout", "2 hubs / 1 hub", value=round(ratio, 3), unit="ratio"))
    finally:
        for hub in hubs:
            await hub.stop()
        await sink.stop()
        await vault.stop()
        await broker.stop()


def broker_pid(broker: EmbeddedPulsar) -> int:
    return int(broker.pid_path.read_text())


def vault_pid(vault: EmbeddedOpenBao) -> int:
    return int(vault.pid_path.read_text())


@contextlib.asynccontextmanager
async def _database(ctx: Context, workdir: Path) -> AsyncIterator[tuple[str, str]]:
    """A database of its own for this run: created on PostgreSQL and dropped after."""
    if ctx.scaleout_store == "sqlite":
        yield f"sqlite+aiosqlite:///{workdir / 'shared' / 'integrationhub.db'}", "SQLite file"
        return
    import asyncpg

    name = f"bench_integrationhub_{secrets.token_hex(4)}"
    try:
        admin = await asyncpg.connect(PG_ADMIN, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        ctx.say(f"scaleout: PostgreSQL at {PG_ADMIN} unreachable ({exc}); sharing a SQLite file")
        yield f"sqlite+aiosqlite:///{workdir / 'shared' / 'integrationhub.db'}", "SQLite file"
        return
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}", "PostgreSQL"
    finally:
        admin = await asyncpg.connect(PG_ADMIN)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()
