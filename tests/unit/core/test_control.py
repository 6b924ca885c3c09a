from __future__ import annotations

import asyncio

import pytest

from integrationhub.core import control
from integrationhub.errors import ExpressionError
from integrationhub.models.flow import Step


def step(**fields) -> Step:
    return Step.model_validate({"id": "send", "action": "smtp-email", **fields})


CONTEXT = {"parameters": {"to": ["a", "b", "c"], "one": "x", "go": True}, "steps": {}}


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        (None, True),
        ("parameters.go", True),
        ("parameters.go = false", False),
        ("parameters.missing", False),
        ("$count(parameters.to) > 2", True),
        ("parameters.to[$ = 'z']", False),
    ],
)
def test_when_decides_whether_the_step_runs(when, expected):
    assert control.should_run(step(when=when), CONTEXT) is expected


def test_a_failing_when_names_the_field():
    with pytest.raises(ExpressionError, match=r"^when: JSONata expression .* failed: no"):
        control.should_run(step(when="$error('no')"), CONTEXT)


@pytest.mark.parametrize(
    ("for_each", "expected"),
    [
        ("parameters.to", ["a", "b", "c"]),
        ("parameters.one", ["x"]),  # a single value is one item
        ("parameters.missing", []),
        ("[]", []),
        ("parameters.to[$ != 'b']", ["a", "c"]),
        ("[1..3].({'n': $})", [{"n": 1}, {"n": 2}, {"n": 3}]),
    ],
)
def test_for_each_yields_the_items_as_a_list(for_each, expected):
    assert control.items(step(for_each=for_each), CONTEXT) == expected


def test_too_many_items_are_refused_before_any_call():
    with pytest.raises(ExpressionError, match="1,001 items; a step iterates over at most 1,000"):
        control.items(step(for_each="[1..1001]"), CONTEXT)


def test_each_item_context_adds_item_and_index_and_each_call_has_its_id():
    assert control.item_context(CONTEXT, 2, "c") == {**CONTEXT, "item": "c", "index": 2}
    assert [control.call_id("send", n) for n in range(3)] == ["send.0", "send.1", "send.2"]


async def test_each_keeps_at_most_concurrency_calls_under_way_and_the_items_order():
    under_way, most = 0, 0
    release = asyncio.Event()

    async def call(index: int, item: str) -> str:
        nonlocal under_way, most
        under_way += 1
        most = max(most, under_way)
        if under_way == 3:
            release.set()
        await release.wait()
        await asyncio.sleep(0)
        under_way -= 1
        return item.upper()

    results = await control.each(list("abcdefg"), concurrency=3, call=call)

    assert results == list("ABCDEFG")
    assert most == 3


async def test_the_first_failure_stops_the_calls_under_way_and_starts_no_more():
    started: list[int] = []
    stopped: list[int] = []

    async def call(index: int, item: object) -> None:
        started.append(index)
        if index == 1:
            await asyncio.sleep(0)
            raise ValueError("item 1 broke")
        try:
            await asyncio.Event().wait()  # never done on its own
        except asyncio.CancelledError:
            stopped.append(index)
            raise

    with pytest.raises(ValueError, match="item 1 broke"):
        await control.each(list(range(10)), concurrency=2, call=call)

    assert started == [0, 1]
    assert stopped == [0]


async def test_each_of_nothing_calls_nothing():
    async def call(index: int, item: object) -> None:
        raise AssertionError("called")

    assert await control.each([], concurrency=4, call=call) == []
