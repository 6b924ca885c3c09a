"""What each call sends and how its answer is read, written once for both clients.

Each operation is a *plan*: a generator that yields ``Call`` (send this request, give me the
response) or ``Sleep`` (pause), and returns the result. ``Client`` and ``AsyncClient`` only drive
plans, one with blocking I/O and one with ``await``, so paging, polling, error mapping and
parsing exist once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, TypeAdapter

from integrationhub.client._exceptions import WaitTimedOut, error_from_response
from integrationhub.models.credential import CredentialPublic
from integrationhub.models.flow import Flow, FlowPublic
from integrationhub.models.run import RunAccepted, RunPublic, RunStatus

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

PREFIX = "/api/v1"
MAX_PAGE = 500  # the API's largest page of runs


@dataclass(frozen=True, slots=True)
class Call:
    method: str
    path: str
    params: dict[str, Any] = field(default_factory=dict)
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    hold: float = 0.0  # seconds the hub may hold the answer back (``?wait``), on top of timeouts


@dataclass(frozen=True, slots=True)
class Sleep:
    seconds: float


Plan = Generator[Call | Sleep, Any, T]


def request_options(call: Call, timeout: httpx.Timeout) -> dict[str, Any]:
    """``httpx`` keyword arguments for ``call``: the read timeout grows by what the hub may hold
    the answer back."""
    if call.hold:
        read = None if timeout.read is None else timeout.read + call.hold
        timeout = httpx.Timeout(timeout.connect, read=read, write=timeout.write, pool=timeout.pool)
    return {
        "params": call.params,
        "json": call.json,
        "headers": call.headers,
        "timeout": timeout,
    }


def _checked(response: httpx.Response) -> httpx.Response:
    if response.is_success:
        return response
    raise error_from_response(response)


def _parse(response: httpx.Response, model: type[M]) -> M:
    return model.model_validate_json(_checked(response).content)


def _parse_list(response: httpx.Response, model: type[M]) -> list[M]:
    return TypeAdapter(list[model]).validate_json(_checked(response).content)  # type: ignore[valid-type]


def _one(call: Call, read: Callable[[httpx.Response], T]) -> Plan[T]:
    response = yield call
    return read(response)


def _without_none(params: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in params.items() if value is not None}


# Runs -------------------------------------------------------------------------------------------


def trigger(
    flow_id: str,
    parameters: Mapping[str, Any] | None,
    *,
    idempotency_key: str | None,
    wait: float | None,
) -> Plan[RunAccepted | RunPublic]:
    """202 gives the accepted run; with ``wait``, 200 gives the finished run."""
    response = yield Call(
        "POST",
        f"{PREFIX}/trigger",
        params=_without_none({"wait": wait or None}),
        json={"flow_id": flow_id, "parameters": dict(parameters or {})},
        headers=_without_none({"Idempotency-Key": idempotency_key}),
        hold=wait or 0.0,
    )
    _checked(response)
    if response.status_code == 200:
        return RunPublic.model_validate_json(response.content)
    return RunAccepted.model_validate_json(response.content)


def get_run(run_id: str) -> Plan[RunPublic]:
    return _one(Call("GET", f"{PREFIX}/runs/{_segment(run_id)}"), lambda r: _parse(r, RunPublic))


def wait_for_run(
    run_id: str,
    *,
    timeout: float,
    poll_interval: float,
    on_poll: Callable[[RunPublic], None] | None,
) -> Plan[RunPublic]:
    """Poll the run, from 0.1 s apart up to ``poll_interval``, until it has finished."""
    deadline = time.monotonic() + timeout
    delay = min(0.1, poll_interval)
    while True:
        run = yield from get_run(run_id)
        if on_poll is not None:
            on_poll(run)
        if run.status.finished:
            return run
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise WaitTimedOut(run, timeout)
        yield Sleep(min(delay, remaining))
        delay = min(delay * 1.5, poll_interval)


def list_runs(
    *,
    flow_id: str | None,
    status: RunStatus | str | None,
    created_after: datetime | None,
    created_before: datetime | None,
    limit: int | None,
    page_size: int,
) -> Plan[list[RunPublic]]:
    """Newest first, up to ``limit`` runs (all with None), ``page_size`` a request, following
    ``Link: rel="next"``."""
    if not 1 <= page_size <= MAX_PAGE:
        raise ValueError(f"page_size must be from 1 to {MAX_PAGE}")
    runs: list[RunPublic] = []
    cursor: str | None = None
    while limit is None or len(runs) < limit:
        page = page_size if limit is None else min(page_size, limit - len(runs))
        params = {
            "flow_id": flow_id,
            "status": None if status is None else str(status),
            "created_after": created_after.isoformat() if created_after else None,
            "created_before": created_before.isoformat() if created_before else None,
            "limit": page,
            "cursor": cursor,
        }
        response = yield Call("GET", f"{PREFIX}/runs", params=_without_none(params))
        runs.extend(_parse_list(response, RunPublic))
        cursor = _next_cursor(response)
        if cursor is None:
            break
    return runs


def _next_cursor(response: httpx.Response) -> str | None:
    """The cursor of the ``rel="next"`` link. Only the cursor is taken from it: the link's host
    is the one the hub saw, which behind a proxy need not be the one we reach it by."""
    url = response.links.get("next", {}).get("url")
    return httpx.URL(url).params.get("cursor") if url else None


def retry_run(run_id: str) -> Plan[RunPublic]:
    return _one(
        Call("POST", f"{PREFIX}/runs/{_segment(run_id)}/retry"), lambda r: _parse(r, RunPublic)
    )


def cancel_run(run_id: str) -> Plan[RunPublic]:
    return _one(
        Call("POST", f"{PREFIX}/runs/{_segment(run_id)}/cancel"), lambda r: _parse(r, RunPublic)
    )


# Flows ------------------------------------------------------------------------------------------


def list_flows() -> Plan[list[FlowPublic]]:
    return _one(Call("GET", f"{PREFIX}/flows"), lambda r: _parse_list(r, FlowPublic))


def get_flow(flow_id: str) -> Plan[FlowPublic]:
    return _one(Call("GET", f"{PREFIX}/flows/{_segment(flow_id)}"), lambda r: _parse(r, FlowPublic))


def put_flow(flow: Flow | Mapping[str, Any]) -> Plan[FlowPublic]:
    """Create or replace the flow under its own ``id``."""
    body = (
        flow.model_dump(mode="json", include=set(Flow.model_fields), exclude_none=True)
        if isinstance(flow, Flow)
        else dict(flow)
    )
    flow_id = body.get("id")
    if not isinstance(flow_id, str) or not flow_id:
        raise ValueError("a flow definition needs an 'id'")
    return _one(
        Call("PUT", f"{PREFIX}/flows/{_segment(flow_id)}", json=body),
        lambda r: _parse(r, FlowPublic),
    )


def delete_flow(flow_id: str) -> Plan[None]:
    return _one(Call("DELETE", f"{PREFIX}/flows/{_segment(flow_id)}"), _nothing)


# Credentials ------------------------------------------------------------------------------------


def put_credential(
    credential_id: str, *, type: str, data: Mapping[str, Any]
) -> Plan[CredentialPublic]:
    return _one(
        Call(
            "PUT",
            f"{PREFIX}/credentials/{_segment(credential_id)}",
            json={"type": type, "data": dict(data)},
        ),
        lambda r: _parse(r, CredentialPublic),
    )


def list_credentials() -> Plan[list[CredentialPublic]]:
    return _one(Call("GET", f"{PREFIX}/credentials"), lambda r: _parse_list(r, CredentialPublic))


def get_credential(credential_id: str) -> Plan[CredentialPublic]:
    return _one(
        Call("GET", f"{PREFIX}/credentials/{_segment(credential_id)}"),
        lambda r: _parse(r, CredentialPublic),
    )


def delete_credential(credential_id: str) -> Plan[None]:
    return _one(Call("DELETE", f"{PREFIX}/credentials/{_segment(credential_id)}"), _nothing)


# Connectors -------------------------------------------------------------------------------------


def list_connectors() -> Plan[list[dict[str, Any]]]:
    return _one(Call("GET", f"{PREFIX}/connectors"), lambda r: _checked(r).json())


def _nothing(response: httpx.Response) -> None:
    _checked(response)


def _segment(value: str) -> str:
    """One path segment, whatever the id holds (the API rejects odd ids with a clear error)."""
    if not value or value in {".", ".."}:
        raise ValueError(f"not a valid id: {value!r}")
    return quote(value, safe="")
