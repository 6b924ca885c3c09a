"""The asyncio client: ``async with AsyncClient() as hub: await hub.trigger(...)``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar

import httpx

from integrationhub.client import _api
from integrationhub.client._config import http_options
from integrationhub.client._exceptions import unreachable
from integrationhub.models.credential import CredentialPublic
from integrationhub.models.flow import Flow, FlowPublic
from integrationhub.models.run import RunAccepted, RunPublic, RunStatus

__all__ = ["AsyncClient"]

T = TypeVar("T")


class AsyncClient:
    """IntegrationHub's HTTP API, for asyncio. ``url`` and ``api_key`` default to
    ``INTEGRATIONHUB_URL`` (else http://127.0.0.1:8000) and ``INTEGRATIONHUB_API_KEY`` (else
    ``.integrationhub/api-key``). Every method raises a ``ClientError`` on failure."""

    def __init__(
        self,
        url: str | None = None,
        *,
        api_key: str | None = None,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(**http_options(url, api_key, timeout), transport=transport)  # type: ignore[arg-type]

    @property
    def url(self) -> str:
        return str(self._http.base_url).rstrip("/")

    def __repr__(self) -> str:
        return f"AsyncClient({self.url!r})"

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _run(self, plan: _api.Plan[T]) -> T:
        answer: httpx.Response | None = None
        try:
            while True:
                step = plan.send(answer)
                if isinstance(step, _api.Sleep):
                    await asyncio.sleep(step.seconds)
                    answer = None
                    continue
                try:
                    answer = await self._http.request(
                        step.method, step.path, **_api.request_options(step, self._http.timeout)
                    )
                except httpx.TransportError as exc:
                    raise unreachable(self._http.base_url, exc) from exc
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]

    # Runs

    async def trigger(
        self,
        flow_id: str,
        parameters: Mapping[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
        wait: float | None = None,
    ) -> RunAccepted | RunPublic:
        """Run a flow. Returns the queued run's id and status; with ``wait`` (seconds, up to
        300), the finished run if it ends in time."""
        return await self._run(
            _api.trigger(flow_id, parameters, idempotency_key=idempotency_key, wait=wait)
        )

    async def get_run(self, run_id: str) -> RunPublic:
        return await self._run(_api.get_run(run_id))

    async def wait_for_run(
        self,
        run_id: str,
        *,
        timeout: float = 60.0,
        poll_interval: float = 1.0,
        on_poll: Callable[[RunPublic], None] | None = None,
    ) -> RunPublic:
        """The run once it has finished; ``WaitTimedOut`` (with the run) after ``timeout``.
        ``on_poll`` sees the run after every look."""
        return await self._run(
            _api.wait_for_run(run_id, timeout=timeout, poll_interval=poll_interval, on_poll=on_poll)
        )

    async def list_runs(
        self,
        *,
        flow_id: str | None = None,
        status: RunStatus | str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        limit: int | None = 50,
        page_size: int = 100,
    ) -> list[RunPublic]:
        """Newest first, up to ``limit`` (None: all), ``page_size`` a request (1 to 500)."""
        return await self._run(
            _api.list_runs(
                flow_id=flow_id,
                status=status,
                created_after=created_after,
                created_before=created_before,
                limit=limit,
                page_size=page_size,
            )
        )

    async def retry_run(self, run_id: str) -> RunPublic:
        return await self._run(_api.retry_run(run_id))

    async def cancel_run(self, run_id: str) -> RunPublic:
        return await self._run(_api.cancel_run(run_id))

    # Flows

    async def list_flows(self) -> list[FlowPublic]:
        return await self._run(_api.list_flows())

    async def get_flow(self, flow_id: str) -> FlowPublic:
        return await self._run(_api.get_flow(flow_id))

    async def put_flow(self, flow: Flow | Mapping[str, Any]) -> FlowPublic:
        """Create or replace a flow (a ``Flow`` or its JSON form) under its ``id``."""
        return await self._run(_api.put_flow(flow))

    async def delete_flow(self, flow_id: str) -> None:
        return await self._run(_api.delete_flow(flow_id))

    # Credentials: written in, never read out

    async def put_credential(
        self, credential_id: str, *, type: str, data: Mapping[str, Any]
    ) -> CredentialPublic:
        return await self._run(_api.put_credential(credential_id, type=type, data=data))

    async def list_credentials(self) -> list[CredentialPublic]:
        return await self._run(_api.list_credentials())

    async def get_credential(self, credential_id: str) -> CredentialPublic:
        return await self._run(_api.get_credential(credential_id))

    async def delete_credential(self, credential_id: str) -> None:
        return await self._run(_api.delete_credential(credential_id))

    # Connectors

    async def list_connectors(self) -> list[dict[str, Any]]:
        """Each connector with its credential fields and its actions' schemas."""
        return await self._run(_api.list_connectors())
