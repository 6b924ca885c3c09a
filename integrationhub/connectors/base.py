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

A connector may also declare sources, its inbound side: one method that polls (or long-polls)
the remote side once and returns the new events with the cursor to continue from::

        @source("zulip-messages", event=ZulipMessageReceived, topic="integrationhub.zulip.messages")
        async def read_messages(self, cursor: Cursor | None, options: ReadMessages) -> Batch: ...

The hub's inbound supervisor (``core/inbound.py``) calls it in a loop for each configured source:
it resolves the credential, backs off on errors, publishes each event to the source's topic and
persists the cursor.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import types
import typing
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from integrationhub.connectors.auth import AuthScheme, AuthSession, SaveCredential, TokenCache
from integrationhub.core.bus_subscription import Publisher
from integrationhub.core.connections import ConnectionPool
from integrationhub.core.ratelimit import parse_rate_limit
from integrationhub.errors import ConfigurationError, PermanentError, RetryableError

__all__ = [
    "Action",
    "ActionContext",
    "BaseConnector",
    "Batch",
    "Credential",
    "Cursor",
    "Event",
    "Source",
    "action",
    "source",
]


class Credential(BaseModel):
    """Base of every credential type. Fields typed ``SecretStr`` are the secret ones:
    they are masked in every repr and never leave the hub.

    ``auth`` declares how the credential authenticates an HTTP request (``connectors/auth.py``:
    ``BasicAuth("email", "api_key")``, ``BearerToken("token")``, ...); connectors then send with
    ``auth=self.auth``. ``rate_limit`` (every type has it) overrides the connector's default
    rate limit for calls with this credential."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: ClassVar[str]
    auth: ClassVar[AuthScheme | None] = None

    rate_limit: str | None = Field(
        None,
        max_length=64,
        description='calls allowed with this credential, e.g. "50/minute" or "none"; '
        "overrides the connector's default",
    )

    @field_validator("rate_limit")
    @classmethod
    def _rate_limit_parses(cls, value: str | None) -> str | None:
        if value is not None:
            parse_rate_limit(value)
        return value

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        missing = sorted(set(cls.auth.fields()) - set(cls.model_fields)) if cls.auth else []
        if missing:
            raise ConfigurationError(
                f"credential type {cls.__name__} authenticates with {cls.auth!r}, which reads "
                f"fields it does not declare: {', '.join(missing)}"
            )

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
    """What an action may know about the call it serves. ``step_id`` is the step's id, or
    ``<step id>.<index>`` for one item of a ``for_each`` step, so that ids derived from run and
    step differ per item. A source's poll gets one too: ``run_id`` is then
    ``source:<source id>`` and ``step_id`` the source's name."""

    run_id: str
    step_id: str
    attempt: int
    http: httpx.AsyncClient
    bus: Publisher | None = None
    # For ``BaseConnector.auth``: the engine's token cache, and its hook that writes a changed
    # credential (a refreshed OAuth 2 token) back to the credential store.
    tokens: TokenCache | None = None
    save_credential: SaveCredential | None = None
    # Connections a connector with its own protocol (SMTP) keeps open across calls; without
    # a pool, each call opens and closes its own.
    connections: ConnectionPool | None = None


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

    @property
    def credential_types(self) -> tuple[type[Credential], ...]:
        return self.connector.credential_types

    @property
    def credential_optional(self) -> bool:
        return self.connector.credential_optional

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
            raise RetryableError(
                f"{self.name} timed out after {timeout:g}s", effect_possible=True
            ) from exc
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
            "credential_types": [t.type for t in self.credential_types],
            "credential_optional": self.credential_optional,
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


# --- sources: the inbound side ---------------------------------------------------------------

Cursor = dict[str, Any]
"""Where a source continues from: any JSON object the source understands, persisted by the hub."""


@dataclass(frozen=True, slots=True)
class Event:
    """One inbound event. ``key`` is a stable id of the event at its origin (a message id): it
    becomes the Pulsar message key, on which consumers dedupe after a redelivery."""

    key: str
    payload: BaseModel


@dataclass(frozen=True, slots=True)
class Batch:
    """What one poll found: the events, in order, and the cursor to continue after them.

    ``gap`` says, in one line, that events may have been missed before these (the remote side
    lost our position and cannot replay it); the supervisor logs it and counts it.
    """

    events: Sequence[Event]
    cursor: Cursor
    gap: str | None = None


Options = TypeVar("Options", bound=BaseModel)
SourceMethod = Callable[[Any, Cursor | None, Options], Awaitable[Batch]]

DEFAULT_POLL_TIMEOUT = 660.0


@dataclass(frozen=True, slots=True)
class Source:
    """One inbound source of a connector, e.g. ``zulip-messages``."""

    name: str
    connector: type[BaseConnector[Any]]
    method: str
    options_model: type[BaseModel]
    event_model: type[BaseModel]
    topic: str
    timeout: float
    description: str

    @property
    def credential_types(self) -> tuple[type[Credential], ...]:
        return self.connector.credential_types

    @property
    def credential_optional(self) -> bool:
        return self.connector.credential_optional

    def validate_options(self, options: Mapping[str, Any]) -> BaseModel:
        try:
            return self.options_model.model_validate(options)
        except ValidationError as exc:
            raise ConfigurationError(f"invalid options for {self.name}: {_describe(exc)}") from exc

    async def poll(
        self,
        *,
        credential: Credential | None,
        cursor: Cursor | None,
        options: BaseModel,
        context: ActionContext,
    ) -> Batch:
        """Poll once within the timeout; check that the batch can be published and persisted."""
        connector = self.connector(credential=credential, context=context)
        try:
            async with asyncio.timeout(self.timeout):
                batch = await getattr(connector, self.method)(cursor, options)
        except TimeoutError as exc:
            raise RetryableError(f"{self.name} timed out after {self.timeout:g}s") from exc
        if not isinstance(batch, Batch):
            raise TypeError(f"{self.name} returned {type(batch).__name__}, not Batch")
        for event in batch.events:
            if not isinstance(event.payload, self.event_model):
                raise TypeError(
                    f"{self.name} returned an event of type {type(event.payload).__name__}, "
                    f"not {self.event_model.__name__}"
                )
        json.dumps(batch.cursor)  # TypeError now, rather than when the hub persists it
        return batch

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "credential_types": [t.type for t in self.credential_types],
            "credential_optional": self.credential_optional,
            "topic": self.topic,
            "options_schema": self.options_model.model_json_schema(),
            "event_schema": self.event_model.model_json_schema(),
        }


@dataclass(frozen=True, slots=True)
class _SourceMark:
    name: str
    event: type[BaseModel]
    topic: str
    timeout: float


def source(
    name: str, *, event: type[BaseModel], topic: str, timeout: float = DEFAULT_POLL_TIMEOUT
) -> Callable[[SourceMethod[Options]], SourceMethod[Options]]:
    """Declare a connector method as a source: ``(cursor, options) -> Batch``, one poll.

    ``event`` is the model of each event's payload, ``topic`` the default topic its events are
    published to, ``timeout`` a bound on one poll (longer than any long-poll it may do).
    The cursor is persisted only after the events are published, so a poll must be repeatable:
    from the same cursor it returns those events again. ``None`` means the source never ran.
    """

    def mark(method: SourceMethod[Options]) -> SourceMethod[Options]:
        method.__integrationhub_source__ = _SourceMark(name, event, topic, timeout)  # type: ignore[attr-defined]
        return method

    return mark


# --- the base class ---------------------------------------------------------------------------


class BaseConnector(Generic[C]):
    """Base of every connector. ``name`` equals the folder and the entry-point name.

    The credential type comes from the type argument: ``BaseConnector[ZulipCredential]``; a
    union accepts any of its types (``BaseConnector[HttpBasic | HttpBearer | None]``, where
    ``None`` makes the credential optional). ``rate_limit`` is the default limit of calls per
    credential (``"200 per 60 seconds"``), which settings and credentials can override.
    """

    name: ClassVar[str]
    credential_type: ClassVar[type[Credential] | None] = None
    credential_types: ClassVar[tuple[type[Credential], ...]] = ()
    credential_optional: ClassVar[bool] = False
    rate_limit: ClassVar[str | None] = None
    actions: ClassVar[dict[str, Action]] = {}
    sources: ClassVar[dict[str, Source]] = {}

    def __init__(self, *, credential: C, context: ActionContext) -> None:
        self.credential = credential
        self.context = context

    @property
    def http(self) -> httpx.AsyncClient:
        return self.context.http

    @functools.cached_property
    def auth(self) -> httpx.Auth | None:
        """The credential's authentication, from its type's ``auth`` scheme, for ``self.http``:
        ``await self.http.post(url, auth=self.auth)``. None without credential or scheme."""
        credential = self.credential
        if credential is None or credential.auth is None:
            return None
        session = AuthSession(
            http=self.http,
            tokens=self.context.tokens or TokenCache(),
            save=self.context.save_credential,
        )
        return credential.auth.httpx_auth(credential, session)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.credential_types, cls.credential_optional = _credential_types_of(cls)
        cls.credential_type = cls.credential_types[0] if cls.credential_types else None
        if cls.rate_limit is not None:
            parse_rate_limit(cls.rate_limit)
        cls.actions = {}
        cls.sources = {}
        for attr, member in inspect.getmembers(cls, inspect.isfunction):
            source_mark = getattr(member, "__integrationhub_source__", None)
            if source_mark is not None:
                cls.sources[source_mark.name] = _source(cls, attr, member, source_mark)
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


def _source(
    cls: type[BaseConnector[Any]], attr: str, member: Callable[..., Any], mark: _SourceMark
) -> Source:
    hints = typing.get_type_hints(member)
    params = [p for p in inspect.signature(member).parameters if p != "self"]
    options = hints.get(params[-1]) if len(params) == 2 else None
    if (
        not isinstance(options, type)
        or not issubclass(options, BaseModel)
        or hints.get("return") is not Batch
    ):
        raise ConfigurationError(
            f"source {mark.name} must take (cursor, options: <a model>) and return Batch"
        )
    return Source(
        name=mark.name,
        connector=cls,
        method=attr,
        options_model=options,
        event_model=mark.event,
        topic=mark.topic,
        timeout=mark.timeout,
        description=inspect.getdoc(member) or "",
    )


def _credential_types_of(cls: type) -> tuple[tuple[type[Credential], ...], bool]:
    """The credential types of ``BaseConnector[X]`` (X a type, a union, or None) and whether
    the credential is optional."""
    for base in getattr(cls, "__orig_bases__", ()):
        if typing.get_origin(base) is BaseConnector:
            (arg,) = typing.get_args(base)
            union = typing.get_origin(arg) in (typing.Union, types.UnionType)
            members = typing.get_args(arg) if union else (arg,)
            found = tuple(m for m in members if isinstance(m, type) and issubclass(m, Credential))
            return found, bool(found) and type(None) in members
    return getattr(cls, "credential_types", ()), getattr(cls, "credential_optional", False)
