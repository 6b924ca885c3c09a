"""The connector framework: what a connector declares, and how the hub invokes it.

A connector is a class with typed actions. It declares; the framework does the rest:

    class SmtpConnector(BaseConnector[SmtpCredential]):
        name = "smtp"

        @action("smtp-email", safe_to_repeat=False)
        async def send_email(self, params: SendEmail) -> EmailSent: ...

The engine resolves the credential, validates the input against the action's model, applies the
timeout, retries on ``RetryableError`` with backoff, records metrics and persists the outcome.
Connectors never loop, sleep, retry or read Vault: they raise ``RetryableError`` or
``PermanentError`` and the engine decides.
"""

from __future__ import annotations

import asyncio
import inspect
import typing
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError

from integrationhub.core.bus_subscription import Publisher
from integrationhub.errors import ConfigurationError, PermanentError, RetryableError

__all__ = [
    "Action",
    "ActionContext",
    "BaseConnector",
    "Credential",
    "action",
]


class Credential(BaseModel):
    """Base of every credential type. Fields typed ``SecretStr`` are the secret ones:
    they are masked in every repr and never leave the hub."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: ClassVar[str]

    @classmethod
    def secret_fields(cls) -> list[str]:
        return [
            name
            for name, field in cls.model_fields.items()
            if SecretStr in (field.annotation, *typing.get_args(field.annotation))
        ]

    def reveal(self) -> dict[str, Any]:
        """The plain data, secrets included: only for writing back to the credential store."""
        return self.model_dump(mode="json", exclude_none=True) | {
            name: value.get_secret_value()
            for name in self.secret_fields()
            if isinstance(value := getattr(self, name), SecretStr)
        }


@dataclass(frozen=True, slots=True)
class ActionContext:
    """What an action may know about the call it serves."""

    run_id: str
    step_id: str
    attempt: int
    http: httpx.AsyncClient
    bus: Publisher | None = None


In = TypeVar("In", bound=BaseModel)
Out = TypeVar("Out", bound=BaseModel)
C = TypeVar("C", bound="Credential | None")
ActionMethod = Callable[[Any, In], Awaitable[Out]]


@dataclass(frozen=True, slots=True)
class Action:
    """One typed action of a connector, e.g. ``smtp-email``."""

    name: str
    connector: type[BaseConnector[Any]]
    method: str
    input_model: type[BaseModel]
    output_model: type[BaseModel]
    safe_to_repeat: bool
    timeout: float
    description: str

    @property
    def credential_type(self) -> type[Credential] | None:
        return self.connector.credential_type

    def validate_input(self, params: Mapping[str, Any]) -> BaseModel:
        try:
            return self.input_model.model_validate(params)
        except ValidationError as exc:
            raise PermanentError(f"invalid input for {self.name}: {_describe(exc)}") from exc

    async def invoke(
        self,
        *,
        credential: Credential | None,
        params: Mapping[str, Any],
        context: ActionContext,
        timeout: float | None = None,
    ) -> BaseModel:
        """Validate, call once within the timeout, validate the output. No retries here."""
        inputs = self.validate_input(params)
        connector = self.connector(credential=credential, context=context)
        timeout = timeout or self.timeout
        try:
            async with asyncio.timeout(timeout):
                result = await getattr(connector, self.method)(inputs)
        except TimeoutError as exc:
            raise RetryableError(f"{self.name} timed out after {timeout:g}s") from exc
        if not isinstance(result, self.output_model):
            raise TypeError(
                f"{self.name} returned {type(result).__name__}, not {self.output_model.__name__}"
            )
        return result

    def describe(self) -> dict[str, Any]:
        credential_type = self.credential_type
        return {
            "name": self.name,
            "description": self.description,
            "safe_to_repeat": self.safe_to_repeat,
            "credential_type": credential_type.type if credential_type else None,
            "input_schema": self.input_model.model_json_schema(),
            "output_schema": self.output_model.model_json_schema(),
        }


def _describe(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'input'}: {err['msg']}" for err in exc.errors()
    )


@dataclass(frozen=True, slots=True)
class _ActionMark:
    name: str
    safe_to_repeat: bool
    timeout: float


DEFAULT_TIMEOUT = 30.0


def action(
    name: str, *, safe_to_repeat: bool, timeout: float = DEFAULT_TIMEOUT
) -> Callable[[ActionMethod[In, Out]], ActionMethod[In, Out]]:
    """Declare a connector method as an action. Its input and output models come from the
    method's annotations; ``safe_to_repeat`` says whether running it twice is harmless."""

    def mark(method: ActionMethod[In, Out]) -> ActionMethod[In, Out]:
        method.__integrationhub_action__ = _ActionMark(name, safe_to_repeat, timeout)  # type: ignore[attr-defined]
        return method

    return mark


class BaseConnector(Generic[C]):
    """Base of every connector. ``name`` equals the folder and the entry-point name."""

    name: ClassVar[str]
    credential_type: ClassVar[type[Credential] | None] = None
    actions: ClassVar[dict[str, Action]] = {}

    def __init__(self, *, credential: C, context: ActionContext) -> None:
        self.credential = credential
        self.context = context

    @property
    def http(self) -> httpx.AsyncClient:
        return self.context.http

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.credential_type = _credential_type_of(cls)
        cls.actions = {}
        for attr, member in inspect.getmembers(cls, inspect.isfunction):
            mark = getattr(member, "__integrationhub_action__", None)
            if mark is None:
                continue
            hints = typing.get_type_hints(member)
            params = [p for p in inspect.signature(member).parameters if p != "self"]
            if len(params) != 1 or "return" not in hints:
                raise ConfigurationError(
                    f"action {mark.name} must take one input model and annotate its output"
                )
            cls.actions[mark.name] = Action(
                name=mark.name,
                connector=cls,
                method=attr,
                input_model=hints[params[0]],
                output_model=hints["return"],
                safe_to_repeat=mark.safe_to_repeat,
                timeout=mark.timeout,
                description=inspect.getdoc(member) or "",
            )


def _credential_type_of(cls: type) -> type[Credential] | None:
    for base in getattr(cls, "__orig_bases__", ()):
        if typing.get_origin(base) is BaseConnector:
            (arg,) = typing.get_args(base)
            if isinstance(arg, type) and issubclass(arg, Credential):
                return arg
            return None
    return getattr(cls, "credential_type", None)
