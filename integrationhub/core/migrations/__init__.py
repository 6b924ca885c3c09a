"""Alembic migrations for the run store, applied at start unless told otherwise."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

from integrationhub.errors import ConfigurationError

__all__ = ["alembic_config", "require_current", "upgrade"]

HERE = Path(__file__).parent
# Any constant will do: replicas starting together take turns instead of racing on DDL.
_PG_LOCK_ID = 0x1A7E6_4A7B


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.attributes["connection"] = connection
    return config


def _upgrade(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _PG_LOCK_ID})
    elif connection.dialect.name == "sqlite":
        # The same on SQLite: the write lock before alembic reads the version, so a second
        # hub starting on the same file waits (busy_timeout) and finds the schema current,
        # instead of failing with "table ... already exists".
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    command.upgrade(alembic_config(connection), "head")


async def upgrade(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(_upgrade)


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def require_current(engine: AsyncEngine) -> None:
    """For deployments that migrate out of band: refuse to start on an outdated schema."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    async with engine.connect() as conn:
        current = await conn.run_sync(_current)
    if current != head:
        raise ConfigurationError(
            f"the database schema is at revision {current or 'none'}, this hub needs {head}: "
            "start one hub with INTEGRATIONHUB_AUTO_MIGRATE=true to apply the migrations"
        )
