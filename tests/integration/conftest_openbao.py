"""A real OpenBao server for integration tests, one per session.

A plain module so any conftest can take it in with
``from tests.integration.conftest_openbao import *``. ``openbao`` yields ``(addr, root_token)``;
``vault_settings`` gives each test a path prefix of its own on that server, so tests share the
server without seeing each other's credentials.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from integrationhub.core.vault_client import VaultCredentialStore
from integrationhub.embedded.openbao import EmbeddedOpenBao
from integrationhub.settings import VaultSettings

__all__ = ["credential_store", "openbao", "vault_settings"]


@pytest.fixture(scope="session")
def openbao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    server = EmbeddedOpenBao(tmp_path_factory.mktemp("openbao"))
    # EmbeddedOpenBao binds to no event loop: a loop of its own here is fine.
    addr, token = asyncio.run(server.start())
    yield addr, token
    asyncio.run(server.stop())


@pytest.fixture
def vault_settings(openbao: tuple[str, str]) -> VaultSettings:
    """Settings for the session's server with a fresh path prefix and no auth from the
    environment (a ``VAULT_TOKEN`` there must not decide which auth a test uses)."""
    addr, _ = openbao
    return VaultSettings().model_copy(
        update={
            "addr": addr,
            "token": None,
            "role_id": None,
            "secret_id": None,
            "namespace": None,
            "cacert": None,
            "skip_verify": False,
            "mount": "secret",
            "path_prefix": f"integrationhub-tests/{uuid.uuid4().hex}",
            "cache_ttl": 30.0,
            "timeout": 5.0,
        }
    )


@pytest.fixture
async def credential_store(
    openbao: tuple[str, str], vault_settings: VaultSettings
) -> AsyncIterator[VaultCredentialStore]:
    addr, token = openbao
    store = VaultCredentialStore(vault_settings, addr=addr, token=token)
    yield store
    await store.close()
