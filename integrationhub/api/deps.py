"""Dependencies shared by the routers, as ``Annotated`` aliases."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from integrationhub.api.errors import ApiError
from integrationhub.hub import Hub

__all__ = ["HubDep", "check_api_key", "require_api_key"]


async def _hub(request: Request) -> Hub:
    # async: FastAPI runs a plain ``def`` dependency on its thread pool, a hand-off per request
    return request.app.state.hub  # type: ignore[no-any-return]


HubDep = Annotated[Hub, Depends(_hub)]

bearer = HTTPBearer(auto_error=False, description="An API key from INTEGRATIONHUB_API_KEYS")


async def require_api_key(
    hub: HubDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    check_api_key(hub, credentials.credentials if credentials is not None else None)


def check_api_key(hub: Hub, key: str | None) -> None:
    """Raise a 401 ApiError unless ``key`` (the bearer token, if any) is one of the hub's."""
    if key is None:
        raise ApiError(401, "unauthorized", "missing API key: send Authorization: Bearer <key>")
    given = key.encode()
    # Compare against every key, always, so timing does not tell which prefix matched.
    matches = [hmac.compare_digest(given, known.encode()) for known in hub.api_keys]
    if not any(matches):
        raise ApiError(401, "unauthorized", "invalid API key")
