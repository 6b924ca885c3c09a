"""Credentials on Vault or OpenBao (KV v2), behind the ``CredentialStore`` seam.

Layout: one KV v2 secret per credential at ``<mount>/data/<path_prefix>/<id>``. Its type and
field names live in the secret's ``custom_metadata``, so ``list()`` and ``metadata()`` answer
from metadata alone and never read a secret value.

Quirks kept in one place:

- hvac is synchronous (requests): every call runs in a worker thread via ``asyncio.to_thread``.
- ``custom_metadata`` holds at most 64 keys with string values of at most 512 bytes, so the field
  names are stored as JSON lists split over ``fields.0``, ``fields.1``, ...; posting it replaces
  the whole map, so stale chunks vanish.
- The metadata is written before the data: a write that fails halfway leaves a metadata-only
  entry (no version), which every read treats as missing, never data without a type.
- hvac falls back to ``VAULT_TOKEN`` and ``~/.vault-token`` when given no token; the client here is
  always given one explicitly (empty until the AppRole login).
"""

from __future__ import annotations

import asyncio
import copy
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

import hvac
import hvac.exceptions
import hvac.utils
import requests
import structlog
from prometheus_client import Counter, Histogram
from pydantic import TypeAdapter, ValidationError

from integrationhub.core.credentials import StoredCredential
from integrationhub.errors import (
    ConfigurationError,
    CredentialInvalid,
    CredentialNotFound,
    CredentialStoreUnavailable,
)
from integrationhub.models.credential import CredentialId, CredentialPublic
from integrationhub.settings import VaultSettings

__all__ = ["VaultCredentialStore"]

log = structlog.get_logger()

CACHE_LOOKUPS = Counter(
    "integrationhub_credential_cache",
    "Credential reads answered from the in-process cache (hit) or from Vault (miss).",
    ["result"],
)
VAULT_REQUEST_SECONDS = Histogram(
    "integrationhub_vault_request_seconds",
    "Duration of one request to Vault/OpenBao, failures included.",
    ["operation"],
)

T = TypeVar("T")
_ID = TypeAdapter(CredentialId)
_METADATA_VALUE_BYTES = 512
_METADATA_FIELD_CHUNKS = 60  # 64 keys allowed, minus "type" and room to grow
_RELOGIN_MARGIN = 30.0  # seconds before expiry when an AppRole token is renewed by login
_LIST_CONCURRENCY = 8
# Transient or "the server cannot serve now": sealed (503), uninitialised (501), 5xx, 429.
_UNAVAILABLE = (
    hvac.exceptions.VaultDown,
    hvac.exceptions.VaultNotInitialized,
    hvac.exceptions.InternalServerError,
    hvac.exceptions.BadGateway,
    hvac.exceptions.RateLimitExceeded,
    hvac.exceptions.UnexpectedError,
    requests.RequestException,
)
_DENIED = (hvac.exceptions.Forbidden, hvac.exceptions.Unauthorized)


@dataclass(frozen=True, slots=True)
class _Cached:
    expires_at: float
    credential: StoredCredential


class VaultCredentialStore:
    """``CredentialStore`` on a KV v2 mount, with token or AppRole auth and a read cache."""

    def __init__(self, settings: VaultSettings, *, addr: str, token: str | None) -> None:
        if token is None and settings.token is not None:
            token = settings.token.get_secret_value()
        self._approle: tuple[str, str] | None = None
        if not token:
            if not (settings.role_id and settings.secret_id):
                raise ConfigurationError(
                    "Vault/OpenBao needs VAULT_TOKEN, or VAULT_ROLE_ID and VAULT_SECRET_ID"
                )
            self._approle = (settings.role_id, settings.secret_id.get_secret_value())
        self._settings = settings
        self._addr = _without_userinfo(addr)
        self._mount = settings.mount.strip("/")
        self._prefix = settings.path_prefix.strip("/")
        verify: bool | str = settings.cacert or True
        if settings.skip_verify:
            verify = False
        self._client = hvac.Client(
            url=addr,
            token=token or "",
            namespace=settings.namespace,
            verify=verify,
            timeout=settings.timeout,
        )
        self._kv = self._client.secrets.kv.v2
        self._token_expires_at = 0.0  # monotonic time to log in again (AppRole only)
        self._logins = 0
        self._login_lock = asyncio.Lock()
        self._cache: dict[str, _Cached] = {}
        self._generation: dict[str, int] = {}

    # --- CredentialStore -----------------------------------------------------------------------

    async def read(self, credential_id: str) -> StoredCredential:
        path = self._path(credential_id)
        cached = self._cache.get(credential_id)
        if cached is not None and cached.expires_at > time.monotonic():
            CACHE_LOOKUPS.labels(result="hit").inc()
            return _copy(cached.credential)
        CACHE_LOOKUPS.labels(result="miss").inc()
        generation = self._generation.get(credential_id, 0)
        try:
            response = await self._call(
                "read",
                lambda: self._kv.read_secret_version(
                    path=path, mount_point=self._mount, raise_on_deleted_version=True
                ),
            )
        except hvac.exceptions.InvalidPath:
            raise CredentialNotFound(credential_id) from None
        data, meta = response["data"]["data"], response["data"]["metadata"]
        credential = StoredCredential(
            metadata=CredentialPublic(
                id=credential_id,
                type=_type(meta.get("custom_metadata")),
                fields=sorted(data),
                version=meta["version"],
                updated_at=_time(meta["created_time"]),
            ),
            data=data,
        )
        # A write or delete during this read bumps the generation: do not cache a stale copy.
        ttl = self._settings.cache_ttl
        if ttl > 0 and self._generation.get(credential_id, 0) == generation:
            self._cache[credential_id] = _Cached(time.monotonic() + ttl, _copy(credential))
        return credential

    async def write(
        self, credential_id: str, *, type: str, data: dict[str, Any]
    ) -> CredentialPublic:
        path = self._path(credential_id)
        fields = sorted(data)
        custom_metadata = _custom_metadata(type=type, fields=fields)
        metadata_url = hvac.utils.format_url(
            "/v1/{mount}/metadata/{path}", mount=self._mount, path=path
        )
        try:
            # Straight to the adapter: hvac's update_metadata would also reset
            # delete_version_after to "0s" on every write.
            await self._call(
                "write",
                lambda: self._client.adapter.post(
                    metadata_url, json={"custom_metadata": custom_metadata}
                ),
            )
            response = await self._call(
                "write",
                lambda: self._kv.create_or_update_secret(
                    path=path, secret=data, mount_point=self._mount
                ),
            )
        finally:
            self._invalidate(credential_id)
        log.info("credential.written", credential_id=credential_id, type=type)
        return CredentialPublic(
            id=credential_id,
            type=type,
            fields=fields,
            version=response["data"]["version"],
            updated_at=_time(response["data"]["created_time"]),
        )

    async def metadata(self, credential_id: str) -> CredentialPublic:
        path = self._path(credential_id)
        try:
            response = await self._call(
                "metadata",
                lambda: self._kv.read_secret_metadata(path=path, mount_point=self._mount),
            )
        except hvac.exceptions.InvalidPath:
            raise CredentialNotFound(credential_id) from None
        meta = response["data"]
        version = meta.get("current_version") or 0
        current = (meta.get("versions") or {}).get(str(version))
        if not version or current is None or current["deletion_time"] or current["destroyed"]:
            raise CredentialNotFound(credential_id)
        custom = meta.get("custom_metadata")
        return CredentialPublic(
            id=credential_id,
            type=_type(custom),
            fields=_fields(custom),
            version=version,
            updated_at=_time(current["created_time"]),
        )

    async def list(self) -> list[CredentialPublic]:
        try:
            response = await self._call(
                "list", lambda: self._kv.list_secrets(path=self._prefix, mount_point=self._mount)
            )
        except hvac.exceptions.InvalidPath:
            return []
        ids = [key for key in response["data"]["keys"] if _is_valid_id(key)]
        limit = asyncio.Semaphore(_LIST_CONCURRENCY)

        async def one(credential_id: str) -> CredentialPublic | None:
            async with limit:
                try:
                    return await self.metadata(credential_id)
                except CredentialNotFound:  # deleted meanwhile, or a half-written entry
                    return None

        found = await asyncio.gather(*(one(credential_id) for credential_id in ids))
        return sorted((c for c in found if c is not None), key=lambda c: c.id)

    async def delete(self, credential_id: str) -> None:
        path = self._path(credential_id)
        try:
            await self._call(
                "delete", lambda: self._kv.read_secret_metadata(path=path, mount_point=self._mount)
            )
        except hvac.exceptions.InvalidPath:
            raise CredentialNotFound(credential_id) from None
        try:
            await self._call(
                "delete",
                lambda: self._kv.delete_metadata_and_all_versions(
                    path=path, mount_point=self._mount
                ),
            )
        finally:
            self._invalidate(credential_id)
        log.info("credential.deleted", credential_id=credential_id)

    async def check(self) -> None:
        response = await self._timed(
            "check", lambda: self._client.sys.read_health_status(method="GET")
        )
        # hvac answers a dict for JSON bodies and the raw response otherwise.
        health = response if isinstance(response, dict) else {}
        if not health.get("initialized") or health.get("sealed"):
            raise self._unavailable("check", "sealed or not initialised")
        await self._call("check", lambda: self._client.auth.token.lookup_self())

    async def close(self) -> None:
        await asyncio.to_thread(self._client.adapter.close)

    # --- calls, auth and error translation ----------------------------------------------------

    async def _call(self, operation: str, fn: Callable[[], T]) -> T:
        """Run one hvac call, logging in first with AppRole when needed, and once more when
        Vault answers 403 (the token expired or was revoked)."""
        await self._login()
        logins = self._logins
        try:
            return await self._timed(operation, fn)
        except _DENIED:
            if self._approle is None:
                raise self._denied(operation) from None
        await self._login(replacing=logins)
        try:
            return await self._timed(operation, fn)
        except _DENIED:
            raise self._denied(operation) from None

    async def _timed(self, operation: str, fn: Callable[[], T]) -> T:
        started = time.perf_counter()
        try:
            return await asyncio.to_thread(fn)
        except _UNAVAILABLE as exc:
            raise self._unavailable(operation, type(exc).__name__) from exc
        except hvac.exceptions.InvalidPath as exc:
            if "no handler for route" in _errors(exc):  # the mount itself is missing
                raise ConfigurationError(
                    f"Vault/OpenBao at {self._addr} has no KV v2 mount {self._mount!r}: enable "
                    "it or set INTEGRATIONHUB_VAULT_MOUNT"
                ) from None
            raise  # a missing secret: the caller knows which credential that is
        except hvac.exceptions.InvalidRequest as exc:
            raise CredentialInvalid(
                f"Vault/OpenBao at {self._addr} rejected the {operation}: {_errors(exc)}"
            ) from None
        finally:
            VAULT_REQUEST_SECONDS.labels(operation=operation).observe(time.perf_counter() - started)

    async def _login(self, *, replacing: int | None = None) -> None:
        """AppRole login when the token is missing or near its end, or (``replacing``) when
        Vault refused the token obtained by login number ``replacing``."""
        if self._approle is None:
            return
        if replacing is None and self._token_expires_at > time.monotonic():
            return
        async with self._login_lock:
            if replacing is None and self._token_expires_at > time.monotonic():
                return
            if replacing is not None and replacing != self._logins:
                return  # another task logged in again while this one waited
            role_id, secret_id = self._approle
            try:
                response = await self._timed(
                    "login",
                    lambda: self._client.auth.approle.login(
                        role_id=role_id,
                        secret_id=secret_id,
                        mount_point=self._settings.approle_mount,
                        use_token=True,
                    ),
                )
            except (*_DENIED, CredentialInvalid):  # a wrong secret_id answers 400
                raise CredentialStoreUnavailable(
                    f"Vault/OpenBao at {self._addr} refused the AppRole login "
                    f"(mount {self._settings.approle_mount!r}): check VAULT_ROLE_ID and "
                    "VAULT_SECRET_ID"
                ) from None
            lease = float(response["auth"].get("lease_duration") or 0)
            # A lease of 0 never expires; renew a finite one well before it ends.
            self._token_expires_at = (
                float("inf")
                if lease <= 0
                else time.monotonic() + max(lease - _RELOGIN_MARGIN, lease / 2)
            )
            self._logins += 1
            log.info("vault.approle.logged_in", addr=self._addr, lease_seconds=lease)

    def _unavailable(self, operation: str, reason: str) -> CredentialStoreUnavailable:
        log.warning("vault.unavailable", addr=self._addr, operation=operation, reason=reason)
        return CredentialStoreUnavailable(
            f"Vault/OpenBao at {self._addr} is unreachable or sealed ({operation}: {reason})"
        )

    def _denied(self, operation: str) -> CredentialStoreUnavailable:
        log.warning("vault.denied", addr=self._addr, operation=operation)
        return CredentialStoreUnavailable(
            f"Vault/OpenBao at {self._addr} denied the {operation}: the hub's token is invalid, "
            f"expired or lacks a policy for {self._mount}/{self._prefix}"
        )

    def _invalidate(self, credential_id: str) -> None:
        self._cache.pop(credential_id, None)
        self._generation[credential_id] = self._generation.get(credential_id, 0) + 1

    def _path(self, credential_id: str) -> str:
        """The KV path of a credential. Refuses ids that could leave the prefix (``..``, ``/``)
        even though the API validated them: the engine and tools call this too."""
        if not _is_valid_id(credential_id):
            raise CredentialInvalid(
                f"credential id {str(credential_id)[:130]!r} is not allowed: use letters, "
                "digits, '.', '_' and '-', starting with a letter or digit, without '..'"
            )
        return f"{self._prefix}/{credential_id}" if self._prefix else credential_id


def _is_valid_id(credential_id: object) -> bool:
    if not isinstance(credential_id, str) or ".." in credential_id:
        return False
    try:
        _ID.validate_python(credential_id, strict=True)
    except ValidationError:
        return False
    return True


def _custom_metadata(*, type: str, fields: list[str]) -> dict[str, str]:
    """``{"type": ..., "fields.0": '["host", ...]', ...}`` within Vault's size limits."""
    chunks: list[list[str]] = [[]]
    for name in fields:
        if _size([name]) > _METADATA_VALUE_BYTES:
            raise CredentialInvalid(f"a field name in credential data is too long ({len(name)})")
        if _size([*chunks[-1], name]) > _METADATA_VALUE_BYTES:
            chunks.append([])
        chunks[-1].append(name)
    if len(chunks) > _METADATA_FIELD_CHUNKS:
        raise CredentialInvalid("credential data has too many or too long field names")
    custom = {"type": type}
    custom.update({f"fields.{i}": json.dumps(chunk) for i, chunk in enumerate(chunks)})
    return custom


def _size(names: list[str]) -> int:
    return len(json.dumps(names).encode())


def _type(custom: dict[str, str] | None) -> str:
    return (custom or {}).get("type") or "unknown"


def _fields(custom: dict[str, str] | None) -> list[str]:
    custom = custom or {}
    names: list[str] = []
    i = 0
    while (chunk := custom.get(f"fields.{i}")) is not None:
        names.extend(json.loads(chunk))
        i += 1
    return sorted(names)


def _time(value: str) -> datetime:
    """Vault's RFC 3339 times carry nanoseconds; microseconds are enough here."""
    return datetime.fromisoformat(value)


def _copy(credential: StoredCredential) -> StoredCredential:
    """Callers may change the data they get; the cached copy must not change with it."""
    return StoredCredential(metadata=credential.metadata, data=copy.deepcopy(credential.data))


def _errors(exc: hvac.exceptions.VaultError) -> str:
    """Vault's own error strings (they name fields and limits, never values), bounded."""
    return "; ".join(str(e) for e in (exc.errors or []))[:300] or "bad request"


def _without_userinfo(addr: str) -> str:
    parts = urlsplit(addr)
    if "@" not in parts.netloc:
        return addr
    return parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]).geturl()
