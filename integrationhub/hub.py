"""The running hub: every part, wired once, started and stopped in order.

With nothing configured, the hub starts the real engines itself (OpenBao, pulsar-lite, SQLite in
the data dir); with ``VAULT_ADDR``, ``INTEGRATIONHUB_PULSAR_URL`` and
``INTEGRATIONHUB_DATABASE_URL`` the same code points at existing ones.
"""

from __future__ import annotations

import functools
import os
import secrets
import socket
import uuid
from contextlib import AsyncExitStack
from dataclasses import dataclass

import httpx
import structlog

from integrationhub.connectors.registry import Registry
from integrationhub.core import logs
from integrationhub.core.bus import Bus
from integrationhub.core.catalog import Catalog
from integrationhub.core.credentials import CredentialStore
from integrationhub.core.engine import Engine
from integrationhub.core.events import RunEvents
from integrationhub.core.http import new_client
from integrationhub.core.inbound import Inbound, plan_sources
from integrationhub.core.periodic import Periodic
from integrationhub.core.queue import RunQueue
from integrationhub.core.ratelimit import RateLimiter
from integrationhub.core.retention import delete_expired_runs
from integrationhub.core.schedules import Scheduler
from integrationhub.core.store import Store
from integrationhub.core.topic_triggers import TopicTriggers
from integrationhub.core.triggers import Triggers
from integrationhub.core.vault_client import VaultCredentialStore
from integrationhub.embedded.mail_sink import MailSink
from integrationhub.embedded.openbao import EmbeddedOpenBao
from integrationhub.embedded.pulsar import EmbeddedPulsar
from integrationhub.errors import CredentialNotFound
from integrationhub.settings import Settings

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
    _stack: AsyncExitStack

    @classmethod
    async def start(cls, settings: Settings) -> Hub:
        logs.configure(settings.log_level)
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        async with AsyncExitStack() as stack:
            registry = Registry.from_entry_points()
            sources = plan_sources(settings.sources, registry=registry, pulsar=settings.pulsar)
            store = await Store.open(settings.resolved_database_url, migrate=settings.auto_migrate)
            stack.push_async_callback(store.close)

            vault_addr, vault_token = settings.vault.addr, None
            if settings.vault.embedded:
                openbao = EmbeddedOpenBao(settings.data_dir)
                vault_addr, vault_token = await openbao.start()
                stack.push_async_callback(openbao.stop)
            assert vault_addr is not None
            credentials = VaultCredentialStore(settings.vault, addr=vault_addr, token=vault_token)
            stack.push_async_callback(credentials.close)

            pulsar_url = settings.pulsar.url
            if settings.pulsar.embedded:
                broker = EmbeddedPulsar(settings.data_dir)
                pulsar_url = await broker.start()
                stack.push_async_callback(broker.stop)
            assert pulsar_url is not None
            bus = Bus(settings.pulsar, url=pulsar_url)
            await bus.start()
            stack.push_async_callback(bus.close)

            http = new_client(
                timeout=settings.http.timeout,
                max_response_bytes=settings.http.max_response_bytes,
                allow=settings.http.allow_networks,
            )
            stack.push_async_callback(http.aclose)
            rate_limits = RateLimiter.from_settings(settings.ratelimit)
            stack.push_async_callback(rate_limits.close)

            events = RunEvents(
                publish=bus.publish,
                topic=settings.pulsar.topic(settings.pulsar.run_events_topic),
            )
            stack.push_async_callback(events.drain)
            catalog = Catalog(store=store, registry=registry, flows_dir=settings.flows_dir)
            queue = RunQueue(bus=bus, store=store, settings=settings)
            engine = Engine(
                store=store,
                credentials=credentials,
                registry=registry,
                http=http,
                bus=bus,
                events=events,
                owner=f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}",
                lease=settings.run_lease_seconds,
                rate_limits=rate_limits,
            )
            stack.push_async_callback(engine.connections.close)  # once no run is executing
            await queue.start(engine)
            stack.push_async_callback(queue.stop)
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
                owner=engine.owner,
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
