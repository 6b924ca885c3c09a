"""Flow definitions: a parameter schema and ordered steps of connector actions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import jsonschema
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from integrationhub.core import expressions, schemas, templates
from integrationhub.core.cron import Cron, check_expression, zone
from integrationhub.errors import ExpressionError, TemplateError

__all__ = [
    "Flow",
    "FlowId",
    "FlowPublic",
    "PulsarTrigger",
    "RetryPolicy",
    "ScheduleTrigger",
    "Step",
    "Triggers",
    "WebhookTrigger",
]

FlowId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]{0,127}$")]
StepId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]
MAX_CONCURRENCY = 32  # calls of one for_each step under way at once


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
        description="when this step's call may have had its effect but its outcome is unknown "
        "(a worker stopped during it, an attempt timed out or lost its connection): fail the run "
        "for a person to decide, or repeat the call (the action's own safe_to_repeat also allows "
        "it)",
    )
    when: str | None = Field(
        None,
        max_length=expressions.MAX_SOURCE,
        description="JSONata over the run context; when falsy, the step is skipped",
    )
    for_each: str | None = Field(
        None,
        max_length=expressions.MAX_SOURCE,
        description="JSONata yielding an array: the action runs once per item, with item and "
        "index in the context; the output is {items: [one output per item]}",
    )
    concurrency: int | None = Field(
        None,
        ge=1,
        le=MAX_CONCURRENCY,
        description="with for_each: how many items' calls may be under way at once (1 if unset)",
    )

    @field_validator("input")
    @classmethod
    def _templates_compile(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        try:
            expressions.check(value, ("input",))
        except (ExpressionError, TemplateError) as exc:
            raise ValueError(_of_step(info, exc.message)) from None
        return value

    @field_validator("when", "for_each")
    @classmethod
    def _expression_parses(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None:
            try:
                expressions.parse(value)
            except ExpressionError as exc:
                raise ValueError(_of_step(info, exc.message)) from None
        return value

    @field_validator("concurrency")
    @classmethod
    def _concurrency_needs_for_each(cls, value: int | None, info: ValidationInfo) -> int | None:
        # A for_each that failed its own validation is missing here, and already reported.
        if value is not None and info.data.get("for_each", "") is None:
            raise ValueError(_of_step(info, "concurrency applies only to a step with for_each"))
        return value


def _of_step(info: ValidationInfo, message: str) -> str:
    step_id = info.data.get("id")
    return f"step {step_id!r}: {message}" if step_id else message


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


# Templates are tried on the schedule's first slot after this moment when a flow is loaded; any
# slot would do, and a fixed one gives the same answer on every replica.
_SAMPLE_AFTER = datetime(2000, 1, 1, tzinfo=UTC)


class ScheduleTrigger(BaseModel):
    """Run the flow at the moments a cron expression names (five fields, or six with seconds
    first), on the wall clock of ``timezone``. Every run gets ``parameters``: fixed JSON, or
    templates over ``slot``, the scheduled moment in ISO 8601 with the zone's offset
    (``2026-03-02T09:00:00+01:00``)."""

    model_config = ConfigDict(extra="forbid")

    cron: str = Field(min_length=1, max_length=256, examples=["0 9 * * 1-5"])
    timezone: str = Field("UTC", min_length=1, max_length=64, examples=["Europe/Berlin"])
    parameters: dict[str, Any] = Field(default_factory=dict)

    @field_validator("cron")
    @classmethod
    def _cron_is_valid(cls, value: str) -> str:
        return check_expression(value)

    @field_validator("timezone")
    @classmethod
    def _timezone_exists(cls, value: str) -> str:
        zone(value)
        return value

    @field_validator("parameters")
    @classmethod
    def _templates_compile(cls, value: dict[str, Any]) -> dict[str, Any]:
        return _compiled(value)

    def parameters_for(self, slot: datetime) -> dict[str, Any]:
        """The parameters of the run for ``slot``; TemplateError when a template fails."""
        rendered: dict[str, Any] = templates.render(
            self.parameters, {"slot": slot.astimezone(zone(self.timezone)).isoformat()}
        )
        return rendered

    def parameter_problem(self, schema: dict[str, Any]) -> tuple[tuple[str | int, ...], str] | None:
        """Where and why the runs' parameters break the flow's JSON Schema (then every run
        would be refused, so the flow is refused instead), or None."""
        try:
            parameters = self.parameters_for(
                Cron(self.cron, self.timezone).next_after(_SAMPLE_AFTER)
            )
        except TemplateError as exc:
            return (), f"{exc.message} (a schedule's templates know only `slot`)"
        problem = schemas.first_error(schema, parameters)
        if problem is None:
            return None
        where, message = problem
        return where, f"breaks the flow's parameter schema: {message}"


def _check_schedule_parameters(trigger: ScheduleTrigger, schema: dict[str, Any]) -> None:
    problem = trigger.parameter_problem(schema)
    if problem is None:
        return
    where, message = problem
    # Raised as a ValidationError so that the location inside the trigger is kept, and
    # ``integrationhub check`` points at the parameter's own line.
    raise ValidationError.from_exception_data(
        "Flow",
        [
            InitErrorDetails(
                type=PydanticCustomError("schedule_parameters", "{message}", {"message": message}),
                loc=("schedule", "parameters", *where),
                input=trigger.parameters,
            )
        ],
    )


class Triggers(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pulsar: PulsarTrigger | None = None
    webhook: WebhookTrigger | None = None
    schedule: ScheduleTrigger | None = None


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

    @field_validator("trigger")
    @classmethod
    def _schedule_parameters_fit(
        cls, value: Triggers | None, info: ValidationInfo
    ) -> Triggers | None:
        schema = info.data.get("parameters")
        if value is not None and value.schedule is not None and schema is not None:
            _check_schedule_parameters(value.schedule, schema)
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
