"""The store's engine: opened (migrated, or checked to be current), checked and closed; pool
options per database, SQLite tuned on every connection; and ``transaction``, which runs a
plain function of a connection as one transaction, the way the database wants it.

The store's methods are written as synchronous transactions (``@transaction``). On PostgreSQL
they run through the async driver (``AsyncConnection.run_sync``). On SQLite they run on one
thread of the store's own with the synchronous driver: a whole transaction is one hand-off to
that thread, where the async driver hands every statement, fetch and commit over and back,
which cost four times the CPU of the transaction itself; and one writer per process never
waits on another for SQLite's write lock.
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Concatenate, ParamSpec, Self, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from integrationhub.core import migrations

__all__ = ["StoreConnection", "transaction"]

P = ParamSpec("P")
T = TypeVar("T")
S = TypeVar("S", bound="StoreConnection")


class StoreConnection:
    """The engine the store's parts share."""

    def __init__(self, engine: AsyncEngine, sqlite: sa.Engine | None = None) -> None:
        self.engine = engine
        self._sqlite = sqlite
        self._sqlite_thread = (
            ThreadPoolExecutor(1, thread_name_prefix="store") if sqlite is not None else None
        )

    @classmethod
    async def open(cls, url: str, *, migrate: bool = True) -> Self:
        engine = create_async_engine(url, **_engine_options(url))
        sqlite = None
        if url.startswith("sqlite"):
            _tune_sqlite(engine.sync_engine)
            sqlite = sa.create_engine(
                engine.url.set(drivername="sqlite"), **_engine_options(url), pool_size=1
            )
            _tune_sqlite(sqlite)
        try:
            if migrate:
                await migrations.upgrade(engine)
            else:
                await migrations.require_current(engine)
        except BaseException:
            await engine.dispose()
            if sqlite is not None:
                sqlite.dispose()
            raise
        return cls(engine, sqlite)

    async def transaction(self, work: Callable[[sa.Connection], T]) -> T:
        """Run ``work`` in one transaction: committed when it returns, rolled back when it
        raises."""
        if self._sqlite is None:
            async with self.engine.begin() as conn:
                return await conn.run_sync(work)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._sqlite_thread, self._sqlite_transaction, work)

    def _sqlite_transaction(self, work: Callable[[sa.Connection], T]) -> T:
        assert self._sqlite is not None
        with self._sqlite.begin() as conn:
            return work(conn)

    async def close(self) -> None:
        if self._sqlite_thread is not None:  # after the transaction under way, if any
            await asyncio.to_thread(self._sqlite_thread.shutdown)
        if self._sqlite is not None:
            self._sqlite.dispose()
        await self.engine.dispose()

    async def check(self) -> None:
        await self.transaction(lambda conn: conn.execute(sa.text("SELECT 1")))


def transaction(
    method: Callable[Concatenate[S, sa.Connection, P], T],
) -> Callable[Concatenate[S, P], Coroutine[Any, Any, T]]:
    """A store method written as a synchronous transaction over ``conn``, awaited without it."""

    @functools.wraps(method)
    async def run(self: S, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await self.transaction(lambda conn: method(self, conn, *args, **kwargs))

    return run


def _engine_options(url: str) -> dict[str, Any]:
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": 30}}
    return {"pool_size": 10, "max_overflow": 20, "pool_pre_ping": True}


def _tune_sqlite(engine: sa.Engine) -> None:
    # WAL lets readers proceed during a write; busy_timeout makes concurrent writers (another
    # hub process on the same file) wait instead of failing.
    @sa.event.listens_for(engine, "connect")
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
    # replicas starting together on a new store. This runs on the connection's own thread.
    for _ in range(200):
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc):
                raise
            time.sleep(0.05)
    cursor.execute("PRAGMA journal_mode=WAL")  # the last try raises what it meets
