"""The store's engine: opened (migrated, or checked to be current), checked and closed; pool
options per database, and SQLite tuned on every connection."""

from __future__ import annotations

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
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()
