"""The exceptions IntegrationHub raises, as one tree.

    IntegrationHubError
    ├── ConfigurationError          settings or a definition the hub cannot work with
    ├── CredentialError
    │   ├── CredentialNotFound      no credential with that id
    │   ├── CredentialInvalid       stored data does not fit the credential type
    │   └── CredentialStoreUnavailable   Vault/OpenBao cannot be reached (transient)
    ├── ConnectorError              raised by connector actions; the engine decides what follows
    │   ├── RetryableError          transient: try again, after ``retry_after`` if given
    │   │   └── RateLimited         the remote side asked us to slow down
    │   └── PermanentError          retrying cannot help (4xx, auth, validation)
    ├── FlowError
    │   ├── FlowNotFound
    │   ├── FlowInvalid             a definition that breaks the flow schema
    │   ├── FlowReadOnly            a flow from a file, which the API cannot delete
    │   ├── ParametersInvalid       trigger parameters that break the flow's schema
    │   ├── TemplateError           a template that does not compile, render or is unsafe
    │   └── ExpressionError         a JSONata expression that does not parse, fails, or
    │                               exceeds its bounds (time, depth, size)
    ├── RunNotFound
    ├── RunStateConflict            the run is not in a state that allows this (retry, cancel)
    ├── IdempotencyConflict         one Idempotency-Key, two different requests
    └── BusError                    the event broker cannot be reached

Errors that enter from third-party libraries are translated where they enter
(``raise RetryableError(...) from exc``) so the engine only ever reasons about this tree.
Messages never contain secret values.
"""

from __future__ import annotations

__all__ = [
    "BusError",
    "ConfigurationError",
    "ConnectorError",
    "CredentialError",
    "CredentialInvalid",
    "CredentialNotFound",
    "CredentialStoreUnavailable",
    "ExpressionError",
    "FlowError",
    "FlowInvalid",
    "FlowNotFound",
    "FlowReadOnly",
    "IdempotencyConflict",
    "IntegrationHubError",
    "ParametersInvalid",
    "PermanentError",
    "RateLimited",
    "RetryableError",
    "RunNotFound",
    "RunStateConflict",
    "TemplateError",
]


class IntegrationHubError(Exception):
    """Root of every error the hub raises on purpose."""

    code = "internal_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigurationError(IntegrationHubError):
    code = "configuration_error"


class CredentialError(IntegrationHubError):
    code = "credential_error"


class CredentialNotFound(CredentialError):
    code = "credential_not_found"

    def __init__(self, credential_id: str) -> None:
        super().__init__(f"credential {credential_id!r} does not exist")
        self.credential_id = credential_id


class CredentialInvalid(CredentialError):
    code = "credential_invalid"


class CredentialStoreUnavailable(CredentialError):
    code = "credential_store_unavailable"


class ConnectorError(IntegrationHubError):
    code = "connector_error"


class RetryableError(ConnectorError):
    """A failure that may pass: the engine retries with backoff, waiting at least
    ``retry_after`` seconds when the remote side said how long.

    ``effect_possible``: the call may have had its effect before it failed (a timeout, a
    connection lost after the request went out, a 500 or 502 or 504). The engine repeats such
    a call only if its action is safe to repeat or the flow's step says so; otherwise the step
    fails as "outcome unknown" for a person to check, rather than risk doing it twice.
    """

    code = "retryable_error"

    def __init__(
        self, message: str, *, retry_after: float | None = None, effect_possible: bool = False
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.effect_possible = effect_possible


class RateLimited(RetryableError):
    code = "rate_limited"


class PermanentError(ConnectorError):
    code = "permanent_error"


class FlowError(IntegrationHubError):
    code = "flow_error"


class FlowNotFound(FlowError):
    code = "flow_not_found"

    def __init__(self, flow_id: str) -> None:
        super().__init__(f"flow {flow_id!r} does not exist")
        self.flow_id = flow_id


class FlowInvalid(FlowError):
    code = "flow_invalid"


class FlowReadOnly(FlowError):
    code = "flow_read_only"


class ParametersInvalid(FlowError):
    code = "parameters_invalid"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class TemplateError(FlowError):
    code = "template_error"


class ExpressionError(FlowError):
    code = "expression_error"


class RunNotFound(IntegrationHubError):
    code = "run_not_found"

    def __init__(self, run_id: str) -> None:
        super().__init__(f"run {run_id!r} does not exist")
        self.run_id = run_id


class RunStateConflict(IntegrationHubError):
    code = "run_state_conflict"


class IdempotencyConflict(IntegrationHubError):
    code = "idempotency_conflict"


class BusError(IntegrationHubError):
    code = "bus_unavailable"
