"""The ``http-request`` action: one HTTP request, as a flow step."""

from __future__ import annotations

import base64
from typing import Annotated, Any, Literal

import httpx
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from integrationhub.connectors.base import BaseConnector, action
from integrationhub.connectors.http.credentials import (
    HttpApiKeyCredential,
    HttpBasicCredential,
    HttpBearerCredential,
    HttpHmacCredential,
    OAuth2ClientCredential,
    OAuth2RefreshCredential,
    http_url,
)
from integrationhub.core.http import follow_redirects, raise_for_status, transport_failure
from integrationhub.errors import PermanentError

__all__ = ["HttpConnector", "HttpResponseReceived", "SendHttpRequest"]

# Framed by httpx from the URL and body; a caller's value would contradict them.
_MANAGED_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})
_TEXT_TYPES = ("text/", "json", "xml", "javascript", "x-www-form-urlencoded", "yaml", "csv")


def _url(value: str) -> str:
    return value if value.startswith("/") and not value.startswith("//") else http_url(value)


def _header_value(value: str) -> str:
    # A CR or LF would let the value end the header and start another one of the caller's.
    if any(c in value for c in "\r\n\x00"):
        raise ValueError("must not contain CR, LF or NUL")
    return value


def _not_managed(headers: dict[str, str]) -> dict[str, str]:
    managed = sorted(name for name in headers if name.lower() in _MANAGED_HEADERS)
    if managed:
        raise ValueError(f"{', '.join(managed)} are set by the hub, not by the caller")
    return headers


HeaderName = Annotated[str, StringConstraints(pattern=r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$")]
HeaderValue = Annotated[str, StringConstraints(max_length=8192), AfterValidator(_header_value)]
Scalar = str | int | float | bool
Status = Annotated[int, Field(ge=100, le=599)]


class SendHttpRequest(BaseModel):
    """An HTTP request: method, absolute http(s) URL (or a path under the credential's
    ``base_url``), headers, query, and a ``json`` or ``form`` body."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    method: Annotated[
        Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        BeforeValidator(lambda v: v.upper() if isinstance(v, str) else v),
    ] = "GET"
    url: Annotated[str, StringConstraints(min_length=1, max_length=8192), AfterValidator(_url)]
    headers: Annotated[dict[HeaderName, HeaderValue], AfterValidator(_not_managed)] = Field(
        default_factory=dict, max_length=64
    )
    query: dict[str, Scalar | list[Scalar]] = Field(default_factory=dict, max_length=100)
    json_body: Any = Field(None, alias="json", description="a JSON body (any JSON value)")
    form: dict[str, Scalar] | None = Field(
        None, max_length=200, description="an application/x-www-form-urlencoded body"
    )
    accept_status: list[Status] = Field(
        default_factory=list,
        max_length=50,
        description="statuses that succeed although 4xx/5xx (e.g. [404]); others fail, "
        "5xx, 408, 409, 425 and 429 as retryable",
    )
    follow_redirects: bool = True
    max_redirects: int = Field(5, ge=0, le=10)

    @model_validator(mode="after")
    def _one_body(self) -> SendHttpRequest:
        if self.json_body is not None and self.form is not None:
            raise ValueError("give a json or a form body, not both")
        return self


class HttpResponseReceived(BaseModel):
    """The answer: status, headers (repeated ones joined by ", "), and the body, parsed when
    JSON, as text when textual, else base64 in ``body_base64``. ``url`` is the last URL asked
    (after redirects), without its query."""

    status: int
    headers: dict[str, str]
    body: Any = None
    body_base64: str | None = None
    url: str


AnyHttpCredential = (
    HttpBasicCredential
    | HttpBearerCredential
    | HttpApiKeyCredential
    | HttpHmacCredential
    | OAuth2ClientCredential
    | OAuth2RefreshCredential
    | None
)


class HttpConnector(BaseConnector[AnyHttpCredential]):
    """Any HTTP request, with or without a credential of the http-* or oauth2-* types."""

    name = "http"

    # Not safe to repeat: the flag is per action, and POST or PATCH may act twice. A step with
    # an idempotent method can say ``on_unknown_outcome: repeat``.
    @action("http-request", safe_to_repeat=False)
    async def send_request(self, params: SendHttpRequest) -> HttpResponseReceived:
        """Send one HTTP request; 2xx (and any status in ``accept_status``) succeed, a JSON
        answer is parsed. The credential's sign-in is applied by the hub."""
        url = self._target(params.url)
        what = f"{params.method} {url.copy_with(query=None, fragment=None)}"
        request = self.http.build_request(
            params.method,
            url,
            params=params.query or None,
            headers=params.headers,
            json=params.json_body,
            data=params.form,
        )
        try:
            if params.follow_redirects:
                response = await follow_redirects(
                    self.http, request, auth=self.auth, max_redirects=params.max_redirects
                )
            else:
                response = await self.http.send(request, auth=self.auth)
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            raise PermanentError(f"{what} cannot be sent: {exc}") from exc
        except httpx.TransportError as exc:
            raise transport_failure(what, exc) from exc
        if response.status_code not in params.accept_status:
            raise_for_status(response, what=what)
        return _received(response)

    def _target(self, raw: str) -> httpx.URL:
        """The URL to ask: ``raw``, or joined to the credential's ``base_url``, which it must
        not leave."""
        base_text = getattr(self.credential, "base_url", None)
        if base_text is None:
            if raw.startswith("/"):
                raise PermanentError(
                    f"url {raw[:100]!r} is a path: give an absolute URL, or a credential "
                    "with a base_url"
                )
            return httpx.URL(raw)
        base = httpx.URL(base_text)
        url = base.join(base.path.rstrip("/") + raw) if raw.startswith("/") else httpx.URL(raw)
        root = base.path.rstrip("/")
        inside = (url.scheme, url.host, url.port) == (base.scheme, base.host, base.port) and (
            url.path == root or url.path.startswith(root + "/")
        )
        if not inside:
            raise PermanentError(
                f"url {str(url.copy_with(query=None))[:200]!r} is outside the credential's "
                f"base_url {base_text!r}"
            )
        return url


def _received(response: httpx.Response) -> HttpResponseReceived:
    content_type = response.headers.get("Content-Type", "").lower()
    body: Any = None
    body_base64 = None
    if response.content:
        if "json" in content_type:
            try:
                body = response.json()
            except ValueError:
                body = response.text
        elif not content_type or any(kind in content_type for kind in _TEXT_TYPES):
            body = response.text
        else:
            body_base64 = base64.b64encode(response.content).decode()
    headers: dict[str, str] = {}
    for name, value in response.headers.multi_items():
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return HttpResponseReceived(
        status=response.status_code,
        headers=headers,
        body=body,
        body_base64=body_base64,
        url=str(response.request.url.copy_with(query=None)),
    )
