"""The ``http-request`` action against the httpbin-like double on 127.0.0.1: methods, bodies,
parsing, status classification and every credential type's sign-in, the way the engine invokes
it (``Action.invoke`` over the guarded client); then once through a hub with the credential in
OpenBao."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from integrationhub.connectors.base import ActionContext, Credential
from integrationhub.connectors.http import (
    HttpApiKeyCredential,
    HttpBasicCredential,
    HttpBearerCredential,
    HttpConnector,
    HttpHmacCredential,
)
from integrationhub.errors import PermanentError, RateLimited, RetryableError
from tests.doubles.httpbin import HttpBin
from tests.integration.conftest_httpbin import *  # noqa: F403
from tests.support.hub import RunningHub

pytestmark = pytest.mark.integration

REQUEST = HttpConnector.actions["http-request"]


async def call(
    http: httpx.AsyncClient, params: dict[str, Any], credential: Credential | None = None
) -> dict[str, Any]:
    context = ActionContext(run_id="run-1", step_id="call", attempt=1, http=http)
    result = await REQUEST.invoke(credential=credential, params=params, context=context)
    return result.model_dump()


# --- requests as asked --------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "get"])
async def test_each_method_arrives_as_asked(httpbin: HttpBin, http: httpx.AsyncClient, method: str):
    result = await call(http, {"method": method, "url": f"{httpbin.url}/anything/x"})

    assert result["status"] == 200
    assert result["body"]["method"] == method.upper()
    assert [r.method for r in httpbin.requests] == [method.upper()]


async def test_head_answers_status_and_headers_without_a_body(
    httpbin: HttpBin, http: httpx.AsyncClient
):
    result = await call(http, {"method": "HEAD", "url": f"{httpbin.url}/anything"})

    assert (result["status"], result["body"], result["headers"]["x-echo"]) == (200, None, "head")


async def test_json_body_query_and_headers_arrive_and_the_json_answer_is_parsed(
    httpbin: HttpBin, http: httpx.AsyncClient
):
    result = await call(
        http,
        {
            "method": "POST",
            "url": f"{httpbin.url}/anything",
            "json": {"title": "Deploy", "tags": ["a", "b"], "n": 2, "ok": True},
            "query": {"page": 2, "tag": ["x", "y"]},
            "headers": {"X-Request-Id": "r-1"},
        },
    )

    echo = result["body"]
    assert echo["json"] == {"title": "Deploy", "tags": ["a", "b"], "n": 2, "ok": True}
    assert echo["headers"]["content-type"] == "application/json"
    assert echo["query"] == [["page", "2"], ["tag", "x"], ["tag", "y"]]
    assert echo["headers"]["x-request-id"] == "r-1"
    assert result["headers"]["content-type"] == "application/json"
    assert result["url"] == f"{httpbin.url}/anything"  # without the query


async def test_form_body_is_form_encoded(httpbin: HttpBin, http: httpx.AsyncClient):
    result = await call(
        http, {"method": "POST", "url": f"{httpbin.url}/anything", "form": {"a": "1 2", "b": "&"}}
    )

    assert result["body"]["form"] == {"a": "1 2", "b": "&"}
    assert result["body"]["headers"]["content-type"] == "application/x-www-form-urlencoded"


@pytest.mark.parametrize(
    ("path", "body", "body_base64"),
    [("/text", "plain words", None), ("/bytes/4", None, "eHh4eA==")],
    ids=["text", "binary"],
)
async def test_text_answers_are_text_and_binary_ones_base64(
    httpbin: HttpBin, http: httpx.AsyncClient, path: str, body: Any, body_base64: str | None
):
    result = await call(http, {"url": f"{httpbin.url}{path}"})

    assert (result["body"], result["body_base64"]) == (body, body_base64)


# --- statuses -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, PermanentError),
        (404, PermanentError),
        (409, RetryableError),
        (500, RetryableError),
        (503, RetryableError),
    ],
)
async def test_failed_statuses_raise_what_the_framework_classifies(
    httpbin: HttpBin, http: httpx.AsyncClient, status: int, error: type[Exception]
):
    with pytest.raises(error) as caught:
        await call(http, {"url": f"{httpbin.url}/status/{status}"})

    assert type(caught.value) is error
    assert f"GET {httpbin.url}/status/{status} answered {status}" in str(caught.value)


async def test_429_is_rate_limited_with_its_retry_after(httpbin: HttpBin, http: httpx.AsyncClient):
    with pytest.raises(RateLimited) as caught:
        await call(http, {"url": f"{httpbin.url}/status/429?retry_after=2.5"})

    assert caught.value.retry_after == 2.5
    assert "retry_after" not in caught.value.message


async def test_accepted_statuses_are_answers_not_failures(
    httpbin: HttpBin, http: httpx.AsyncClient
):
    result = await call(http, {"url": f"{httpbin.url}/status/404", "accept_status": [404, 410]})

    assert (result["status"], result["body"]) == (404, {"status": 404})


async def test_without_following_a_redirect_is_the_answer(
    httpbin: HttpBin, http: httpx.AsyncClient
):
    url = f"{httpbin.url}/redirect-to?url=/anything&status_code=301"

    result = await call(http, {"url": url, "follow_redirects": False})

    assert (result["status"], result["headers"]["location"]) == (301, "/anything")


# --- sign-in per credential type ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("credential", "header", "value"),
    [
        (
            HttpBasicCredential(username="bot", password=SecretStr("pw")),
            "authorization",
            "Basic Ym90OnB3",
        ),
        (HttpBearerCredential(token=SecretStr("tok-1")), "authorization", "Bearer tok-1"),
        (HttpApiKeyCredential(key=SecretStr("key-1")), "x-api-key", "key-1"),
        (HttpApiKeyCredential(key=SecretStr("key-2"), header="X-Auth"), "x-auth", "key-2"),
    ],
    ids=["basic", "bearer", "api-key", "api-key-own-header"],
)
async def test_the_credentials_sign_in_is_applied_by_the_hub(
    httpbin: HttpBin, http: httpx.AsyncClient, credential: Credential, header: str, value: str
):
    result = await call(http, {"url": f"{httpbin.url}/anything"}, credential)

    assert result["body"]["headers"][header] == value


async def test_hmac_signature_verifies_on_the_receiving_side(
    httpbin: HttpBin, http: httpx.AsyncClient
):
    credential = HttpHmacCredential(secret=SecretStr("shared-s3cret"), key_id="hub")

    await call(
        http, {"method": "POST", "url": f"{httpbin.url}/anything?x=1", "json": {"a": 1}}, credential
    )

    (request,) = httpbin.requests
    message = b"\n".join(
        [request.headers["x-timestamp"].encode(), b"POST", b"/anything?x=1", request.body]
    )
    expected = hmac.new(b"shared-s3cret", message, hashlib.sha256).hexdigest()
    assert request.headers["x-signature"] == f"sha256={expected}"
    assert request.headers["x-key-id"] == "hub"


async def test_a_base_url_takes_paths_and_keeps_the_credential_under_it(
    httpbin: HttpBin, http: httpx.AsyncClient
):
    credential = HttpBearerCredential(token=SecretStr("t"), base_url=f"{httpbin.url}/anything")

    result = await call(http, {"url": "/api/items?x=1"}, credential)
    with pytest.raises(PermanentError, match="outside the credential's base_url"):
        await call(http, {"url": f"{httpbin.url}/status/200"}, credential)
    with pytest.raises(PermanentError, match="outside the credential's base_url"):
        await call(http, {"url": "/../status/200"}, credential)

    assert result["body"]["path"] == "/anything/api/items"
    assert [r.path for r in httpbin.requests] == ["/anything/api/items"]


# --- bad input never leaves ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "complaint"),
    [
        ({"url": "file:///etc/passwd"}, "must be an http:// or https:// URL"),
        ({"url": "ftp://example.com/x"}, "must be an http:// or https:// URL"),
        ({"url": "gopher://127.0.0.1:6379/_FLUSHALL"}, "must be an http:// or https:// URL"),
        ({"url": "http://user:pw@example.com/"}, "must not carry a user name or password"),
        ({"url": "http://example.com/a b"}, "spaces or control characters"),
        ({"url": "//example.com/x"}, "must be an http:// or https:// URL"),
        (
            {"url": "{base}/anything", "headers": {"X-Ok": "a\r\nX-Injected: 1"}},
            "must not contain CR, LF",
        ),
        ({"url": "{base}/anything", "headers": {"X-Ok": "a\nb"}}, "must not contain CR, LF"),
        ({"url": "{base}/anything", "headers": {"Bad Name": "v"}}, "should match pattern"),
        ({"url": "{base}/anything", "headers": {"Host": "evil"}}, "Host are set by the hub"),
        ({"url": "{base}/anything", "json": {}, "form": {"a": "b"}}, "not both"),
        ({"url": "{base}/anything", "method": "TRACE"}, "Input should be"),
        ({"url": "/anything"}, "is a path: give an absolute URL"),
    ],
    ids=[
        "file-scheme",
        "ftp-scheme",
        "gopher-scheme",
        "userinfo",
        "space",
        "scheme-relative",
        "crlf-header",
        "lf-header",
        "bad-header-name",
        "host-header",
        "two-bodies",
        "trace",
        "path-without-base",
    ],
)
async def test_bad_input_is_refused_before_sending(
    httpbin: HttpBin, http: httpx.AsyncClient, params: dict[str, Any], complaint: str
):
    params = {k: v.format(base=httpbin.url) if isinstance(v, str) else v for k, v in params.items()}

    with pytest.raises(PermanentError) as caught:
        await call(http, params)

    assert complaint in caught.value.message
    assert httpbin.requests == []


# --- through the hub: the credential from OpenBao -----------------------------------------------


async def test_a_flow_calls_an_api_with_a_stored_credential(hub: RunningHub, httpbin: HttpBin):
    put = await hub.client.put(
        "/api/v1/credentials/api-token",
        json={"type": "http-bearer", "data": {"token": "tok-from-vault", "base_url": httpbin.url}},
    )
    assert put.status_code == 201, put.text
    flow = {
        "id": "call-api",
        "parameters": {"type": "object", "properties": {"title": {"type": "string"}}},
        "steps": [
            {
                "id": "create",
                "action": "http-request",
                "credential": "api-token",
                "input": {
                    "method": "POST",
                    "url": "/anything/tickets",
                    "json": {"title": "{{ parameters.title }}"},
                },
            },
            {"id": "anonymous", "action": "http-request", "input": {"url": f"{httpbin.url}/text"}},
        ],
    }
    assert (await hub.client.put("/api/v1/flows/call-api", json=flow)).status_code in (200, 201)

    answer = await hub.client.post(
        "/api/v1/flows/call-api/trigger?wait=20", json={"parameters": {"title": "Disk full"}}
    )

    run = answer.json()
    assert run["status"] == "succeeded", run
    create, anonymous = run["steps"]
    assert create["output"]["body"]["json"] == {"title": "Disk full"}
    assert create["output"]["body"]["headers"]["authorization"] == "Bearer tok-from-vault"
    assert anonymous["output"]["body"] == "plain words"
    assert "authorization" not in httpbin.to("/text")[0].headers
