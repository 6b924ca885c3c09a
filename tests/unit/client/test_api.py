"""The request plans both clients drive, stepped by hand: what they send, how they page."""

from __future__ import annotations

import httpx
import pytest

from integrationhub.client import _api
from integrationhub.client._api import Call


def run(request: Call, status: int, body: object, headers: dict[str, str] | None = None):
    return httpx.Response(
        status,
        json=body,
        headers=headers,
        request=httpx.Request(request.method, "http://hub" + request.path, params=request.params),
    )


def a_run(run_id: str) -> dict[str, object]:
    return {
        "run_id": run_id,
        "flow_id": "f",
        "status": "failed",
        "parameters": {},
        "steps": [],
        "error": "x",
        "deliveries": 1,
        "created_at": "2026-11-26T12:00:00Z",
        "started_at": None,
        "finished_at": None,
    }


def test_list_runs_takes_only_the_cursor_from_the_next_link():
    plan = _api.list_runs(
        flow_id="f", status="failed", created_after=None, created_before=None, limit=3,
        page_size=2,
    )  # fmt: skip
    first = plan.send(None)
    assert (first.method, first.path) == ("GET", "/api/v1/runs")
    assert first.params == {"flow_id": "f", "status": "failed", "limit": 2}

    link = '<http://internal-host:9000/api/v1/runs?flow_id=f&limit=2&cursor=abc>; rel="next"'
    second = plan.send(run(first, 200, [a_run("1"), a_run("2")], {"Link": link}))
    assert second.params == {"flow_id": "f", "status": "failed", "limit": 1, "cursor": "abc"}

    with pytest.raises(StopIteration) as done:
        plan.send(run(second, 200, [a_run("3")], {"Link": link}))
    assert [r.run_id for r in done.value.value] == ["1", "2", "3"]  # the limit, not the link


def test_trigger_with_wait_holds_the_read_timeout_open_for_the_wait():
    plan = _api.trigger("f", {"a": 1}, idempotency_key="k", wait=30)
    call = plan.send(None)
    options = _api.request_options(call, httpx.Timeout(10))

    assert call.params == {"wait": 30}
    assert call.headers == {"Idempotency-Key": "k"}
    assert call.json == {"flow_id": "f", "parameters": {"a": 1}}
    assert options["timeout"].read == 40
    assert options["timeout"].connect == 10


@pytest.mark.parametrize("bad", ["", ".", ".."])
def test_ids_that_would_change_the_path_are_refused(bad):
    with pytest.raises(ValueError, match="not a valid id"):
        _api.get_run(bad).send(None)


def test_ids_are_quoted_as_one_path_segment():
    call = _api.get_flow("a/b?c").send(None)

    assert call.path == "/api/v1/flows/a%2Fb%3Fc"
