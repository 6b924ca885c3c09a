"""Faults in the engines around the hub: nothing accepted is lost, nothing runs twice."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from integrationhub.embedded.openbao import EmbeddedOpenBao
from tests.integration.conftest_pulsar import PulsarBroker
from tests.support.hub import SEED, hub_settings, running_hub

pytestmark = pytest.mark.integration


async def test_vault_down_triggers_are_kept_and_runs_wait_until_it_is_back(
    tmp_path: Path, pulsar_url: str, smtp
):
    bao = EmbeddedOpenBao(tmp_path / "bao")
    addr, token = await bao.start()
    try:
        settings = hub_settings(
            tmp_path / "hub", vault_addr=addr, vault_token=token, pulsar_url=pulsar_url
        )
        settings.vault.cache_ttl = 0
        async with running_hub(settings) as hub:
            await hub.put_smtp_credential(smtp.port)
            await bao.stop()

            response = await hub.client.post("/api/v1/trigger", json=SEED)

            assert response.status_code == 202
            run_id = response.json()["run_id"]
            health = (await hub.client.get("/health")).json()
            assert health["status"] == "degraded"
            assert health["components"]["credentials"]["status"] == "down"
            assert health["components"]["database"]["status"] == "up"
            # Between deliveries the run is claimed (running) and then deferred back to
            # queued; it must never fail while the credential store is away.
            async with asyncio.timeout(10):
                while True:
                    run = (await hub.client.get(f"/api/v1/runs/{run_id}")).json()
                    assert run["status"] in ("queued", "running"), run
                    if run["deliveries"] >= 2 and run["status"] == "queued":
                        break
                    await asyncio.sleep(0.05)
            assert smtp.messages == []

            await bao.start()

            run = await hub.wait_for_run(run_id, timeout=30)
            assert run["status"] == "succeeded", run
            assert len(smtp.messages) == 1
            assert (await hub.client.get("/health")).json()["status"] == "ok"
    finally:
        await bao.stop()


async def test_broker_down_at_start_the_hub_starts_keeps_triggers_and_runs_them_once_it_is_back(
    tmp_path: Path, openbao: tuple[str, str], pulsar_broker: PulsarBroker, pulsar_url: str, smtp
):
    addr, token = openbao
    settings = hub_settings(tmp_path, vault_addr=addr, vault_token=token, pulsar_url=pulsar_url)
    await pulsar_broker.stop()
    try:
        async with running_hub(settings) as hub:
            health = (await hub.client.get("/health")).json()
            assert health["status"] == "degraded"
            assert health["components"]["broker"]["status"] == "down"
            assert health["components"]["database"]["status"] == "up"
            await hub.put_smtp_credential(smtp.port)

            response = await hub.client.post("/api/v1/trigger", json=SEED)

            assert response.status_code == 202
            run_id = response.json()["run_id"]
            run = (await hub.client.get(f"/api/v1/runs/{run_id}")).json()
            assert run["status"] == "queued"
            assert run["parameters"] == SEED["parameters"]

            await pulsar_broker.start()

            run = await hub.wait_for_run(run_id, timeout=60)
            assert run["status"] == "succeeded", run
            assert run["deliveries"] == 1
            assert len(smtp.messages) == 1
            async with asyncio.timeout(15):
                while (await hub.client.get("/health")).json()["status"] != "ok":
                    await asyncio.sleep(0.1)
    finally:
        if not pulsar_broker.running:
            await pulsar_broker.start()
