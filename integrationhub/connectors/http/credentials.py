"""Credential types for plain HTTP APIs, one per way of signing in. Each declares its fields
and its ``auth`` scheme; any connector may use them (``BaseConnector[HttpBearerCredential]``)."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

import httpx
from pydantic import AfterValidator, Field, SecretStr, StringConstraints

from integrationhub.connectors.auth import (
    ApiKeyHeader,
    AuthScheme,
    BasicAuth,
    BearerToken,
    HmacSignature,
    OAuth2ClientCredentials,
    OAuth2RefreshToken,
)
from integrationhub.connectors.base import Credential

__all__ = [
    "HttpApiKeyCredential",
    "HttpBasicCredential",
    "HttpBearerCredential",
    "HttpHmacCredential",
    "OAuth2ClientCredential",
    "OAuth2RefreshCredential",
    "http_url",
]


def http_url(value: str) -> str:
    """An absolute http(s) URL without user info or fragment."""
    value = value.strip()
    if any(c.isspace() or ord(c) < 32 for c in value):
        raise ValueError("must not contain spaces or control characters")
    try:
        url = httpx.URL(value)
    except httpx.InvalidURL as exc:
        raise ValueError(f"is not a URL: {exc}") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError("must be an http:// or https:// URL with a host")
    if url.userinfo:
        raise ValueError("must not carry a user name or password; the credential's fields do")
    if url.fragment:
        raise ValueError("must not have a fragment")
    return value


HttpUrl = Annotated[str, StringConstraints(max_length=2048), AfterValidator(http_url)]
HeaderName = Annotated[str, StringConstraints(pattern=r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$")]


class _HttpCredential(Credential):
    base_url: HttpUrl | None = Field(
        None,
        description="requests with this credential may only go to URLs under this one; a url "
        "that starts with / is joined to it",
    )


class HttpBasicCredential(_HttpCredential):
    """HTTP Basic: a user name and a password."""

    type: ClassVar[str] = "http-basic"
    auth: ClassVar[AuthScheme] = BasicAuth("username", "password")

    username: str = Field(min_length=1, max_length=256, pattern=r"^[^:\r\n]*$")
    password: SecretStr


class HttpBearerCredential(_HttpCredential):
    """A bearer token (``Authorization: Bearer ...``): an API token, a personal access token."""

    type: ClassVar[str] = "http-bearer"
    auth: ClassVar[AuthScheme] = BearerToken("token")

    token: SecretStr = Field(min_length=1)


class HttpApiKeyCredential(_HttpCredential):
    """An API key sent in a header, ``X-Api-Key`` unless ``header`` names another."""

    type: ClassVar[str] = "http-api-key"
    auth: ClassVar[AuthScheme] = ApiKeyHeader("key", header_field="header")

    key: SecretStr = Field(min_length=1)
    header: HeaderName = "X-Api-Key"


class HttpHmacCredential(_HttpCredential):
    """A shared secret that signs each request (``HmacSignature`` in ``connectors/auth.py``
    says what is signed); ``key_id`` is sent in ``X-Key-Id`` when set."""

    type: ClassVar[str] = "http-hmac"
    auth: ClassVar[AuthScheme] = HmacSignature("secret", key_id="key_id")

    secret: SecretStr = Field(min_length=1)
    key_id: str | None = Field(None, max_length=256, pattern=r"^[^\r\n]*$")


AuthMethod = Literal["client_secret_basic", "client_secret_post"]


class OAuth2ClientCredential(_HttpCredential):
    """OAuth 2 client credentials (a service account): the hub fetches and caches tokens."""

    type: ClassVar[str] = "oauth2-client-credentials"
    auth: ClassVar[AuthScheme] = OAuth2ClientCredentials()

    token_url: HttpUrl
    client_id: str = Field(min_length=1, max_length=512)
    client_secret: SecretStr = Field(min_length=1)
    scope: str | None = Field(None, max_length=2048)
    audience: str | None = Field(None, max_length=2048)
    auth_method: AuthMethod = "client_secret_basic"


class OAuth2RefreshCredential(_HttpCredential):
    """An OAuth 2 grant of a user (tokens from an authorization code flow done elsewhere): the
    hub refreshes the access token when it expires and stores the new tokens here."""

    type: ClassVar[str] = "oauth2-refresh-token"
    auth: ClassVar[AuthScheme] = OAuth2RefreshToken()

    token_url: HttpUrl
    client_id: str = Field(min_length=1, max_length=512)
    client_secret: SecretStr | None = None
    refresh_token: SecretStr = Field(min_length=1)
    access_token: SecretStr | None = None
    expires_at: int | None = Field(None, description="Unix time the access token expires")
    scope: str | None = Field(None, max_length=2048)
    auth_method: AuthMethod = "client_secret_basic"
