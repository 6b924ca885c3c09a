from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from integrationhub.api.deps import HubDep

router = APIRouter(prefix="/connectors", tags=["connectors"])


@router.get("")
async def list_connectors(hub: HubDep) -> list[dict[str, Any]]:
    """Each connector with its credential fields and its actions' input and output schemas."""
    return hub.registry.describe()
