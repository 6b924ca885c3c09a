"""The run store on both databases: migrations, claims and idempotency under races."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from integrationhub.core.catalog import BUILTIN_FLOWS, load_flow_file
from integrationhub.core.schema import metadata, utcnow
from integrationhub.core.store import StepOutcome, Store
from integrationhub.errors import ConfigurationError
from integrationhub.hub import Hub
from integrationhub.models.run import StepStatus
from integrationhub.settings import Settings
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


async def test_the_setting_auto_migrate_false_keeps_the_hub_from_starting_on_a_fresh_database(
    database_url, tmp_path, monkeypatch
):
    monkeypatch.setenv("INTEGRATIONHUB_AUTO_MIGRATE", "false")
    settings = Settings(data_dir=tmp_path, database_url=database_url)
    with pytest.raises(ConfigurationError, match="schema is at revision none"):
        await Hub.start(settings)


async def test_the_migrations_make_exactly_the_schema_the_code_uses(database_url):
    store = await Store.open(database_url)
    try:
        async with store.engine.connect() as conn:
            differences = await conn.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), metadata)
            )
    finally:
        await store.close()
    assert differences == []


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


async def test_a_worker_whose_run_was_taken_over_records_no_step_outcome(database_url):
    store = await Store.open(database_url)
    try:
        run, _ = await store.create_run(
            flow=FLOW, parameters=SEED["parameters"], idempotency_key=None
        )
        assert await store.claim(run.run_id, owner="first", lease=0.2)
        await asyncio.sleep(0.3)
        assert await store.claim(run.run_id, owner="second", lease=5)
        assert await store.start_step(run.run_id, "send", attempt=1, owner="second", lease=5)

        late = StepOutcome("send", StepStatus.failed, error="the first worker's late answer")
        assert await store.finish_step(run.run_id, late, owner="first", lease=5) is False

        (step,) = (await store.get_run(run.run_id)).steps
        assert step.status == StepStatus.sending and step.error is None
        done = StepOutcome("send", StepStatus.succeeded, {"message_id": "<x>"})
        assert await store.finish_step(run.run_id, done, owner="second", lease=5) is True
        (step,) = (await store.get_run(run.run_id)).steps
        assert step.status == StepStatus.succeeded and step.output == {"message_id": "<x>"}
    finally:
        await store.close()


async def test_the_sweeper_publishes_a_run_again_until_its_publish_is_noted_for_its_delivery(
    database_url,
):
    store = await Store.open(database_url)
    try:
        run, _ = await store.create_run(
            flow=FLOW, parameters=SEED["parameters"], idempotency_key=None
        )
        unpublished = {"unpublished_for": 0, "requeue_after": 900}
        assert (run.run_id, 0) in await store.runs_to_publish(**unpublished)

        an_hour_ago = utcnow() - timedelta(hours=1)
        await store.mark_enqueued([run.run_id], deliveries=0, at=an_hour_ago)
        assert run.run_id not in dict(
            await store.runs_to_publish(unpublished_for=0, requeue_after=7200)
        )

        # Its message went stale: published again, and noted again, so not on every sweep.
        assert (run.run_id, 0) in await store.runs_to_publish(**unpublished)
        await store.mark_enqueued([run.run_id], deliveries=0, at=utcnow())
        assert run.run_id not in dict(await store.runs_to_publish(**unpublished))

        # Taken and given back since it was published: a late note for the old delivery must
        # not hide it from the sweeper.
        assert await store.claim(run.run_id, owner="worker", lease=30) is not None
        await store.release(run.run_id, owner="worker", reason="credential store down")
        await store.mark_enqueued([run.run_id], deliveries=0, at=utcnow())
        assert (run.run_id, 1) in await store.runs_to_publish(**unpublished)
    finally:
        await store.close()
