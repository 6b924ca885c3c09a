"""Outbound safety of the shared client, over real connections to a double on 127.0.0.1: the SSRF
guard (addresses, names, redirects) and the response size cap. Refused targets are refused
before any connection is made, so no traffic leaves for 169.254.169.254 or private ranges."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from pydantic import BaseModel, SecretStr

from integrationhub.connectors.base import ActionContext, Credential
from integrationhub.connectors.http import HttpBearerCredential, HttpConnector
from integrationhub.core.http import new_client
from integrationhub.errors import PermanentError
from tests.doubles.httpbin import HttpBin
from tests.integration.conftest_httpbin import *  # noqa: F403

pytestmark = pytest.mark.integration

REQUEST = HttpConnector.actions["http-request"]
LOCAL = ["127.0.0.1/32"]


async def call(
    client: httpx.AsyncClient, params: dict[str, Any], credential: Credential | None = None
) -> BaseModel:
    context = ActionContext(run_id="run-1", step_id="call", attempt=1, http=client)
    return await REQUEST.invoke(credential=credential, params=params, context=context)


Client = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def client() -> Client:
    def make(**options: Any) -> AbstractAsyncContextManager[httpx.AsyncClient]:
        return new_client(timeout=5.0, **options)

    return make


def port_of(httpbin: HttpBin) -> int:
    return httpx.URL(httpbin.url).port or 80


# --- addresses and names ------------------------------------------------------------------------


async def test_without_the_allow_list_a_loopback_double_is_refused(
    httpbin: HttpBin, client: Client
):
    async with client() as http:
        with pytest.raises(PermanentError) as caught:
            await call(http, {"url": f"{httpbin.url}/anything"})

    assert "refused to connect to 127.0.0.1, a loopback address" in caught.value.message
    assert "INTEGRATIONHUB_HTTP_ALLOW_NETWORKS" in caught.value.message
    assert httpbin.requests == []


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("http://localhost:{port}/anything", "localhost (127.0.0.1), a loopback address"),
        ("http://[::1]:{port}/anything", "::1, a loopback address"),
        ("http://169.254.169.254/latest/meta-data/iam/", "169.254.169.254, a link-local address"),
    ],
    ids=["localhost", "ipv6-loopback", "metadata"],
)
async def test_internal_targets_are_refused_with_a_clear_error(
    httpbin: HttpBin, client: Client, url: str, complaint: str
):
    async with client() as http:
        with pytest.raises(PermanentError) as caught:
            await call(http, {"url": url.format(port=port_of(httpbin))})

    assert complaint in caught.value.message
    assert httpbin.requests == []


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("http://169.254.169.254/latest/meta-data/iam/", "169.254.169.254, a link-local address"),
        ("http://[::1]:{port}/anything", "::1, a loopback address"),
        ("http://127.0.0.2:{port}/anything", "127.0.0.2, a loopback address"),
        ("http://10.20.30.40/", "10.20.30.40, a private address"),
        ("http://[fd00::1]/", "fd00::1, a private address"),
    ],
    ids=["metadata", "ipv6-loopback", "other-loopback", "rfc1918", "ula"],
)
async def test_the_allow_list_admits_nothing_beyond_its_networks(
    httpbin: HttpBin, client: Client, url: str, complaint: str
):
    async with client(allow=LOCAL) as http:
        with pytest.raises(PermanentError) as caught:
            await call(http, {"url": url.format(port=port_of(httpbin))})

    assert complaint in caught.value.message
    assert httpbin.requests == []


async def test_with_the_allow_list_the_local_double_answers(httpbin: HttpBin, client: Client):
    async with client(allow=LOCAL) as http:
        result = await call(http, {"url": f"{httpbin.url}/anything"})

    assert result.model_dump()["status"] == 200
    assert len(httpbin.requests) == 1


async def test_an_admitted_host_name_may_reach_a_private_address(httpbin: HttpBin, client: Client):
    port = port_of(httpbin)
    async with client(allow=["localhost"]) as http:
        result = await call(http, {"url": f"http://localhost:{port}/anything"})
        with pytest.raises(PermanentError, match=r"127\.0\.0\.1, a loopback address"):
            await call(http, {"url": f"{httpbin.url}/anything"})

    assert result.model_dump()["status"] == 200


# --- redirects: followed by hand, each hop checked -------------------------------------------


def redirect(httpbin: HttpBin, to: str, status: int = 302) -> str:
    return f"{httpbin.url}/redirect-to?url={quote(to, safe='')}&status_code={status}"


@pytest.mark.parametrize(
    ("target", "complaint"),
    [
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254, a link-local address"),
        ("http://127.0.0.2:{port}/anything", "127.0.0.2, a loopback address"),
        ("http://[::1]:{port}/anything", "::1, a loopback address"),
        ("file:///etc/passwd", "redirects to a file: URL, which is not followed"),
    ],
    ids=["metadata", "other-loopback", "ipv6-loopback", "file-scheme"],
)
async def test_a_redirect_from_an_allowed_host_to_a_refused_one_is_refused(
    httpbin: HttpBin, client: Client, target: str, complaint: str
):
    async with client(allow=LOCAL) as http:
        with pytest.raises(PermanentError) as caught:
            await call(http, {"url": redirect(httpbin, target.format(port=port_of(httpbin)))})

    assert complaint in caught.value.message
    assert [r.path for r in httpbin.requests] == ["/redirect-to"]


async def test_redirects_are_bounded(httpbin: HttpBin, client: Client):
    async with client(allow=LOCAL) as http:
        with pytest.raises(PermanentError, match="redirected more than 1 times"):
            await call(
                http,
                {
                    "url": redirect(httpbin, redirect(httpbin, f"{httpbin.url}/anything")),
                    "max_redirects": 1,
                },
            )


@pytest.mark.parametrize(
    ("status", "method", "body"),
    [(302, "GET", None), (303, "GET", None), (307, "POST", {"n": 1}), (308, "POST", {"n": 1})],
)
async def test_redirects_change_the_method_as_http_says(
    httpbin: HttpBin, client: Client, status: int, method: str, body: Any
):
    async with client(allow=LOCAL) as http:
        result = await call(
            http,
            {
                "method": "POST",
                "url": redirect(httpbin, f"{httpbin.url}/anything", status),
                "json": {"n": 1},
            },
        )

    echo = result.model_dump()["body"]
    assert (echo["method"], echo["json"]) == (method, body)


async def test_the_credential_goes_only_to_the_origin_it_was_sent_to(
    httpbin: HttpBin, client: Client
):
    credential = HttpBearerCredential(token=SecretStr("tok-s3cret"))
    port = port_of(httpbin)
    async with client(allow=[*LOCAL, "localhost"]) as http:
        same = await call(http, {"url": redirect(httpbin, f"{httpbin.url}/anything")}, credential)
        other = await call(
            http,
            {
                "url": redirect(httpbin, f"http://localhost:{port}/anything"),
                "headers": {"Cookie": "c=1"},
            },
            credential,
        )

    assert same.model_dump()["body"]["headers"]["authorization"] == "Bearer tok-s3cret"
    echoed = other.model_dump()["body"]["headers"]
    assert "authorization" not in echoed and "cookie" not in echoed
    assert echoed["host"] == f"localhost:{port}"


# --- the response cap --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "cap"),
    [
        ("/bytes/5000", 1024),  # streamed, no Content-Length
        ("/gzip/5000000", 100_000),  # ~5 KB on the wire, 5 MB decoded
        ("/anything?pad=" + "x" * 2000, 1024),  # refused on its Content-Length
    ],
    ids=["streamed", "gzip-bomb", "content-length"],
)
async def test_a_response_past_the_cap_fails_naming_the_cap(
    httpbin: HttpBin, client: Client, path: str, cap: int
):
    async with client(allow=LOCAL, max_response_bytes=cap) as http:
        with pytest.raises(PermanentError) as caught:
            await call(http, {"url": f"{httpbin.url}{path}"})

    assert f"larger than the cap of {cap} bytes (INTEGRATIONHUB_HTTP_MAX_RESPONSE_BYTES)" in (
        caught.value.message
    )
    # Only the origin: a query may hold a key, a path may be a secret (webhook URLs).
    assert "pad=" not in caught.value.message
    assert path.split("?")[0] not in caught.value.message
    assert httpbin.url in caught.value.message


async def test_a_compressed_response_within_the_cap_is_decoded(httpbin: HttpBin, client: Client):
    async with client(allow=LOCAL, max_response_bytes=100_000) as http:
        response = await http.get(f"{httpbin.url}/gzip/50000")

    assert response.content == b"\0" * 50_000
    assert "content-encoding" not in response.headers


async def test_the_client_keeps_working_after_a_capped_response(httpbin: HttpBin, client: Client):
    async with client(allow=LOCAL, max_response_bytes=1024) as http:
        for _ in range(3):
            with pytest.raises(PermanentError):
                await http.get(f"{httpbin.url}/bytes/100000")
        response = await http.get(f"{httpbin.url}/text")

    assert response.text == "plain words"
