"""What the Zulip contract tests share: the credential of the double's bot, and the actions
invoked as the engine invokes them (with ``http``, the root conftest's client).

A plain module: test modules take its fixtures in with ``from tests.contract.zulip_support
import *`` and its helpers by name.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from integrationhub.connectors.base import ActionContext
from integrationhub.connectors.zulip import ZulipConnector, ZulipCredential
from tests.doubles.zulip import ZulipDouble

__all__ = ["invoke"]

Invoke = Callable[..., Awaitable[BaseModel]]


def credential_for(zulip: ZulipDouble, **changes: str) -> ZulipCredential:
    data = {"site": zulip.url, "email": zulip.email, "api_key": zulip.api_key, **changes}
    return ZulipCredential.model_validate(data)


@pytest.fixture
def invoke(zulip: ZulipDouble, http: httpx.AsyncClient) -> Invoke:
    """``await invoke("zulip-upload", {...})``: the action run once the way the engine runs it
    (input validation, timeout, output check), as the double's bot."""

    async def run(
        action: str,
        params: dict[str, Any],
        *,
        credential: ZulipCredential | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> BaseModel:
        context = ActionContext(run_id="run-1", step_id="step", attempt=1, http=client or http)
        return await ZulipConnector.actions[action].invoke(
            credential=credential or credential_for(zulip), params=params, context=context
        )

    return run
