"""The run store on both databases: migrations, claims and idempotency under races."""

from __future__ import annotations

import asyncio

import pytest

from integrationhub.core.catalog import BUILTIN_FLOWS, load_flow_file
from integrationhub.core.store import Store
from integrationhub.errors import ConfigurationError
from tests.support.hub import SEED

pytestmark = pytest.mark.integration

FLOW = load_flow_file(BUILTIN_FLOWS / "send-summary-email.yaml")


async def test_hub_refuses_an_unmigrated_schema_when_told_to_migrate_out_of_band(database_url):
    with pytest.raises(ConfigurationError, match="INTEGRATIONHUB_AUTO_MIGRATE=true"):
        await Store.open(database_url, migrate=False)
    store = await Store.open(database_url)
    await store.close()
    store = await Store.open(database_url, migrate=False)
    await store.check()
    await store.close()


async def test_one_idempotency_key_from_two_replicas_at_once_makes_one_run(database_url):
    first, second = await Store.open(database_url), await Store.open(database_url)
    try:
        results = await asyncio.gather(
            *(
                store.create_run(flow=FLOW, parameters=SEED["parameters"], idempotency_key="same")
                for store in [first, second] * 10
            )
        )
    finally:
        await first.close()
        await second.close()
    assert len({run.run_id for run, _ in results}) == 1
    assert sum(created for _, created in results) == 1


async def test_a_run_is_claimed_by_one_worker_only_until_its_lease_expires(database_url):
    store = await Store.open(database_url)
    try:
        run, _ = await store.create_run(
            flow=FLOW, parameters=SEED["parameters"], idempotency_key=None
        )
        claims = await asyncio.gather(
            *(store.claim(run.run_id, owner=f"worker-{n}", lease=0.3) for n in range(10))
        )
        winners = [c for c in claims if c is not None]
        assert len(winners) == 1
        assert await store.claim(run.run_id, owner="late", lease=5) is None
        await asyncio.sleep(0.4)
        taken_over = await store.claim(run.run_id, owner="late", lease=5)
        assert taken_over is not None and taken_over.deliveries == 2
        assert await store.renew(run.run_id, owner="worker-0", lease=5) is False
    finally:
        await store.close()
