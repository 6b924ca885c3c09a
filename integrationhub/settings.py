"""Settings, read from the environment when the app starts (never at import).

Each group reads its own prefix, so the variables read the way operators expect:
``INTEGRATIONHUB_PORT``, ``INTEGRATIONHUB_PULSAR_URL``, and Vault's own ``VAULT_ADDR``,
``VAULT_TOKEN``, ``VAULT_ROLE_ID``, ``VAULT_SECRET_ID``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, StringConstraints, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

__all__ = [
    "HttpSettings",
    "PulsarSettings",
    "RateLimitSettings",
    "Settings",
    "SourceConfig",
    "VaultSettings",
]


class VaultSettings(BaseSettings):
    """Vault or OpenBao. With no ``VAULT_ADDR`` the hub runs an OpenBao server itself."""

    model_config = SettingsConfigDict(env_prefix="VAULT_", extra="ignore", populate_by_name=True)

    addr: str | None = None
    token: SecretStr | None = None
    role_id: str | None = None
    secret_id: SecretStr | None = None
    namespace: str | None = None
    cacert: str | None = None
    skip_verify: bool = False
    approle_mount: str = Field("approle", validation_alias="INTEGRATIONHUB_VAULT_APPROLE_MOUNT")
    mount: str = Field("secret", validation_alias="INTEGRATIONHUB_VAULT_MOUNT")
    path_prefix: str = Field(
        "integrationhub/credentials", validation_alias="INTEGRATIONHUB_VAULT_PATH_PREFIX"
    )
    cache_ttl: float = Field(30.0, ge=0, validation_alias="INTEGRATIONHUB_VAULT_CACHE_TTL")
    timeout: float = Field(5.0, gt=0, validation_alias="INTEGRATIONHUB_VAULT_TIMEOUT")

    @property
    def embedded(self) -> bool:
        return not self.addr


class PulsarSettings(BaseSettings):
    """Apache Pulsar. With no URL the hub runs a pulsar-lite broker itself."""

    model_config = SettingsConfigDict(env_prefix="INTEGRATIONHUB_PULSAR_", extra="ignore")

    url: str | None = None
    token: SecretStr | None = None
    # For pulsar+ssl://: the CA bundle (PEM) to trust instead of certifi's, e.g. a private CA's;
    # the broker's certificate must name the URL's host unless validation is turned off.
    tls_trust_certs: Path | None = None
    tls_validate_hostname: bool = True
    tenant: str = "public"
    namespace: str = "default"
    triggers_topic: str = "integrationhub.triggers"
    runs_topic: str = "integrationhub.runs"
    run_events_topic: str = "integrationhub.run-events"
    dead_letter_topic: str = "integrationhub.dead-letter"
    workers_subscription: str = "integrationhub-workers"
    triggers_subscription: str = "integrationhub-triggers"
    max_redeliveries: int = Field(5, ge=0)
    redelivery_delay: float = Field(1.0, gt=0)

    def topic(self, name: str) -> str:
        """A full topic name; names that are already full are returned as they are."""
        if "://" in name:
            return name
        return f"persistent://{self.tenant}/{self.namespace}/{name}"

    @property
    def embedded(self) -> bool:
        return not self.url


class HttpSettings(BaseSettings):
    """Connectors' outbound HTTP (``core/http.py``): timeout, response cap and the SSRF guard's
    allow-list, e.g. ``INTEGRATIONHUB_HTTP_ALLOW_NETWORKS=10.20.0.0/16,vault.internal``."""

    model_config = SettingsConfigDict(env_prefix="INTEGRATIONHUB_HTTP_", extra="ignore")

    timeout: float = Field(30.0, gt=0)
    max_response_bytes: int = Field(10 * 1024 * 1024, gt=0)
    # CIDRs and host names (".example.internal" for every name under it) that the guard admits
    # besides public addresses.
    allow_networks: Annotated[list[str], NoDecode] = []

    @field_validator("allow_networks", mode="before")
    @classmethod
    def _split_networks(cls, value: object) -> object:
        if isinstance(value, str):
            return [entry.strip() for entry in value.split(",") if entry.strip()]
        return value

    @field_validator("allow_networks")
    @classmethod
    def _check_networks(cls, value: list[str]) -> list[str]:
        from integrationhub.core.egress import parse_allow_entry

        for entry in value:
            parse_allow_entry(entry)
        return value


class RateLimitSettings(BaseSettings):
    """Rate limits per connector and credential (``core/ratelimit.py``). With
    ``INTEGRATIONHUB_REDIS_URL`` every replica shares them; without it, each process counts
    alone. ``INTEGRATIONHUB_RATELIMIT_LIMITS`` overrides connectors' defaults by name, as JSON:
    ``{"zulip": "100/minute", "http": "none"}``; a credential's own ``rate_limit`` wins."""

    model_config = SettingsConfigDict(
        env_prefix="INTEGRATIONHUB_RATELIMIT_", extra="ignore", populate_by_name=True
    )

    redis_url: str | None = Field(None, validation_alias="INTEGRATIONHUB_REDIS_URL")
    key_prefix: str = Field("integrationhub", min_length=1, max_length=64)
    limits: dict[str, str] = {}
    max_remote_wait: float = Field(3600.0, gt=0)  # bound on what a Retry-After can impose

    @field_validator("limits")
    @classmethod
    def _check_limits(cls, value: dict[str, str]) -> dict[str, str]:
        import limits

        for connector, text in value.items():
            if text.strip().lower() != "none":
                try:
                    limits.parse(text)
                except ValueError:
                    raise ValueError(
                        f"rate limit {text!r} for {connector!r} is not like '50/minute'"
                    ) from None
        return value


class SourceConfig(BaseModel):
    """One inbound source the hub runs: an item of ``INTEGRATIONHUB_SOURCES`` (a JSON list), e.g.
    ``{"id": "zulip-general", "source": "zulip-messages", "credential": "zulip-bot",
    "topic": "integrationhub.zulip.messages", "options": {"narrow": [["channel", "general"]]}}``.

    ``id`` names its persisted cursor: changing it starts the source afresh. ``topic`` defaults
    to the source's own; ``options`` are checked against the source's model when the hub starts.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]{0,127}$")]
    source: str = Field(min_length=1, max_length=128)
    credential: str | None = Field(None, min_length=1, max_length=128)
    topic: str | None = Field(None, min_length=1, max_length=512)
    options: dict[str, Any] = Field(default_factory=dict)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="INTEGRATIONHUB_", extra="ignore")

    data_dir: Path = Path(".integrationhub")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    api_keys: Annotated[list[SecretStr], NoDecode] = []
    database_url: str | None = None
    auto_migrate: bool = True
    log_level: str = "INFO"
    max_body_bytes: int = Field(1024 * 1024, gt=0)
    worker_concurrency: int = Field(16, ge=1)  # runs at once, per process that executes runs
    # Processes that execute runs beside the one serving the API (workers.py); 0: it does.
    worker_processes: int = Field(0, ge=0, le=64)
    run_lease_seconds: float = Field(60.0, gt=0)
    sweep_interval: float = Field(5.0, gt=0)
    run_retention_days: float = Field(30.0, gt=0)
    retention_interval: float = Field(3600.0, gt=0)
    flows_dir: Path | None = None
    mail_sink: bool = False
    mail_sink_port: int = Field(2525, ge=0, le=65535)
    # Inbound sources (core/inbound.py): what to poll, the lease one replica holds on a
    # source, the backoff after transient errors, and how soon a stopped source is retried.
    sources: list[SourceConfig] = []
    source_lease_seconds: float = Field(30.0, gt=0)
    source_backoff_initial: float = Field(1.0, gt=0)
    source_backoff_max: float = Field(60.0, gt=0)
    source_restart_interval: float = Field(60.0, gt=0)
    # Schedule triggers (core/schedules.py): how late a slot may still start (and how far back
    # a starting replica looks for a missed one), and how often each replica re-reads the flows
    # for schedules created or changed on another replica.
    schedule_catch_up: float = Field(300.0, ge=1)
    schedule_reload_interval: float = Field(10.0, gt=0)

    vault: VaultSettings = Field(default_factory=VaultSettings)
    pulsar: PulsarSettings = Field(default_factory=PulsarSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    ratelimit: RateLimitSettings = Field(default_factory=RateLimitSettings)

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return [key.strip() for key in value.split(",") if key.strip()]
        return value

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.data_dir.resolve() / 'integrationhub.db'}"

    @property
    def embedded(self) -> bool:
        """Every engine runs inside the hub: the zero set-up mode."""
        return self.vault.embedded and self.pulsar.embedded and self.database_url is None
