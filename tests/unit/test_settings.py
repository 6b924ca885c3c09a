from __future__ import annotations

from pathlib import Path

from integrationhub.settings import Settings


def test_settings_read_vaults_own_variables_and_the_hubs_prefixed_ones(monkeypatch):
    for name, value in {
        "VAULT_ADDR": "https://vault.example.org:8200",
        "VAULT_TOKEN": "s.token-value",
        "VAULT_ROLE_ID": "role-1",
        "VAULT_SECRET_ID": "secret-id-value",
        "VAULT_NAMESPACE": "team-a",
        "INTEGRATIONHUB_VAULT_MOUNT": "kv",
        "INTEGRATIONHUB_VAULT_PATH_PREFIX": "hub/creds",
        "INTEGRATIONHUB_VAULT_CACHE_TTL": "5",
        "INTEGRATIONHUB_DATA_DIR": "/var/lib/hub",
        "INTEGRATIONHUB_PORT": "9100",
        "INTEGRATIONHUB_API_KEYS": "one, two",
        "INTEGRATIONHUB_MAX_BODY_BYTES": "4096",
    }.items():
        monkeypatch.setenv(name, value)

    settings = Settings()

    vault = settings.vault
    assert (vault.addr, vault.role_id, vault.namespace) == (
        "https://vault.example.org:8200",
        "role-1",
        "team-a",
    )
    assert vault.token is not None and vault.token.get_secret_value() == "s.token-value"
    assert vault.secret_id is not None and vault.secret_id.get_secret_value() == "secret-id-value"
    assert (vault.mount, vault.path_prefix, vault.cache_ttl) == ("kv", "hub/creds", 5.0)
    assert not vault.embedded
    assert (settings.data_dir, settings.port, settings.max_body_bytes) == (
        Path("/var/lib/hub"),
        9100,
        4096,
    )
    assert [key.get_secret_value() for key in settings.api_keys] == ["one", "two"]
    assert "s.token-value" not in repr(settings)


def test_defaults_are_the_embedded_quick_start(monkeypatch):
    for name in ("VAULT_ADDR", "INTEGRATIONHUB_PULSAR_URL", "INTEGRATIONHUB_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    for name in ("INTEGRATIONHUB_DATA_DIR", "INTEGRATIONHUB_PORT", "INTEGRATIONHUB_MAX_BODY_BYTES"):
        monkeypatch.delenv(name, raising=False)

    settings = Settings()

    assert settings.embedded
    assert (settings.data_dir, settings.port) == (Path(".integrationhub"), 8000)
    assert settings.max_body_bytes == 1024 * 1024
