"""How a credential authenticates a request, declared once on its type.

    class ZulipCredential(Credential):
        type: ClassVar[str] = "zulip"
        auth: ClassVar[AuthScheme] = BasicAuth("email", "api_key")

        site: str
        email: str
        api_key: SecretStr

A scheme's arguments name the credential's fields. A connector sends with ``auth=self.auth``:
the framework turns the scheme and the current credential into an ``httpx.Auth``, so connector
code never reads a secret to authenticate. The schemes:

=============================  =========================================================
``BasicAuth``                  ``Authorization: Basic`` (RFC 7617)
``BearerToken``                ``Authorization: Bearer <token>`` (RFC 6750)
``ApiKeyHeader``               a key in a header (``X-Api-Key``), the header's name fixed
                               or taken from a field
``ApiKeyQuery``                a key in a query parameter (only where an API insists)
``HmacSignature``              an HMAC of timestamp, method, path and body in a header
``OAuth2ClientCredentials``    a token from the token endpoint (RFC 6749 §4.4), cached
``OAuth2RefreshToken``         the stored access token, refreshed when expired or refused
                               (RFC 6749 §6) and written back to the credential store
=============================  =========================================================

OAuth 2 uses Authlib's protocol parts (token request encoding, client authentication, the token
model) and sends through the hub's own guarded client. Authlib's httpx client is not used: it is
a client of its own (its own pool, no SSRF guard), and Authlib 1.9 binds it to ``httpx2`` when
that is installed. Tokens live in the engine's ``TokenCache``, keyed by the credential's content,
with one lock per key: concurrent calls fetch or refresh once. A refreshed token goes back to
the store through the engine's ``save_credential`` hook (connectors never write to Vault).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import httpx
import structlog
from authlib.oauth2.auth import ClientAuth
from authlib.oauth2.rfc6749 import OAuth2Token
from authlib.oauth2.rfc6749.parameters import prepare_token_request
from pydantic import SecretStr

from integrationhub.core.http import raise_for_status
from integrationhub.errors import (
    ConfigurationError,
    IntegrationHubError,
    PermanentError,
    RetryableError,
)

if TYPE_CHECKING:
    from integrationhub.connectors.base import Credential

__all__ = [
    "ApiKeyHeader",
    "ApiKeyQuery",
    "AuthScheme",
    "AuthSession",
    "BasicAuth",
    "BearerToken",
    "HmacSignature",
    "OAuth2ClientCredentials",
    "OAuth2RefreshToken",
    "SaveCredential",
    "TokenCache",
]

log = structlog.get_logger()

SaveCredential = Callable[["Credential"], Awaitable[None]]
_TOKEN_CHARS = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)
_LEEWAY = 30  # seconds before its expiry that a token counts as expired


def _header_name(name: str) -> str:
    if not name or not set(name) <= _TOKEN_CHARS:
        raise ConfigurationError(f"{name!r} is not a valid HTTP header name")
    return name


def _value(credential: Credential, name: str) -> str:
    """A field's value for a request: revealed, and refused when empty or multi-line."""
    value = getattr(credential, name, None)
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if value is None or value == "":
        raise PermanentError(
            f"the {credential.type} credential has no {name}: it is needed to sign in"
        )
    text = str(value)
    if any(c in text for c in "\r\n\x00"):
        raise PermanentError(f"the {credential.type} credential's {name} contains a line break")
    return text


def _optional(credential: Credential, name: str | None) -> str | None:
    if name is None or getattr(credential, name, None) in (None, ""):
        return None
    return _value(credential, name)


# --- the seam ----------------------------------------------------------------------------------


class TokenCache:
    """Access tokens the hub obtained, by credential content, with one lock per credential so
    concurrent calls fetch or refresh once. In process; the engine owns one."""

    def __init__(self) -> None:
        self._tokens: dict[str, OAuth2Token] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def get(self, key: str) -> OAuth2Token | None:
        return self._tokens.get(key)

    def put(self, key: str, token: OAuth2Token) -> None:
        self._tokens[key] = token

    def lock(self, key: str) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    @staticmethod
    def key(*parts: str | None) -> str:
        return hashlib.sha256("\0".join(p or "" for p in parts).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class AuthSession:
    """What a scheme may use besides the credential: the hub's client for token requests, the
    token cache, and the hook that writes a changed credential back to the store."""

    http: httpx.AsyncClient
    tokens: TokenCache = field(default_factory=TokenCache)
    save: SaveCredential | None = None


class AuthScheme(ABC):
    """How a credential type authenticates requests; its arguments name the type's fields."""

    scheme: ClassVar[str]

    @abstractmethod
    def fields(self) -> tuple[str, ...]:
        """The fields the scheme reads; the credential type must declare each."""

    @abstractmethod
    def httpx_auth(self, credential: Credential, session: AuthSession) -> httpx.Auth:
        """An ``httpx.Auth`` that authenticates requests as ``credential``."""

    def describe(self) -> dict[str, Any]:
        return {"scheme": self.scheme}


class _SyncOnly(httpx.Auth):
    """Base of flows that only set headers or the URL: fine for both client kinds."""


class _Headers(_SyncOnly):
    def __init__(self, headers: dict[str, str]) -> None:
        self._headers = headers

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers.update(self._headers)
        yield request


# --- static secrets ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BasicAuth(AuthScheme):
    """HTTP Basic (RFC 7617): ``username`` and ``password`` name the fields."""

    username: str
    password: str
    scheme: ClassVar[str] = "basic"

    def fields(self) -> tuple[str, ...]:
        return (self.username, self.password)

    def httpx_auth(self, credential: Credential, session: AuthSession) -> httpx.Auth:
        return httpx.BasicAuth(_value(credential, self.username), _value(credential, self.password))


@dataclass(frozen=True, slots=True)
class BearerToken(AuthScheme):
    """``Authorization: Bearer <token>`` (RFC 6750); ``token`` names the field."""

    token: str
    scheme: ClassVar[str] = "bearer"

    def fields(self) -> tuple[str, ...]:
        return (self.token,)

    def httpx_auth(self, credential: Credential, session: AuthSession) -> httpx.Auth:
        return _Headers({"Authorization": f"Bearer {_value(credential, self.token)}"})


@dataclass(frozen=True, slots=True)
class ApiKeyHeader(AuthScheme):
    """The key (field ``key``) in a header: ``header`` names it, or the field ``header_field``
    holds its name when each credential says (the generic ``http-api-key`` type)."""

    key: str
    header: str = "X-Api-Key"
    header_field: str | None = None
    prefix: str = ""
    scheme: ClassVar[str] = "api-key-header"

    def __post_init__(self) -> None:
        _header_name(self.header)

    def fields(self) -> tuple[str, ...]:
        return (self.key,) if self.header_field is None else (self.key, self.header_field)

    def httpx_auth(self, credential: Credential, session: AuthSession) -> httpx.Auth:
        header = self.header
        if self.header_field is not None:
            header = _optional(credential, self.header_field) or self.header
            try:
                _header_name(header)
            except ConfigurationError as exc:
                raise PermanentError(exc.message) from None
        return _Headers({header: self.prefix + _value(credential, self.key)})


@dataclass(frozen=True, slots=True)
class ApiKeyQuery(AuthScheme):
    """The key (field ``key``) as the query parameter ``param``. Keys in URLs end up in
    servers' logs: only for APIs that take nothing else."""

    key: str
    param: str = "api_key"
    scheme: ClassVar[str] = "api-key-query"

    def fields(self) -> tuple[str, ...]:
        return (self.key,)

    def httpx_auth(self, credential: Credential, session: AuthSession) -> httpx.Auth:
        return _QueryParam(self.param, _value(credential, self.key))


class _QueryParam(_SyncOnly):
    def __init__(self, name: str, value: str) -> None:
        self._name, self._value = name, value

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.url = request.url.copy_merge_params({self._name: self._value})
        yield request


@dataclass(frozen=True, slots=True)
class HmacSignature(AuthScheme):
    """An HMAC of each request with the secret (field ``secret``), hex-encoded in ``header``
    after ``<algorithm>=``. The message is, joined by newlines: the Unix time sent in
    ``timestamp_header`` (left out when that is None), the method, the path with its query, and
    then the raw body. ``key_id`` names an optional field sent in ``key_id_header``."""

    secret: str
    header: str = "X-Signature"
    algorithm: Literal["sha256", "sha384", "sha512", "sha1"] = "sha256"
    timestamp_header: str | None = "X-Timestamp"
    key_id: str | None = None
    key_id_header: str = "X-Key-Id"
    encoding: Literal["hex", "base64"] = "hex"
    scheme: ClassVar[str] = "hmac"

    def __post_init__(self) -> None:
        for name in (self.header, self.key_id_header, self.timestamp_header):
            if name is not None:
                _header_name(name)

    def fields(self) -> tuple[str, ...]:
        return (self.secret,) if self.key_id is None else (self.secret, self.key_id)

    def httpx_auth(self, credential: Credential, session: AuthSession) -> httpx.Auth:
        return _Hmac(self, _value(credential, self.secret), _optional(credential, self.key_id))

    def sign(self, request: httpx.Request, secret: str, *, now: float | None = None) -> None:
        parts = [request.method.encode(), request.url.raw_path]
        if self.timestamp_header is not None:
            stamp = str(int(time.time() if now is None else now))
            request.headers[self.timestamp_header] = stamp
            parts.insert(0, stamp.encode())
        message = b"\n".join([*parts, request.content])
        digest = hmac.new(secret.encode(), message, self.algorithm).digest()
        text = digest.hex() if self.encoding == "hex" else base64.b64encode(digest).decode()
        request.headers[self.header] = f"{self.algorithm}={text}"


class _Hmac(_SyncOnly):
    requires_request_body = True

    def __init__(self, scheme: HmacSignature, secret: str, key_id: str | None) -> None:
        self._scheme, self._secret, self._key_id = scheme, secret, key_id

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self._key_id is not None:
            request.headers[self._scheme.key_id_header] = self._key_id
        self._scheme.sign(request, self._secret)
        yield request


# --- OAuth 2 -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OAuth2ClientCredentials(AuthScheme):
    """A bearer token from the token endpoint with the client credentials grant (RFC 6749
    §4.4), kept until it expires; a 401 fetches a new one once. The arguments name fields;
    ``scope``, ``audience`` and ``auth_method`` (``client_secret_basic``, the default, or
    ``client_secret_post``) are optional ones."""

    token_url: str = "token_url"
    client_id: str = "client_id"
    client_secret: str = "client_secret"
    scope: str | None = "scope"
    audience: str | None = "audience"
    auth_method: str | None = "auth_method"
    scheme: ClassVar[str] = "oauth2-client-credentials"

    def fields(self) -> tuple[str, ...]:
        return (self.token_url, self.client_id, self.client_secret)

    def httpx_auth(self, credential: Credential, session: AuthSession) -> httpx.Auth:
        return _ClientCredentialsFlow(self, credential, session)


@dataclass(frozen=True, slots=True)
class OAuth2RefreshToken(AuthScheme):
    """The stored access token, refreshed with the refresh token (RFC 6749 §6) when it has
    expired (``expires_at``, Unix time) or the API answers 401; the new tokens are written back
    to the credential store. ``client_secret`` may be empty for a public client."""

    token_url: str = "token_url"
    client_id: str = "client_id"
    client_secret: str | None = "client_secret"
    refresh_token: str = "refresh_token"
    access_token: str = "access_token"
    expires_at: str = "expires_at"
    scope: str | None = "scope"
    auth_method: str | None = "auth_method"
    scheme: ClassVar[str] = "oauth2-refresh-token"

    def fields(self) -> tuple[str, ...]:
        return (
            self.token_url,
            self.client_id,
            self.refresh_token,
            self.access_token,
            self.expires_at,
        )

    def httpx_auth(self, credential: Credential, session: AuthSession) -> httpx.Auth:
        return _RefreshFlow(self, credential, session)


class _BearerFlow(httpx.Auth):
    """Send with the current token; on a 401, get a new one once and send again."""

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        raise RuntimeError("OAuth 2 authentication needs the hub's async client")
        yield request  # pragma: no cover

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = await self.token(stale=None)
        request.headers["Authorization"] = f"Bearer {token['access_token']}"
        response = yield request
        if response.status_code == 401:  # httpx reads and closes the refused answer
            token = await self.token(stale=token)
            request.headers["Authorization"] = f"Bearer {token['access_token']}"
            yield request

    async def token(self, *, stale: OAuth2Token | None) -> OAuth2Token:
        raise NotImplementedError


class _ClientCredentialsFlow(_BearerFlow):
    def __init__(
        self, scheme: OAuth2ClientCredentials, credential: Credential, session: AuthSession
    ) -> None:
        self._scheme, self._credential, self._session = scheme, credential, session

    async def token(self, *, stale: OAuth2Token | None) -> OAuth2Token:
        s, c = self._scheme, self._credential
        url, client_id, secret = (
            _value(c, s.token_url),
            _value(c, s.client_id),
            _value(c, s.client_secret),
        )
        scope, audience = _optional(c, s.scope), _optional(c, s.audience)
        key = TokenCache.key("client_credentials", url, client_id, secret, scope, audience)
        async with self._session.tokens.lock(key):
            cached = self._session.tokens.get(key)
            if cached is not None and not _expired(cached) and not _same(cached, stale):
                return cached
            body = prepare_token_request("client_credentials", scope=scope, audience=audience)
            token = await _token_request(
                self._session.http,
                url,
                body,
                client=ClientAuth(client_id, secret, _method(c, s.auth_method)),
            )
            self._session.tokens.put(key, token)
            log.debug("oauth2.token_fetched", token_url=_host(url))
            return token


class _RefreshFlow(_BearerFlow):
    def __init__(
        self, scheme: OAuth2RefreshToken, credential: Credential, session: AuthSession
    ) -> None:
        self._scheme, self._credential, self._session = scheme, credential, session

    async def token(self, *, stale: OAuth2Token | None) -> OAuth2Token:
        s, c = self._scheme, self._credential
        access = _optional(c, s.access_token)
        if stale is None and access is not None:
            stored = OAuth2Token(
                {"access_token": access, "expires_at": getattr(c, s.expires_at, None)}
            )
            if not _expired(stored):
                return stored
        url, client_id, refresh = (
            _value(c, s.token_url),
            _value(c, s.client_id),
            _value(c, s.refresh_token),
        )
        key = TokenCache.key("refresh_token", url, client_id, refresh)
        async with self._session.tokens.lock(key):
            # Another call may have refreshed this very refresh token meanwhile: use its result.
            cached = self._session.tokens.get(key)
            if cached is not None and not _expired(cached) and not _same(cached, stale):
                return cached
            secret = _optional(c, s.client_secret)
            method = _method(c, s.auth_method) if secret is not None else "none"
            body = prepare_token_request(
                "refresh_token", refresh_token=refresh, scope=_optional(c, s.scope)
            )
            token = await _token_request(
                self._session.http, url, body, client=ClientAuth(client_id, secret, method)
            )
            self._session.tokens.put(key, token)
            log.info("oauth2.token_refreshed", token_url=_host(url), credential_type=c.type)
            await self._save(token)
            return token

    async def _save(self, token: OAuth2Token) -> None:
        s, c = self._scheme, self._credential
        if self._session.save is None:
            log.warning("oauth2.refreshed_token_not_saved", reason="no credential store in reach")
            return
        update: dict[str, Any] = {
            s.access_token: SecretStr(str(token["access_token"])),
            s.expires_at: token.get("expires_at"),
        }
        if token.get("refresh_token"):  # rotated: the old one may no longer work
            update[s.refresh_token] = SecretStr(str(token["refresh_token"]))
        try:
            await self._session.save(c.model_copy(update=update))
        except IntegrationHubError as exc:
            # The new token still serves this process (the cache); the store keeps the old one.
            log.warning("oauth2.refreshed_token_not_saved", reason=exc.message)


def _expired(token: OAuth2Token) -> bool:
    return bool(token.is_expired(leeway=_LEEWAY))


def _same(token: OAuth2Token, other: OAuth2Token | None) -> bool:
    return other is not None and token.get("access_token") == other.get("access_token")


def _method(credential: Credential, name: str | None) -> str:
    method = _optional(credential, name) or "client_secret_basic"
    if method not in ("client_secret_basic", "client_secret_post"):
        raise PermanentError(f"OAuth 2 client authentication {method!r} is not supported")
    return method


def _host(url: str) -> str:
    return httpx.URL(url).host


async def _token_request(
    http: httpx.AsyncClient, url: str, body: str, *, client: ClientAuth
) -> OAuth2Token:
    """POST to the token endpoint; the token, or the hub's error for what went wrong."""
    headers = {"Accept": "application/json", "Content-Type": "application/x-www-form-urlencoded"}
    url, headers, body = client.prepare("POST", url, headers, body)
    what = f"OAuth 2 token endpoint {_host(url)}"
    # Asking for a token is not the step's effect: whatever the failure, the call is still to
    # be made, so none of these errors says that its effect may have happened.
    try:
        response = await http.post(url, content=body.encode(), headers=headers)
    except httpx.TransportError as exc:
        raise RetryableError(f"{what} failed: {type(exc).__name__}") from exc
    try:
        data = response.json()
    except ValueError:
        data = None
    if isinstance(data, dict) and "error" in data and response.status_code < 500:
        error = str(data["error"])[:100]
        detail = str(data.get("error_description") or "")[:200]
        raise PermanentError(f"{what} refused the request: {error}{': ' if detail else ''}{detail}")
    try:
        raise_for_status(response, what=what)
    except RetryableError as exc:
        if exc.effect_possible:  # a 500, 502 or 504 of the token endpoint
            raise RetryableError(exc.message, retry_after=exc.retry_after) from exc
        raise
    if not isinstance(data, dict) or not data.get("access_token"):
        raise PermanentError(f"{what} answered {response.status_code} without an access_token")
    if str(data.get("token_type", "bearer")).lower() != "bearer":
        raise PermanentError(
            f"{what} issued a {str(data['token_type'])[:40]!r} token, not a bearer one"
        )
    return OAuth2Token(data)
