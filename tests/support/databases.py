"""A fresh database for each test: a SQLite file, or a PostgreSQL database created on the
server this machine runs (127.0.0.1:5432, trust auth) and dropped afterwards."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import pytest

POSTGRES = os.environ.get(
    "INTEGRATIONHUB_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
)

# For tests whose subject is not the store: the ``hub`` fixture on SQLite alone, not on both.
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@asynccontextmanager
async def fresh_database(kind: str, directory: Path) -> AsyncIterator[str]:
    if kind == "sqlite":
        yield f"sqlite+aiosqlite:///{directory / 'hub.db'}"
        return
    name = f"ih_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(POSTGRES)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base = POSTGRES.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    try:
        yield f"{base}/{name}"
    finally:
        admin = await asyncpg.connect(POSTGRES)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()
