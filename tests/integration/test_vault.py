"""VaultCredentialStore and EmbeddedOpenBao against a real OpenBao server (no mocks)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import stat
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import hvac
import pytest
from prometheus_client import REGISTRY
from pydantic import SecretStr

from integrationhub.core.vault_client import VaultCredentialStore
from integrationhub.embedded.openbao import EmbeddedOpenBao
from integrationhub.errors import (
    ConfigurationError,
    CredentialInvalid,
    CredentialNotFound,
    CredentialStoreUnavailable,
)
from integrationhub.settings import VaultSettings

pytestmark = pytest.mark.integration  # fixtures: tests/integration/conftest_openbao.py

REPO_ROOT = Path(__file__).resolve().parents[2]

SMTP = {
    "host": "smtp.example.org",
    "port": 587,
    "username": "hub@example.org",
    "password": "pw-8f3c1d-never-shown",
    "security": "starttls",
    "from_address": "hub@example.org",
}


def _cache_count(result: str) -> float:
    return (
        REGISTRY.get_sample_value("integrationhub_credential_cache_total", {"result": result})
        or 0.0
    )


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _store(
    settings: VaultSettings, addr: str, token: str | None, **update: Any
) -> VaultCredentialStore:
    return VaultCredentialStore(settings.model_copy(update=update), addr=addr, token=token)


async def _root(addr: str, token: str, call: Any) -> Any:
    """Run ``call(client)`` with a root hvac client, off the event loop."""
    return await asyncio.to_thread(call, hvac.Client(url=addr, token=token))


def _alive(pid: int) -> bool:
    """Linux: a live, non-zombie process."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


# --- CredentialStore on KV v2 ------------------------------------------------------------------


async def test_written_credential_reads_back_lists_and_deletes(
    credential_store: VaultCredentialStore,
) -> None:
    written = await credential_store.write("smtp-credentials", type="smtp", data=SMTP)
    assert (written.id, written.type, written.version) == ("smtp-credentials", "smtp", 1)
    assert written.fields == sorted(SMTP)

    stored = await credential_store.read("smtp-credentials")
    assert stored.data == SMTP
    assert stored.metadata == written

    assert await credential_store.metadata("smtp-credentials") == written
    assert await credential_store.list() == [written]

    await credential_store.delete("smtp-credentials")
    assert await credential_store.list() == []
    with pytest.raises(CredentialNotFound):
        await credential_store.read("smtp-credentials")
    with pytest.raises(CredentialNotFound):
        await credential_store.delete("smtp-credentials")


async def test_metadata_and_list_never_carry_secret_values(
    openbao: tuple[str, str], vault_settings: VaultSettings, credential_store: VaultCredentialStore
) -> None:
    await credential_store.write(
        "zulip", type="zulip", data={"site": "https://z.example", "api_key": "key-5e1a77"}
    )
    public = [await credential_store.metadata("zulip"), *await credential_store.list()]
    raw = await _root(
        *openbao,
        lambda c: c.secrets.kv.v2.read_secret_metadata(
            path=f"{vault_settings.path_prefix}/zulip", mount_point="secret"
        ),
    )
    shown = json.dumps(raw["data"]["custom_metadata"]) + "".join(
        p.model_dump_json() for p in public
    )
    assert "key-5e1a77" not in shown and "z.example" not in shown
    assert all(p.fields == ["api_key", "site"] and p.type == "zulip" for p in public)
    assert "key-5e1a77" not in repr(await credential_store.read("zulip"))


async def test_rewrite_replaces_field_names_and_bumps_version(
    credential_store: VaultCredentialStore,
) -> None:
    """Many long field names spread over several custom_metadata values; a rewrite with fewer
    leaves none of the old ones behind."""
    many = {f"field_{i:03d}_{'x' * 60}": i for i in range(100)}
    first = await credential_store.write("wide", type="custom", data=many)
    assert (await credential_store.metadata("wide")).fields == sorted(many)

    second = await credential_store.write("wide", type="smtp", data=SMTP)
    assert second.version == first.version + 1
    assert await credential_store.metadata("wide") == second
    assert second.fields == sorted(SMTP)


async def test_cached_read_counts_a_hit_and_a_write_invalidates_it(
    credential_store: VaultCredentialStore,
) -> None:
    await credential_store.write("cached", type="smtp", data=SMTP)
    hits, misses = _cache_count("hit"), _cache_count("miss")

    await credential_store.read("cached")
    first = await credential_store.read("cached")
    first.data["password"] = "changed by a caller"
    assert (_cache_count("hit"), _cache_count("miss")) == (hits + 1, misses + 1)
    assert (await credential_store.read("cached")).data == SMTP  # callers cannot spoil the cache

    await credential_store.write("cached", type="smtp", data={**SMTP, "password": "rotated"})
    assert (await credential_store.read("cached")).data["password"] == "rotated"
    assert _cache_count("miss") == misses + 2


async def test_reading_a_missing_id_raises_not_found(
    credential_store: VaultCredentialStore,
) -> None:
    for call in (credential_store.read, credential_store.metadata, credential_store.delete):
        with pytest.raises(CredentialNotFound, match="no-such-credential"):
            await call("no-such-credential")
    assert await credential_store.list() == []


@pytest.mark.parametrize(
    "bad_id", ["..", "../other", "a/../../b", "a/b", "/abs", "a..b", ".hidden", "", "x\n"]
)
async def test_path_traversal_ids_are_refused_before_any_request(
    vault_settings: VaultSettings, bad_id: str
) -> None:
    # A closed port: any request would raise CredentialStoreUnavailable instead.
    store = _store(vault_settings, f"http://127.0.0.1:{_closed_port()}", "unused")
    with pytest.raises(CredentialInvalid):
        await store.read(bad_id)
    with pytest.raises(CredentialInvalid):
        await store.write(bad_id, type="smtp", data=SMTP)
    with pytest.raises(CredentialInvalid):
        await store.metadata(bad_id)
    with pytest.raises(CredentialInvalid):
        await store.delete(bad_id)
    await store.close()


# --- availability and auth ---------------------------------------------------------------------


async def test_unreachable_vault_raises_unavailable_quickly_without_the_token(
    vault_settings: VaultSettings,
) -> None:
    addr = f"http://127.0.0.1:{_closed_port()}"
    store = _store(vault_settings, addr, "s.secret-token-value")
    started = time.monotonic()
    for call in (store.check, store.list, lambda: store.read("smtp-credentials")):
        with pytest.raises(CredentialStoreUnavailable) as raised:
            await call()
        assert addr in str(raised.value) and "unreachable or sealed" in str(raised.value)
        assert "secret-token-value" not in str(raised.value)
    assert time.monotonic() - started < 3.0
    await store.close()


async def test_check_passes_when_unsealed_and_fails_with_a_rejected_token(
    openbao: tuple[str, str], vault_settings: VaultSettings, credential_store: VaultCredentialStore
) -> None:
    await credential_store.check()
    bogus = _store(vault_settings, openbao[0], "s.not-a-real-token")
    with pytest.raises(CredentialStoreUnavailable, match="denied") as raised:
        await bogus.check()
    assert "not-a-real-token" not in str(raised.value)
    await bogus.close()


async def test_approle_login_works_within_its_policy_and_logs_in_again_when_the_token_ends(
    openbao: tuple[str, str], vault_settings: VaultSettings
) -> None:
    addr, root_token = openbao
    mount, prefix = f"approle-{uuid.uuid4().hex[:8]}", vault_settings.path_prefix
    crud = '"create", "read", "update", "delete"'
    policy = f"""
path "secret/data/{prefix}/*" {{ capabilities = [{crud}] }}
path "secret/metadata/{prefix}/*" {{ capabilities = [{crud}, "list"] }}
path "secret/metadata/{prefix}" {{ capabilities = ["list"] }}
"""

    def set_up(client: hvac.Client) -> tuple[str, str]:
        client.sys.enable_auth_method("approle", path=mount)
        client.sys.create_or_update_policy(name=mount, policy=policy)
        # Three uses per token: every write (two requests) plus one read forces a new login.
        client.auth.approle.create_or_update_approle(
            "hub", token_policies=[mount], token_num_uses=3, mount_point=mount
        )
        role_id = client.auth.approle.read_role_id("hub", mount_point=mount)["data"]["role_id"]
        secret = client.auth.approle.generate_secret_id("hub", mount_point=mount)
        return role_id, secret["data"]["secret_id"]

    role_id, secret_id = await _root(addr, root_token, set_up)
    store = _store(
        vault_settings,
        addr,
        None,
        role_id=role_id,
        secret_id=SecretStr(secret_id),
        approle_mount=mount,
        cache_ttl=0,
    )
    for version in (1, 2, 3):
        written = await store.write("smtp-credentials", type="smtp", data={**SMTP, "port": version})
        assert written.version == version
        assert (await store.read("smtp-credentials")).data["port"] == version
    assert [c.id for c in await store.list()] == ["smtp-credentials"]

    outside = _store(
        vault_settings,
        addr,
        None,
        role_id=role_id,
        secret_id=SecretStr(secret_id),
        approle_mount=mount,
        path_prefix="elsewhere",
    )
    with pytest.raises(CredentialStoreUnavailable, match="denied"):
        await outside.read("smtp-credentials")
    wrong = _store(
        vault_settings,
        addr,
        None,
        role_id=role_id,
        secret_id=SecretStr("wrong"),
        approle_mount=mount,
    )
    with pytest.raises(CredentialStoreUnavailable, match="AppRole login") as raised:
        await wrong.check()
    assert secret_id not in str(raised.value)
    for s in (store, outside, wrong):
        await s.close()


def test_missing_auth_is_a_configuration_error(vault_settings: VaultSettings) -> None:
    with pytest.raises(ConfigurationError, match="VAULT_TOKEN"):
        VaultCredentialStore(vault_settings, addr="http://127.0.0.1:1", token=None)


# --- EmbeddedOpenBao ---------------------------------------------------------------------------


async def test_credentials_survive_restart_and_init_file_is_private(
    tmp_path: Path, vault_settings: VaultSettings
) -> None:
    server = EmbeddedOpenBao(tmp_path)
    addr, token = await server.start()
    try:
        init = tmp_path / "openbao" / "init.json"
        assert stat.S_IMODE(init.stat().st_mode) == 0o600
        with pytest.raises(ConfigurationError, match="another IntegrationHub process"):
            await EmbeddedOpenBao(tmp_path).start()

        store = _store(vault_settings, addr, token, cache_ttl=0)
        await store.write("smtp-credentials", type="smtp", data=SMTP)
        await server.stop()
        with pytest.raises(CredentialStoreUnavailable):
            await store.read("smtp-credentials")

        assert await server.start() == (addr, token)  # same port, same root token
        assert (await store.read("smtp-credentials")).data == SMTP
        assert stat.S_IMODE(init.stat().st_mode) == 0o600
        await store.close()
    finally:
        await server.stop()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
async def test_server_left_by_a_killed_hub_is_stopped_before_a_new_start(
    tmp_path: Path, vault_settings: VaultSettings
) -> None:
    script = (
        "import asyncio, sys\n"
        "from pathlib import Path\n"
        "from integrationhub.embedded.openbao import EmbeddedOpenBao\n"
        "async def main():\n"
        "    addr, token = await EmbeddedOpenBao(Path(sys.argv[1])).start()\n"
        "    print('READY', addr, token, flush=True)\n"
        "    await asyncio.Event().wait()\n"
        "asyncio.run(main())\n"
    )
    hub = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        script,
        str(tmp_path),
        stdout=asyncio.subprocess.PIPE,
        cwd=REPO_ROOT,
    )
    assert hub.stdout is not None
    async with asyncio.timeout(30):
        while not (line := (await hub.stdout.readline()).decode()).startswith("READY"):
            assert line, "the hub process exited before its OpenBao was ready"
    _, old_addr, token = line.split()
    stale_pid = int((tmp_path / "openbao" / "openbao.pid").read_text())
    store = _store(vault_settings, old_addr, token, cache_ttl=0)
    await store.write("smtp-credentials", type="smtp", data=SMTP)
    hub.send_signal(signal.SIGKILL)
    await hub.wait()
    assert _alive(stale_pid)  # the hub died, its server did not

    server = EmbeddedOpenBao(tmp_path)
    try:
        addr, _ = await server.start()
        assert not _alive(stale_pid)
        store = _store(vault_settings, addr, token, cache_ttl=0)
        assert (await store.read("smtp-credentials")).data == SMTP
        await store.close()
    finally:
        await server.stop()
        if _alive(stale_pid):
            os.kill(stale_pid, signal.SIGKILL)


async def test_init_file_without_storage_is_refused_with_advice(tmp_path: Path) -> None:
    (tmp_path / "openbao").mkdir(mode=0o700)
    fd = os.open(tmp_path / "openbao" / "init.json", os.O_WRONLY | os.O_CREAT, 0o600)
    os.close(fd)
    server = EmbeddedOpenBao(tmp_path)
    with pytest.raises(ConfigurationError, match="delete both"):
        await server.start()
    assert not (tmp_path / "openbao" / "openbao.pid").exists()  # the server was stopped


async def test_server_that_exits_on_start_fails_fast_with_its_log_tail(tmp_path: Path) -> None:
    (tmp_path / "openbao" / "data" / "vault.db").mkdir(parents=True)  # raft cannot open it
    started = time.monotonic()
    with pytest.raises(CredentialStoreUnavailable, match="exited with code") as raised:
        await EmbeddedOpenBao(tmp_path).start()
    assert "vault.db: is a directory" in str(raised.value)
    assert time.monotonic() - started < 5.0


async def test_missing_kv_mount_is_a_configuration_error_not_a_missing_credential(
    openbao: tuple[str, str], vault_settings: VaultSettings
) -> None:
    store = _store(vault_settings, *openbao, mount="no-such-mount")
    for call in (store.read, lambda i: store.write(i, type="smtp", data=SMTP)):
        with pytest.raises(ConfigurationError, match="no KV v2 mount 'no-such-mount'"):
            await call("smtp-credentials")
    await store.close()
