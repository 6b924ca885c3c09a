"""Dependencies shared by the routers, as ``Annotated`` aliases."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from integrationhub.api.errors import ApiError
from integrationhub.hub import Hub

__all__ = ["HubDep", "require_api_key"]


def _hub(request: Request) -> Hub:
    return request.app.state.hub  # type: ignore[no-any-return]


HubDep = Annotated[Hub, Depends(_hub)]

_bearer = HTTPBearer(auto_error=False, description="An API key from INTEGRATIONHUB_API_KEYS")


async def require_api_key(
    hub: HubDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    if credentials is None:
        raise ApiError(401, "unauthorized", "missing API key: send Authorization: Bearer <key>")
    given = credentials.credentials.encode()
    # Compare against every key, always, so timing does not tell which prefix matched.
    matches = [hmac.compare_digest(given, key.encode()) for key in hub.api_keys]
    if not any(matches):
        raise ApiError(401, "unauthorized", "invalid API key")
