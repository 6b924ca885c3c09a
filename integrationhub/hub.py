"""The running hub: every part, wired once, started and stopped in order.

With nothing configured, the hub starts the real engines itself (OpenBao, pulsar-lite, SQLite in
the data dir); with ``VAULT_ADDR``, ``INTEGRATIONHUB_PULSAR_URL`` and
``INTEGRATIONHUB_DATABASE_URL`` the same code points at existing ones. Runs execute in this
process, or, with ``INTEGRATIONHUB_WORKER_PROCESSES``, in worker processes it starts
(``workers.py``) while this one takes triggers.
"""

from __future__ import annotations

import functools
import os
import secrets
from contextlib import AsyncExitStack
from dataclasses import dataclass

import httpx
import structlog

from integrationhub.backbone import Backbone
from integrationhub.connectors.registry import Registry
from integrationhub.core import logs
from integrationhub.core.bus import Bus
from integrationhub.core.catalog import Catalog
from integrationhub.core.credentials import CredentialStore
from integrationhub.core.inbound import Inbound, plan_sources
from integrationhub.core.periodic import Periodic
from integrationhub.core.queue import RunQueue
from integrationhub.core.retention import delete_expired_runs
from integrationhub.core.schedules import Scheduler
from integrationhub.core.store import Store
from integrationhub.core.topic_triggers import TopicTriggers
from integrationhub.core.triggers import Triggers
from integrationhub.embedded.mail_sink import MailSink
from integrationhub.errors import CredentialNotFound
from integrationhub.settings import Settings
from integrationhub.workers import WorkerProcesses

__all__ = ["Hub"]

log = structlog.get_logger()


@dataclass(kw_only=True)
class Hub:
    settings: Settings
    api_keys: list[str]
    registry: Registry
    store: Store
    credentials: CredentialStore
    bus: Bus
    catalog: Catalog
    triggers: Triggers
    topic_triggers: TopicTriggers
    schedules: Scheduler
    inbound: Inbound
    http: httpx.AsyncClient
    workers: WorkerProcesses | None
    _stack: AsyncExitStack

    @classmethod
    async def start(cls, settings: Settings) -> Hub:
        logs.configure(settings.log_level)
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        async with AsyncExitStack() as stack:
            registry = Registry.from_entry_points()
            sources = plan_sources(settings.sources, registry=registry, pulsar=settings.pulsar)
            backbone = await Backbone.start(settings, registry, stack)
            store, credentials, bus = backbone.store, backbone.credentials, backbone.bus
            http = backbone.http
            catalog = Catalog(store=store, registry=registry, flows_dir=settings.flows_dir)
            queue = RunQueue(bus=bus, store=store, settings=settings)
            if settings.worker_processes:
                # Runs execute in worker processes of their own; this one takes triggers.
                workers = WorkerProcesses(settings, backbone.environment())
                await workers.start()
                stack.push_async_callback(workers.stop)
                await queue.start(None)
            else:
                workers = None
                await queue.start(backbone.engine)
            stack.push_async_callback(queue.stop)
            events = backbone.events
            triggers = Triggers(catalog=catalog, store=store, queue=queue, events=events)
            topic_triggers = TopicTriggers(
                bus=bus, triggers=triggers, catalog=catalog, settings=settings
            )
            await topic_triggers.start()
            stack.push_async_callback(topic_triggers.stop)
            schedules = Scheduler(
                catalog=catalog,
                store=store,
                triggers=triggers,
                window=settings.schedule_catch_up,
                reload_interval=settings.schedule_reload_interval,
            )
            await schedules.start()
            stack.push_async_callback(schedules.stop)

            # Inbound sources publish to the bus: started after it, stopped before it.
            inbound = Inbound(
                sources=sources,
                store=store,
                credentials=credentials,
                bus=bus,
                http=http,
                owner=backbone.engine.owner,
                settings=settings,
            )
            await inbound.start()
            stack.push_async_callback(inbound.stop)

            retention = Periodic(
                "runs.retention",
                settings.retention_interval,
                functools.partial(
                    delete_expired_runs, store, max_age_days=settings.run_retention_days
                ),
            )
            retention.start()
            stack.push_async_callback(retention.stop)

            if settings.mail_sink:
                await _start_mail_sink(settings, credentials, stack)

            hub = cls(
                settings=settings,
                api_keys=_api_keys(settings),
                registry=registry,
                store=store,
                credentials=credentials,
                bus=bus,
                catalog=catalog,
                triggers=triggers,
                topic_triggers=topic_triggers,
                schedules=schedules,
                inbound=inbound,
                http=http,
                workers=workers,
                _stack=stack.pop_all(),
            )
        log.info("hub.started", embedded=settings.embedded, data_dir=str(settings.data_dir))
        return hub

    async def stop(self) -> None:
        await self._stack.aclose()
        log.info("hub.stopped")


def _api_keys(settings: Settings) -> list[str]:
    """The configured keys, or one generated on first start and kept in the data dir."""
    if settings.api_keys:
        return [key.get_secret_value() for key in settings.api_keys]
    path = settings.data_dir / "api-key"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(secrets.token_urlsafe(32) + "\n")
        log.info("api_key.created", path=str(path.resolve()))
    else:
        log.info("api_key.loaded", path=str(path.resolve()))
    return [path.read_text().strip()]


async def _start_mail_sink(
    settings: Settings, credentials: CredentialStore, stack: AsyncExitStack
) -> None:
    """A local SMTP server that keeps each email as a file, and, in embedded mode, the
    ``smtp-credentials`` credential pointing at it, so the quick start delivers real mail."""
    sink = MailSink(directory=settings.data_dir / "mail", port=settings.mail_sink_port)
    await sink.start()
    stack.push_async_callback(sink.stop)
    if not settings.vault.embedded:
        return
    try:
        await credentials.metadata("smtp-credentials")
    except CredentialNotFound:
        await credentials.write(
            "smtp-credentials",
            type="smtp",
            data={
                "host": "127.0.0.1",
                "port": sink.port,
                "security": "none",
                "from_address": "integrationhub@localhost.localdomain",
            },
        )
        log.info(
            "credential.seeded", credential_id="smtp-credentials", mail_dir=str(sink.directory)
        )
