"""What every hub process needs to execute runs: the run store, the credential store, the bus,
outbound HTTP, rate limits, run events and the engine; and the engines behind them.

With nothing configured the first process starts the engines itself (OpenBao, pulsar-lite,
SQLite in the data dir); ``environment()`` tells a worker process it starts where they are, so
that the worker uses them instead of starting its own.
"""

from __future__ import annotations

import os
import socket
import uuid
from contextlib import AsyncExitStack
from dataclasses import dataclass

import httpx

from integrationhub.connectors.registry import Registry
from integrationhub.core.bus import Bus
from integrationhub.core.credentials import CredentialStore
from integrationhub.core.engine import Engine
from integrationhub.core.events import RunEvents
from integrationhub.core.http import new_client
from integrationhub.core.ratelimit import RateLimiter
from integrationhub.core.store import Store
from integrationhub.core.vault_client import VaultCredentialStore
from integrationhub.embedded.openbao import EmbeddedOpenBao
from integrationhub.embedded.pulsar import EmbeddedPulsar
from integrationhub.settings import Settings

__all__ = ["Backbone"]


@dataclass(kw_only=True)
class Backbone:
    store: Store
    credentials: CredentialStore
    bus: Bus
    http: httpx.AsyncClient
    events: RunEvents
    engine: Engine
    database_url: str
    pulsar_url: str
    vault_addr: str
    vault_token: str | None  # the embedded OpenBao's; None when Vault is configured

    @classmethod
    async def start(cls, settings: Settings, registry: Registry, stack: AsyncExitStack) -> Backbone:
        """Everything started is stopped by ``stack``, in reverse order."""
        database_url = settings.resolved_database_url
        store = await Store.open(database_url, migrate=settings.auto_migrate)
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
            publish=bus.publish, topic=settings.pulsar.topic(settings.pulsar.run_events_topic)
        )
        stack.push_async_callback(events.drain)
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
        return cls(
            store=store,
            credentials=credentials,
            bus=bus,
            http=http,
            events=events,
            engine=engine,
            database_url=database_url,
            pulsar_url=pulsar_url,
            vault_addr=vault_addr,
            vault_token=vault_token,
        )

    def environment(self) -> dict[str, str]:
        """Variables that point another process at these engines: the ones this process
        started itself, which that process must not start again."""
        env = {
            "INTEGRATIONHUB_DATABASE_URL": self.database_url,
            "INTEGRATIONHUB_PULSAR_URL": self.pulsar_url,
            "VAULT_ADDR": self.vault_addr,
        }
        if self.vault_token is not None:
            env["VAULT_TOKEN"] = self.vault_token
        return env
