"""The seam between the engine and wherever credentials live.

``CredentialStore`` is what the engine and the API depend on; ``vault_client.VaultCredentialStore``
is the implementation (Vault or OpenBao, KV v2). ``StoredCredential`` keeps the secret data out
of every repr so it cannot reach a log by accident.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from integrationhub.models.credential import CredentialPublic

__all__ = ["CredentialStore", "StoredCredential"]


@dataclass(frozen=True, slots=True)
class StoredCredential:
    metadata: CredentialPublic
    data: dict[str, Any] = field(repr=False)


class CredentialStore(Protocol):
    async def read(self, credential_id: str) -> StoredCredential:
        """The credential with its data. Raises CredentialNotFound or
        CredentialStoreUnavailable. May be served from a short-lived cache."""
        ...

    async def write(
        self, credential_id: str, *, type: str, data: dict[str, Any]
    ) -> CredentialPublic:
        """Create or replace; invalidates the cached copy."""
        ...

    async def metadata(self, credential_id: str) -> CredentialPublic:
        """Metadata without reading the secret data. Raises CredentialNotFound."""
        ...

    async def list(self) -> list[CredentialPublic]: ...

    async def delete(self, credential_id: str) -> None:
        """Delete every version. Raises CredentialNotFound."""
        ...

    async def check(self) -> None:
        """Raise CredentialStoreUnavailable unless the store answers and is unsealed."""
        ...

    async def close(self) -> None: ...
