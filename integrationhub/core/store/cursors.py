"""Cursors: how far each inbound source was read (under a lease, so one hub process polls
it at a time), and how far each schedule was handled."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from integrationhub.core.schema import schedule_cursors, source_cursors, utcnow
from integrationhub.core.store.connection import StoreConnection, transaction

__all__ = ["CursorsMixin"]


class CursorsMixin(StoreConnection):
    # Source cursors ---------------------------------------------------------------------------
    # One row per inbound source: its cursor, and a lease so one hub process polls it at a time.

    @transaction
    def claim_cursor(
        self, conn: sa.Connection, source_id: str, *, owner: str, lease: float
    ) -> bool:
        """Take the source's lease, or renew it: True when ``owner`` holds it now. Taken only
        if free, expired or already ``owner``'s; the row is created on first claim."""
        now = utcnow()
        expires = now + timedelta(seconds=lease)
        takeable = sa.or_(
            source_cursors.c.lease_owner == owner,
            source_cursors.c.lease_expires_at.is_(None),
            source_cursors.c.lease_expires_at < now,
        )
        result = conn.execute(
            source_cursors.update()
            .where(source_cursors.c.source_id == source_id, takeable)
            .values(lease_owner=owner, lease_expires_at=expires)
        )
        if result.rowcount == 1:
            return True
        try:
            with conn.begin_nested():
                conn.execute(
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

    @transaction
    def get_cursor(self, conn: sa.Connection, source_id: str) -> dict[str, Any] | None:
        """The cursor last persisted for the source; None before its first poll."""
        cursor = conn.scalar(
            sa.select(source_cursors.c.cursor).where(source_cursors.c.source_id == source_id)
        )
        return cursor if isinstance(cursor, dict) else None

    @transaction
    def put_cursor(
        self,
        conn: sa.Connection,
        source_id: str,
        cursor: dict[str, Any],
        *,
        owner: str,
        lease: float,
    ) -> bool:
        """Persist the cursor and renew the lease, only while ``owner`` holds it."""
        now = utcnow()
        result = conn.execute(
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

    @transaction
    def release_cursor(self, conn: sa.Connection, source_id: str, *, owner: str) -> None:
        """Give the lease up (at shutdown), so another process may poll the source at once."""
        conn.execute(
            source_cursors.update()
            .where(
                source_cursors.c.source_id == source_id,
                source_cursors.c.lease_owner == owner,
            )
            .values(lease_owner=None, lease_expires_at=None)
        )

    # Schedule cursors -------------------------------------------------------------------------
    # One row per scheduled flow: the moment up to which its slots were fired or skipped.

    @transaction
    def start_schedule(self, conn: sa.Connection, flow_id: str, *, at: datetime) -> datetime:
        """The moment up to which the flow's schedule was handled; a schedule without a row yet
        starts at ``at`` (the first replica to insert it wins)."""
        # Insert first: a write from the start takes SQLite's write lock at once, where a
        # read upgraded to a write could fail when another replica wrote in between.
        try:
            with conn.begin_nested():
                conn.execute(
                    schedule_cursors.insert().values(
                        flow_id=flow_id, handled_until=at, updated_at=utcnow()
                    )
                )
        except IntegrityError:
            handled: datetime = conn.scalar(
                sa.select(schedule_cursors.c.handled_until).where(
                    schedule_cursors.c.flow_id == flow_id
                )
            )
            return handled
        return at

    @transaction
    def advance_schedule(self, conn: sa.Connection, flow_id: str, *, to: datetime) -> None:
        """Move the cursor forward to ``to``; never back, and never creating the row (a
        schedule removed meanwhile stays removed)."""
        conn.execute(
            schedule_cursors.update()
            .where(
                schedule_cursors.c.flow_id == flow_id,
                schedule_cursors.c.handled_until < to,
            )
            .values(handled_until=to, updated_at=utcnow())
        )

    @transaction
    def forget_schedule(self, conn: sa.Connection, flow_id: str) -> None:
        """Drop the cursor of a schedule that was removed: one added again starts afresh."""
        conn.execute(schedule_cursors.delete().where(schedule_cursors.c.flow_id == flow_id))
