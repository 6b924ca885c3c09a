"""OAuth 2 through the framework against a local token endpoint (tests/doubles/httpbin.py): an
expired token is refreshed once, however many calls need it, and the new tokens are written back
to the real OpenBao; client-credentials tokens are fetched once and again only on a 401."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from integrationhub.connectors.auth import TokenCache
from integrationhub.connectors.base import ActionContext, Credential
from integrationhub.connectors.http import (
    HttpConnector,
    OAuth2ClientCredential,
    OAuth2RefreshCredential,
)
from integrationhub.core.http import new_client
from integrationhub.errors import PermanentError, RetryableError
from tests.doubles.httpbin import HttpBin
from tests.integration.conftest_httpbin import *  # noqa: F403
from tests.support.hub import RunningHub

pytestmark = pytest.mark.integration

REQUEST = HttpConnector.actions["http-request"]


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with new_client(timeout=5.0, allow=["127.0.0.1/32"]) as client:
        yield client


def refresh_data(httpbin: HttpBin, **changes: Any) -> dict[str, Any]:
    oauth = httpbin.oauth
    return {
        "token_url": f"{httpbin.url}/oauth/token",
        "client_id": oauth.client_id,
        "client_secret": oauth.client_secret,
        "refresh_token": oauth.refresh_token,
        "access_token": "at-expired",
        "expires_at": int(time.time()) - 60,
        "base_url": httpbin.url,
    } | changes


async def test_an_expired_token_is_refreshed_once_and_written_back_to_openbao(
    hub: RunningHub, httpbin: HttpBin
):
    put = await hub.client.put(
        "/api/v1/credentials/crm-user",
        json={"type": "oauth2-refresh-token", "data": refresh_data(httpbin)},
    )
    assert put.status_code == 201, put.text
    step = {"action": "http-request", "credential": "crm-user", "input": {"url": "/oauth/resource"}}
    flow = {"id": "crm-sync", "steps": [{"id": "first", **step}, {"id": "second", **step}]}
    assert (await hub.client.put("/api/v1/flows/crm-sync", json=flow)).status_code in (200, 201)

    # Three runs at once, two calls each: all start with the expired token.
    answers = await asyncio.gather(
        *(hub.client.post("/api/v1/flows/crm-sync/trigger?wait=20", json={}) for _ in range(3))
    )

    runs = [answer.json() for answer in answers]
    assert [run["status"] for run in runs] == ["succeeded"] * 3, runs
    assert httpbin.oauth.refreshes == 1
    resource = httpbin.to("/oauth/resource")
    assert {r.headers["authorization"] for r in resource} == {"Bearer at-1"}
    assert len(resource) == 6
    stored = await hub.hub.credentials.read("crm-user")
    assert stored.data["access_token"] == "at-1"
    assert stored.data["refresh_token"] == httpbin.oauth.refresh_token != "rt-0"  # rotated
    assert stored.data["expires_at"] > time.time() + 3000
    assert stored.data["client_secret"] == httpbin.oauth.client_secret  # the rest unchanged
    assert stored.metadata.version == 2


async def test_a_token_the_api_refuses_is_refreshed_once_and_saved(
    httpbin: HttpBin, http: httpx.AsyncClient
):
    # Not expired by the clock, yet revoked: the 401 triggers the one refresh.
    credential = OAuth2RefreshCredential.model_validate(
        refresh_data(httpbin, access_token="at-revoked", expires_at=int(time.time()) + 3600)
    )
    saved: list[Credential] = []

    async def save(changed: Credential) -> None:
        saved.append(changed)

    context = ActionContext(
        run_id="r", step_id="s", attempt=1, http=http, tokens=TokenCache(), save_credential=save
    )
    result = await REQUEST.invoke(
        credential=credential, params={"url": "/oauth/resource"}, context=context
    )

    assert result.model_dump()["body"] == {"token": "at-1"}
    assert [r.headers["authorization"] for r in httpbin.to("/oauth/resource")] == [
        "Bearer at-revoked",
        "Bearer at-1",
    ]
    (changed,) = saved
    assert isinstance(changed, OAuth2RefreshCredential) and changed.access_token is not None
    assert changed.access_token.get_secret_value() == "at-1"


async def test_a_refused_refresh_token_fails_the_call_for_good_saying_why(
    httpbin: HttpBin, http: httpx.AsyncClient
):
    credential = OAuth2RefreshCredential.model_validate(
        refresh_data(httpbin, refresh_token="rt-revoked")
    )
    context = ActionContext(run_id="r", step_id="s", attempt=1, http=http)

    with pytest.raises(PermanentError) as caught:
        await REQUEST.invoke(
            credential=credential, params={"url": "/oauth/resource"}, context=context
        )

    assert "refused the request: invalid_grant: refresh token unknown" in caught.value.message
    assert "rt-revoked" not in caught.value.message
    assert httpbin.to("/oauth/resource") == []


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_a_failing_token_endpoint_leaves_the_call_to_be_made(
    httpbin: HttpBin, http: httpx.AsyncClient, status: int
):
    """Asking for a token is not the call's effect: the step may be retried whatever the token
    endpoint answered, even for an action that is not safe to repeat."""
    credential = OAuth2RefreshCredential.model_validate(refresh_data(httpbin))
    context = ActionContext(run_id="r", step_id="s", attempt=1, http=http)
    httpbin.answer_next("/oauth/token", status)

    with pytest.raises(RetryableError) as caught:
        await REQUEST.invoke(
            credential=credential, params={"url": "/oauth/resource"}, context=context
        )

    assert f"OAuth 2 token endpoint 127.0.0.1 answered {status}" in caught.value.message
    assert caught.value.effect_possible is False
    assert httpbin.to("/oauth/resource") == []


async def test_client_credentials_tokens_are_reused_and_fetched_again_after_a_401(
    httpbin: HttpBin, http: httpx.AsyncClient
):
    oauth = httpbin.oauth
    credential = OAuth2ClientCredential(
        token_url=f"{httpbin.url}/oauth/token",
        client_id=oauth.client_id,
        client_secret=SecretStr(oauth.client_secret),
        auth_method="client_secret_post",
    )
    tokens = TokenCache()  # the engine's, shared by its steps

    async def call() -> Any:
        context = ActionContext(run_id="r", step_id="s", attempt=1, http=http, tokens=tokens)
        result = await REQUEST.invoke(
            credential=credential, params={"url": f"{httpbin.url}/oauth/resource"}, context=context
        )
        return result.model_dump()["body"]

    first = await asyncio.gather(call(), call(), call())
    oauth.revoke_all()
    after_revoke = await call()

    assert first == [{"token": "at-1"}] * 3
    assert after_revoke == {"token": "at-2"}
    assert oauth.grants == ["client_credentials", "client_credentials"]
    token_requests = httpbin.to("/oauth/token")
    assert "authorization" not in token_requests[0].headers  # client_secret_post
    assert b"client_secret=" in token_requests[0].body
