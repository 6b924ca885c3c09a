"""Flow definitions: a parameter schema and ordered steps of connector actions."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import jsonschema
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from integrationhub.core import templates
from integrationhub.errors import TemplateError

__all__ = [
    "Flow",
    "FlowId",
    "FlowPublic",
    "PulsarTrigger",
    "RetryPolicy",
    "Step",
    "Triggers",
    "WebhookTrigger",
]

FlowId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]{0,127}$")]
StepId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]


class RetryPolicy(BaseModel):
    """How a step is retried on transient errors: exponential backoff with full jitter."""

    model_config = ConfigDict(extra="forbid")

    max_attempts: int = Field(5, ge=1, le=100)
    initial_delay: float = Field(0.5, ge=0, le=3600)
    max_delay: float = Field(30.0, ge=0, le=3600)
    multiplier: float = Field(2.0, ge=1, le=10)
    deadline: float = Field(
        900.0,
        gt=0,
        le=7 * 86400,
        description="seconds from the first attempt after which no retry starts",
    )

    def delay(self, attempt: int) -> float:
        """Upper bound of the wait after ``attempt`` failed attempts (1-based)."""
        return min(self.max_delay, self.initial_delay * self.multiplier ** (attempt - 1))


class Step(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: StepId
    action: str = Field(min_length=1, max_length=128)
    credential: str | None = Field(None, max_length=128)
    input: dict[str, Any] = Field(default_factory=dict)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    timeout: float | None = Field(None, gt=0, le=3600, description="per attempt, seconds")
    on_unknown_outcome: Literal["fail", "repeat"] = Field(
        "fail",
        description="when a worker stopped during this step's call: fail the run for a person "
        "to decide, or repeat the call (the action's own safe_to_repeat also allows it)",
    )

    @field_validator("input")
    @classmethod
    def _templates_compile(cls, value: dict[str, Any]) -> dict[str, Any]:
        return _compiled(value)


def _compiled(value: dict[str, Any]) -> dict[str, Any]:
    try:
        templates.check(value)
    except TemplateError as exc:
        raise ValueError(exc.message) from None
    return value


class PulsarTrigger(BaseModel):
    """Run the flow for every message on a topic. The message's JSON payload becomes the
    parameters, or is reshaped by ``parameters``: templates over ``message`` (the payload),
    ``key`` and ``properties``."""

    model_config = ConfigDict(extra="forbid")

    topic: str = Field(min_length=1, max_length=512)
    subscription: str | None = Field(None, min_length=1, max_length=256)
    parameters: dict[str, Any] | None = None

    @field_validator("parameters")
    @classmethod
    def _templates_compile(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return _compiled(value) if value is not None else None


class WebhookTrigger(BaseModel):
    """Run the flow for requests to ``POST /api/v1/webhooks/{flow_id}``. The body (JSON or
    form) becomes the parameters, or is reshaped by ``parameters``: templates over ``body``,
    ``headers`` (lower-case names) and ``query``."""

    model_config = ConfigDict(extra="forbid")

    signature: Literal["github", "slack"] | None = None
    secret: str | None = Field(None, max_length=128, description="a webhook-secret credential")
    max_age: float = Field(300, gt=0, le=3600, description="oldest signed timestamp, seconds")
    parameters: dict[str, Any] | None = None

    @field_validator("parameters")
    @classmethod
    def _templates_compile(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return _compiled(value) if value is not None else None

    @model_validator(mode="after")
    def _signature_needs_secret(self) -> WebhookTrigger:
        if (self.signature is None) != (self.secret is None):
            raise ValueError("signature and secret go together")
        return self


class Triggers(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pulsar: PulsarTrigger | None = None
    webhook: WebhookTrigger | None = None


class Flow(BaseModel):
    """A flow as written in YAML or JSON."""

    model_config = ConfigDict(extra="forbid")

    id: FlowId
    description: str = Field("", max_length=4000)
    parameters: dict[str, Any] = Field(
        default_factory=lambda: {"type": "object"}, description="JSON Schema of the parameters"
    )
    steps: list[Step] = Field(min_length=1, max_length=100)
    trigger: Triggers | None = None

    @field_validator("parameters")
    @classmethod
    def _schema_is_valid(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            jsonschema.Draft202012Validator.check_schema(value)
        except jsonschema.SchemaError as exc:
            raise ValueError(f"not a valid JSON Schema: {exc.message}") from exc
        return value

    @model_validator(mode="after")
    def _step_ids_unique(self) -> Flow:
        seen: set[str] = set()
        for step in self.steps:
            if step.id in seen:
                raise ValueError(f"step id {step.id!r} is used twice")
            seen.add(step.id)
        return self


class FlowPublic(Flow):
    source: str = Field(description="builtin, directory or api")
