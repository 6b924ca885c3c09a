"""The run store's tables (SQLAlchemy Core), one schema for SQLite and PostgreSQL.

Changes go through Alembic migrations in ``core/migrations``; this module is their target.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
)
from sqlalchemy.dialects.postgresql import JSONB

__all__ = [
    "flows",
    "metadata",
    "run_history",
    "run_steps",
    "runs",
    "schedule_cursors",
    "source_cursors",
    "utcnow",
]


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on the way in and out; SQLite would otherwise drop the zone."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


Json = JSON().with_variant(JSONB(), "postgresql")

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

flows = Table(
    "flows",
    metadata,
    Column("id", String(128), primary_key=True),
    Column("definition", Json, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("flow_id", String(128), nullable=False),
    Column("status", String(16), nullable=False),
    Column("parameters", Json, nullable=False),
    # The flow as it was when triggered: a run does what was asked even if the flow changes.
    Column("flow", Json, nullable=False),
    Column("idempotency_key", String(255), nullable=True, unique=True),
    Column("error", Text, nullable=True),
    Column("deliveries", Integer, nullable=False, default=0),
    Column("cancel_requested", Boolean, nullable=False, default=False),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_expires_at", UTCDateTime, nullable=True),
    Column("enqueued_at", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("started_at", UTCDateTime, nullable=True),
    Column("finished_at", UTCDateTime, nullable=True),
    Index(None, "flow_id", "created_at"),
    Index(None, "status", "created_at"),
    Index(None, "created_at"),
)

run_steps = Table(
    "run_steps",
    metadata,
    Column("run_id", String(36), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("step_id", String(64), primary_key=True),
    Column("position", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("output", Json, nullable=True),
    Column("error", Text, nullable=True),
    Column("started_at", UTCDateTime, nullable=True),
    Column("finished_at", UTCDateTime, nullable=True),
)

# Every state change of a run, with its time and cause, for people deciding what to do next.
run_history = Table(
    "run_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(36), ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("event", String(32), nullable=False),
    Column("step_id", String(64), nullable=True),
    Column("detail", Text, nullable=True),
    Index(None, "run_id", "id"),
)

# Where each inbound source continues from, and which hub process polls it now (the lease).
source_cursors = Table(
    "source_cursors",
    metadata,
    Column("source_id", String(128), primary_key=True),
    Column("cursor", Json, nullable=True),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_expires_at", UTCDateTime, nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
)

# How far each flow's schedule has been handled: its last slot fired or skipped (or the moment
# the schedule was first seen). Slots after it found when a replica starts are the ones missed
# while no replica ran. The run for a slot is made once by its idempotency key, not by this row.
schedule_cursors = Table(
    "schedule_cursors",
    metadata,
    Column("flow_id", String(128), primary_key=True),
    Column("handled_until", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)
