"""The store's engine: opened (migrated, or checked to be current), checked and closed; pool
options per database, and SQLite tuned on every connection."""

from __future__ import annotations

import sqlite3
import time
from typing import Any, Self

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from integrationhub.core import migrations

__all__ = ["StoreConnection"]


class StoreConnection:
    """The engine the store's parts share."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    @classmethod
    async def open(cls, url: str, *, migrate: bool = True) -> Self:
        engine = create_async_engine(url, **_engine_options(url))
        if url.startswith("sqlite"):
            _tune_sqlite(engine)
        try:
            if migrate:
                await migrations.upgrade(engine)
            else:
                await migrations.require_current(engine)
        except BaseException:
            await engine.dispose()
            raise
        return cls(engine)

    async def close(self) -> None:
        await self.engine.dispose()

    async def check(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))


def _engine_options(url: str) -> dict[str, Any]:
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": 30}}
    return {"pool_size": 10, "max_overflow": 20, "pool_pre_ping": True}


def _tune_sqlite(engine: AsyncEngine) -> None:
    # WAL lets readers proceed during a write; busy_timeout makes concurrent writers (other
    # workers, another hub process on the same file) wait instead of failing.
    @sa.event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout=30000")
        _switch_to_wal(cursor)
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()


def _switch_to_wal(cursor: Any) -> None:
    # Switching a fresh file to WAL needs it to itself, and SQLite answers "locked" at once,
    # without its busy handler, while another process opening the same file holds it: several
    # replicas starting together on a new store. This runs on aiosqlite's thread.
    for _ in range(200):
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc):
                raise
            time.sleep(0.05)
    cursor.execute("PRAGMA journal_mode=WAL")  # the last try raises what it meets
