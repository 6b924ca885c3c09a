"""``/health`` says which component is up; ``/metrics`` is for Prometheus. Neither needs a key.

``/health`` answers 503 only when the hub cannot accept triggers (the run store is down). With
the credential store or the broker down it still accepts and persists triggers, so it answers
200 with ``"status": "degraded"`` and names the component.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from integrationhub.api.deps import HubDep

router = APIRouter(tags=["operations"])

CHECK_TIMEOUT = 3.0


async def _component(check: Callable[[], Awaitable[None]]) -> dict[str, Any]:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            await check()
    except TimeoutError:
        return {"status": "down", "error": f"no answer within {CHECK_TIMEOUT:g}s"}
    except Exception as exc:  # health reports any failure instead of raising it
        return {"status": "down", "error": getattr(exc, "message", None) or type(exc).__name__}
    return {"status": "up"}


@router.get("/health")
async def health(hub: HubDep) -> JSONResponse:
    checks = {
        "database": hub.store.check,
        "credentials": hub.credentials.check,
        "broker": hub.bus.check,
    }
    if hub.workers is not None:
        checks["workers"] = hub.workers.check
    results = await asyncio.gather(*(_component(check) for check in checks.values()))
    components = dict(zip(checks, results, strict=True))
    down = [name for name, state in components.items() if state["status"] != "up"]
    status = "ok" if not down else "down" if "database" in down else "degraded"
    return JSONResponse(
        {"status": status, "components": components},
        status_code=503 if status == "down" else 200,
    )


@router.get("/metrics")
async def metrics() -> Response:
    return Response(generate_latest(_registry()), media_type=CONTENT_TYPE_LATEST)


def _registry() -> CollectorRegistry:
    """This process's metrics, or, with worker processes, every process's (``workers.py``)."""
    if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    return registry
