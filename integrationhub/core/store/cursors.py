"""Cursors: how far each inbound source was read (under a lease, so one hub process polls
it at a time), and how far each schedule was handled."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from integrationhub.core.schema import schedule_cursors, source_cursors, utcnow
from integrationhub.core.store.connection import StoreConnection

__all__ = ["CursorsMixin"]


class CursorsMixin(StoreConnection):
    # Source cursors ---------------------------------------------------------------------------
    # One row per inbound source: its cursor, and a lease so one hub process polls it at a time.

    async def claim_cursor(self, source_id: str, *, owner: str, lease: float) -> bool:
        """Take the source's lease, or renew it: True when ``owner`` holds it now. Taken only
        if free, expired or already ``owner``'s; the row is created on first claim."""
        now = utcnow()
        expires = now + timedelta(seconds=lease)
        takeable = sa.or_(
            source_cursors.c.lease_owner == owner,
            source_cursors.c.lease_expires_at.is_(None),
            source_cursors.c.lease_expires_at < now,
        )
        async with self.engine.begin() as conn:
            result = await conn.execute(
                source_cursors.update()
                .where(source_cursors.c.source_id == source_id, takeable)
                .values(lease_owner=owner, lease_expires_at=expires)
            )
            if result.rowcount == 1:
                return True
            try:
                async with conn.begin_nested():
                    await conn.execute(
                        source_cursors.insert().values(
                            source_id=source_id,
                            cursor=None,
                            lease_owner=owner,
                            lease_expires_at=expires,
                            updated_at=now,
                        )
                    )
            except IntegrityError:  # the row exists and another process holds a live lease
                return False
        return True

    async def get_cursor(self, source_id: str) -> dict[str, Any] | None:
        """The cursor last persisted for the source; None before its first poll."""
        async with self.engine.connect() as conn:
            cursor = await conn.scalar(
                sa.select(source_cursors.c.cursor).where(source_cursors.c.source_id == source_id)
            )
        return cursor if isinstance(cursor, dict) else None

    async def put_cursor(
        self, source_id: str, cursor: dict[str, Any], *, owner: str, lease: float
    ) -> bool:
        """Persist the cursor and renew the lease, only while ``owner`` holds it."""
        now = utcnow()
        async with self.engine.begin() as conn:
            result = await conn.execute(
                source_cursors.update()
                .where(
                    source_cursors.c.source_id == source_id,
                    source_cursors.c.lease_owner == owner,
                )
                .values(
                    cursor=cursor,
                    updated_at=now,
                    lease_expires_at=now + timedelta(seconds=lease),
                )
            )
        return result.rowcount == 1

    async def release_cursor(self, source_id: str, *, owner: str) -> None:
        """Give the lease up (at shutdown), so another process may poll the source at once."""
        async with self.engine.begin() as conn:
            await conn.execute(
                source_cursors.update()
                .where(
                    source_cursors.c.source_id == source_id,
                    source_cursors.c.lease_owner == owner,
                )
                .values(lease_owner=None, lease_expires_at=None)
            )

    # Schedule cursors -------------------------------------------------------------------------
    # One row per scheduled flow: the moment up to which its slots were fired or skipped.

    async def start_schedule(self, flow_id: str, *, at: datetime) -> datetime:
        """The moment up to which the flow's schedule was handled; a schedule without a row yet
        starts at ``at`` (the first replica to insert it wins)."""
        async with self.engine.begin() as conn:
            # Insert first: a write from the start takes SQLite's write lock at once, where a
            # read upgraded to a write could fail when another replica wrote in between.
            try:
                async with conn.begin_nested():
                    await conn.execute(
                        schedule_cursors.insert().values(
                            flow_id=flow_id, handled_until=at, updated_at=utcnow()
                        )
                    )
            except IntegrityError:
                handled: datetime = await conn.scalar(
                    sa.select(schedule_cursors.c.handled_until).where(
                        schedule_cursors.c.flow_id == flow_id
                    )
                )
                return handled
        return at

    async def advance_schedule(self, flow_id: str, *, to: datetime) -> None:
        """Move the cursor forward to ``to``; never back, and never creating the row (a
        schedule removed meanwhile stays removed)."""
        async with self.engine.begin() as conn:
            await conn.execute(
                schedule_cursors.update()
                .where(
                    schedule_cursors.c.flow_id == flow_id,
                    schedule_cursors.c.handled_until < to,
                )
                .values(handled_until=to, updated_at=utcnow())
            )

    async def forget_schedule(self, flow_id: str) -> None:
        """Drop the cursor of a schedule that was removed: one added again starts afresh."""
        async with self.engine.begin() as conn:
            await conn.execute(
                schedule_cursors.delete().where(schedule_cursors.c.flow_id == flow_id)
            )
