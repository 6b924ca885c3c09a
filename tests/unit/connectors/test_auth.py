"""Auth schemes: what each puts on a request, checked with httpx.MockTransport (no network).
OAuth 2 against a real token endpoint is in tests/integration/test_oauth2.py."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any, ClassVar

import httpx
import pytest
from pydantic import SecretStr

from integrationhub.connectors.auth import (
    ApiKeyHeader,
    ApiKeyQuery,
    AuthScheme,
    AuthSession,
    BearerToken,
    HmacSignature,
    OAuth2ClientCredentials,
    TokenCache,
)
from integrationhub.connectors.base import ActionContext, BaseConnector, Credential
from integrationhub.connectors.http import (
    HttpApiKeyCredential,
    HttpBasicCredential,
    HttpBearerCredential,
    HttpHmacCredential,
    OAuth2ClientCredential,
)
from integrationhub.connectors.zulip import ZulipCredential
from integrationhub.errors import ConfigurationError, PermanentError


async def sent_with(auth: httpx.Auth, **request: Any) -> httpx.Request:
    """The request as it left the client with ``auth``."""
    seen: list[httpx.Request] = []

    def answer(req: httpx.Request) -> httpx.Response:
        seen.append(req)
        return httpx.Response(200, json={})

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
        await client.request(
            request.pop("method", "GET"), "https://api.example.com/v1/x", **request, auth=auth
        )
    (sent,) = seen
    return sent


def session() -> AuthSession:
    return AuthSession(http=httpx.AsyncClient())


@pytest.mark.parametrize(
    ("credential", "header", "value"),
    [
        (
            HttpBasicCredential(username="bot", password=SecretStr("pw")),
            "Authorization",
            "Basic " + base64.b64encode(b"bot:pw").decode(),
        ),
        (HttpBearerCredential(token=SecretStr("tok-1")), "Authorization", "Bearer tok-1"),
        (HttpApiKeyCredential(key=SecretStr("k-1")), "X-Api-Key", "k-1"),
        (HttpApiKeyCredential(key=SecretStr("k-2"), header="X-Auth-Token"), "X-Auth-Token", "k-2"),
        (
            ZulipCredential(
                site="https://z.example.com", email="bot@z.example.com", api_key=SecretStr("zk")
            ),
            "Authorization",
            "Basic " + base64.b64encode(b"bot@z.example.com:zk").decode(),
        ),
    ],
    ids=["basic", "bearer", "api-key", "api-key-own-header", "zulip-basic"],
)
async def test_each_credential_type_signs_requests_its_declared_way(
    credential: Credential, header: str, value: str
):
    assert credential.auth is not None
    sent = await sent_with(credential.auth.httpx_auth(credential, session()))

    assert sent.headers[header] == value


async def test_api_key_in_query_is_added_to_the_url():
    class KeyInQuery(Credential):
        type: ClassVar[str] = "key-in-query"
        auth: ClassVar[AuthScheme] = ApiKeyQuery("key", param="apikey")
        key: SecretStr

    credential = KeyInQuery(key=SecretStr("q-1"))
    sent = await sent_with(credential.auth.httpx_auth(credential, session()), params={"a": "1"})  # type: ignore[union-attr]

    assert dict(sent.url.params) == {"a": "1", "apikey": "q-1"}


async def test_hmac_signs_timestamp_method_path_and_body():
    credential = HttpHmacCredential(secret=SecretStr("shh"), key_id="key-7")
    auth = credential.auth.httpx_auth(credential, session())  # type: ignore[union-attr]

    sent = await sent_with(auth, method="POST", content=b'{"a":1}', params={"q": "x"})

    stamp = sent.headers["X-Timestamp"]
    message = f"{stamp}\nPOST\n/v1/x?q=x\n".encode() + b'{"a":1}'
    expected = hmac.new(b"shh", message, hashlib.sha256).hexdigest()
    assert sent.headers["X-Signature"] == f"sha256={expected}"
    assert sent.headers["X-Key-Id"] == "key-7"


def test_hmac_without_timestamp_signs_method_path_and_body_only():
    scheme = HmacSignature("secret", timestamp_header=None, encoding="base64", algorithm="sha512")
    request = httpx.Request("PUT", "https://h/p", content=b"body")

    scheme.sign(request, "k")

    digest = hmac.new(b"k", b"PUT\n/p\nbody", hashlib.sha512).digest()
    assert request.headers["X-Signature"] == "sha512=" + base64.b64encode(digest).decode()
    assert "X-Timestamp" not in request.headers


def test_a_scheme_that_reads_an_undeclared_field_fails_at_class_definition():
    with pytest.raises(ConfigurationError, match="does not declare: token"):

        class Broken(Credential):
            type: ClassVar[str] = "broken"
            auth: ClassVar[AuthScheme] = BearerToken("token")
            key: SecretStr


@pytest.mark.parametrize("bad", ["line\r\nX-Injected: 1", "nul\x00"])
async def test_a_secret_with_a_line_break_is_refused_not_sent(bad: str):
    credential = HttpBearerCredential(token=SecretStr(bad))

    with pytest.raises(PermanentError, match="token contains a line break"):
        credential.auth.httpx_auth(credential, session())  # type: ignore[union-attr]


def test_header_names_are_checked_when_the_scheme_is_declared():
    with pytest.raises(ConfigurationError, match="not a valid HTTP header name"):
        ApiKeyHeader("key", header="X Bad Header")


def test_secrets_stay_masked_and_rate_limit_is_checked():
    credential = HttpBasicCredential(
        username="u", password=SecretStr("pw-s3cret"), rate_limit="5/minute"
    )
    assert "pw-s3cret" not in repr(credential)
    assert credential.reveal()["password"] == "pw-s3cret"
    with pytest.raises(ValueError, match="not like '50/minute'"):
        HttpBearerCredential(token=SecretStr("t"), rate_limit="lots")


class _Echo(BaseConnector[HttpBearerCredential]):
    name = "echo-auth-test"


def test_connectors_get_the_credentials_auth_from_the_framework():
    context = ActionContext(run_id="r", step_id="s", attempt=1, http=httpx.AsyncClient())
    connector = _Echo(credential=HttpBearerCredential(token=SecretStr("t")), context=context)
    no_credential = _Echo(credential=None, context=context)  # type: ignore[arg-type]

    assert connector.auth is connector.auth  # built once per call
    assert no_credential.auth is None


async def test_client_credentials_token_is_fetched_once_and_kept():
    fetches: list[dict[str, str]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/token":
            fetches.append(dict(httpx.QueryParams(request.content.decode())))
            assert (
                request.headers["Authorization"]
                == "Basic " + base64.b64encode(b"cid:csec").decode()
            )
            return httpx.Response(
                200,
                json={
                    "access_token": f"cc-{len(fetches)}",
                    "token_type": "Bearer",
                    "expires_in": 600,
                },
            )
        return httpx.Response(200, json={"auth": request.headers["Authorization"]})

    credential = OAuth2ClientCredential(
        token_url="https://auth.example.com/token",
        client_id="cid",
        client_secret=SecretStr("csec"),
        scope="read write",
    )
    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
        tokens = TokenCache()
        answers = []
        for _ in range(3):
            auth = OAuth2ClientCredentials().httpx_auth(
                credential, AuthSession(http=client, tokens=tokens)
            )
            answers.append((await client.get("https://api.example.com/x", auth=auth)).json())

    assert fetches == [{"grant_type": "client_credentials", "scope": "read write"}]
    assert answers == [{"auth": "Bearer cc-1"}] * 3


async def test_token_endpoint_refusal_is_permanent_and_names_the_oauth_error():
    def answer(request: httpx.Request) -> httpx.Response:
        body = {"error": "invalid_client", "error_description": "unknown client"}
        return httpx.Response(
            401, content=json.dumps(body), headers={"Content-Type": "application/json"}
        )

    credential = OAuth2ClientCredential(
        token_url="https://auth.example.com/token", client_id="cid", client_secret=SecretStr("csec")
    )
    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
        auth = OAuth2ClientCredentials().httpx_auth(credential, AuthSession(http=client))
        with pytest.raises(
            PermanentError, match="refused the request: invalid_client: unknown client"
        ):
            await client.get("https://api.example.com/x", auth=auth)
