"""Flow control of a step: ``when`` decides whether it runs, ``for_each`` how many times.

``when`` is evaluated once, before the step and so before any of its items: falsy (JSONata's
``$boolean``) skips the step. ``for_each`` yields the items (an array; a single value is one
item, null or undefined none). The action then runs once per item, with ``item`` and ``index``
added to the context its input is rendered in, never more than ``concurrency`` calls under way
at once; the first item that fails for good stops the others, and no further item starts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from integrationhub.core import expressions
from integrationhub.errors import ExpressionError
from integrationhub.models.flow import Step

__all__ = ["MAX_ITEMS", "call_id", "each", "item_context", "items", "should_run"]

MAX_ITEMS = 1000  # items of one for_each step


def should_run(step: Step, context: Mapping[str, Any]) -> bool:
    """False when the step's ``when`` is falsy. Raises ExpressionError."""
    if step.when is None:
        return True
    return expressions.truthy(_evaluate("when", step.when, context))


def items(step: Step, context: Mapping[str, Any]) -> list[Any]:
    """What the step's ``for_each`` yields, as a list. Raises ExpressionError."""
    assert step.for_each is not None
    value = _evaluate("for_each", step.for_each, context)
    found = [] if value is None else value if isinstance(value, list) else [value]
    if len(found) > MAX_ITEMS:
        raise ExpressionError(
            f"for_each: {len(found):,} items; a step iterates over at most {MAX_ITEMS:,}"
        )
    return found


def item_context(context: Mapping[str, Any], index: int, item: Any) -> dict[str, Any]:
    return {**context, "item": item, "index": index}


def call_id(step_id: str, index: int) -> str:
    """What tells an item's call apart from the others' (the SMTP connector's Message-ID is
    derived from it): a dot, since step ids have none and a Message-ID may have one."""
    return f"{step_id}.{index}"


async def each(
    found: Sequence[Any],
    *,
    concurrency: int,
    call: Callable[[int, Any], Awaitable[Any]],
) -> list[Any]:
    """``call(index, item)`` for each item, at most ``concurrency`` at once; the results in the
    items' order. The first exception stops the calls under way and is raised."""
    results: list[Any] = [None] * len(found)
    pending = iter(enumerate(found))
    failures: list[Exception] = []

    async def worker() -> None:
        try:
            for index, item in pending:
                results[index] = await call(index, item)
        except Exception as exc:
            failures.append(exc)  # in the order they happened; the group has no order
            raise

    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(min(concurrency, len(found))):
                group.create_task(worker())
    except BaseExceptionGroup:
        if not failures:
            raise
    if failures:
        raise failures[0]  # out of the handler: the group is not chained to it
    return results


def _evaluate(field: str, source: str, context: Mapping[str, Any]) -> Any:
    try:
        return expressions.parse(source).evaluate(context)
    except ExpressionError as exc:
        raise ExpressionError(f"{field}: {exc.message}") from None
