"""Deletes finished runs older than the retention age, in small batches, in the background.

Counters in /metrics are untouched: runs deleted here still count in
``integrationhub_runs_total``, and the deletions themselves are counted too.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import structlog
from prometheus_client import Counter

from integrationhub.core.schema import utcnow
from integrationhub.core.store import Store

__all__ = ["delete_expired_runs"]

log = structlog.get_logger()

DELETED = Counter("integrationhub_runs_deleted_total", "Finished runs deleted by retention")
BATCH = 500


async def delete_expired_runs(store: Store, *, max_age_days: float) -> int:
    before = utcnow() - timedelta(days=max_age_days)
    deleted = 0
    while batch := await store.delete_finished(before=before, batch=BATCH):
        deleted += batch
        DELETED.inc(batch)
        await asyncio.sleep(0)  # let requests in between batches
    if deleted:
        log.info("runs.expired", count=deleted, before=before.isoformat())
    return deleted
