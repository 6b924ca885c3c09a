"""Waiting for something another process does, with a deadline that names what was awaited."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

__all__ = ["poll"]

T = TypeVar("T")


async def poll(
    check: Callable[[], Awaitable[T]], *, timeout: float, what: str, interval: float = 0.1
) -> T:
    """Call ``check`` until it returns something truthy; fail naming ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:g}s: {what}")
        await asyncio.sleep(interval)
