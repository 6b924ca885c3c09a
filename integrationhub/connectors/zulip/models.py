"""What the Zulip connector takes and gives: the credential, the ``zulip-message`` action's
input and output, and the ``zulip-messages`` source's options and events (``reactions.py``
and ``uploads.py`` hold the other actions').

The limits mirror the Zulip server's own (``MAX_MESSAGE_LENGTH``, ``MAX_TOPIC_NAME_LENGTH``,
``check_string_is_printable``) so a bad message fails here, as a ``PermanentError`` before any
request, instead of being truncated or refused by the server after a retry budget is spent.
"""

from __future__ import annotations

import json
import unicodedata
from typing import Annotated, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    RootModel,
    SecretStr,
    StringConstraints,
    Tag,
)

from integrationhub.connectors.auth import AuthScheme, BasicAuth
from integrationhub.connectors.base import Credential
from integrationhub.connectors.sites import site_url

__all__ = [
    "MAX_CONTENT_LENGTH",
    "MAX_STREAM_NAME_LENGTH",
    "MAX_TOPIC_LENGTH",
    "MessageId",
    "ReadZulipMessages",
    "SendDirectMessage",
    "SendStreamMessage",
    "SendZulipMessage",
    "ZulipCredential",
    "ZulipMessageReceived",
    "ZulipMessageSent",
]

# Zulip counts characters (Python ``len``), not bytes; these are its defaults, which the
# server also reports as ``max_message_length`` / ``max_topic_length`` from ``POST /register``.
MAX_CONTENT_LENGTH = 10_000
MAX_TOPIC_LENGTH = 60
MAX_STREAM_NAME_LENGTH = 60
# Unicode categories Zulip refuses in topics and names: control, surrogate, unassigned.
_UNPRINTABLE = frozenset({"Cc", "Cs", "Cn"})


def _printable(value: str) -> str:
    for position, char in enumerate(value):
        if unicodedata.category(char) in _UNPRINTABLE:
            raise ValueError(f"invalid character {char!r} at position {position}")
    return value


def _message_body(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty or only whitespace")
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _not_bool(value: object) -> object:
    # Pydantic would read ``true`` as id 1; a template that renders a flag is a mistake.
    if isinstance(value, bool):
        raise ValueError("must be an id, not a boolean")
    return value


def _stream_kind(value: object) -> str:
    # A string is always a name, even "2024": Zulip allows numeric stream names.
    return "id" if isinstance(value, int) else "name"


def _recipients_kind(value: object) -> str:
    # Digit strings are ids (templates render to strings); anything else must be emails.
    items = value if isinstance(value, list) else []
    ids = all(isinstance(i, int) or (isinstance(i, str) and i.isdigit()) for i in items)
    return "ids" if items and ids else "emails"


Site = Annotated[
    str, AfterValidator(site_url(example="https://example.zulipchat.com", use="email and api_key"))
]
PrintableLine = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1), AfterValidator(_printable)
]
Topic = Annotated[PrintableLine, StringConstraints(max_length=MAX_TOPIC_LENGTH)]
StreamName = Annotated[PrintableLine, StringConstraints(max_length=MAX_STREAM_NAME_LENGTH)]
# Zulip API emails (bots, hidden addresses) do not always have a public TLD: check shape only.
ZulipEmail = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=254, pattern=r"^[^@\s:]+@[^@\s:]+$")
]
UserId = Annotated[int, Field(gt=0), BeforeValidator(_not_bool)]
StreamId = Annotated[int, Field(gt=0), BeforeValidator(_not_bool)]
MessageId = Annotated[int, Field(gt=0), BeforeValidator(_not_bool)]
# Zulip strips trailing whitespace and refuses a body that is empty afterwards.
Content = Annotated[
    str, StringConstraints(max_length=MAX_CONTENT_LENGTH), AfterValidator(_message_body)
]


class ZulipCredential(Credential):
    """A Zulip bot: the organisation's URL, the bot's email and its API key."""

    type: ClassVar[str] = "zulip"
    auth: ClassVar[AuthScheme] = BasicAuth("email", "api_key")  # the bot's email and API key

    site: Site = Field(description="URL of the organisation, e.g. https://example.zulipchat.com")
    email: ZulipEmail = Field(description="the bot's email, e.g. hub-bot@example.zulipchat.com")
    api_key: SecretStr = Field(min_length=1)


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    content: Content = Field(description="Zulip markdown, at most 10000 characters")


class SendStreamMessage(_Message):
    """A message to a topic of a stream (Zulip now says "channel")."""

    type: Literal["stream"]
    to: Annotated[
        Annotated[StreamId, Tag("id")] | Annotated[StreamName, Tag("name")],
        Discriminator(_stream_kind),
    ] = Field(description="stream name or id")
    topic: Topic

    def form(self) -> dict[str, str]:
        """The form fields of ``POST /api/v1/messages``."""
        # The spec encodes ``to`` as JSON; a JSON string also keeps a numeric-looking stream
        # name (``"2024"``) from being read as a stream id.
        return {
            "type": "stream",
            "to": json.dumps(self.to),
            "topic": self.topic,
            "content": self.content,
        }


class SendDirectMessage(_Message):
    """A direct message to one or more users, by email or by user id (not mixed)."""

    type: Literal["direct"]
    to: Annotated[
        Annotated[list[UserId], Field(min_length=1), Tag("ids")]
        | Annotated[list[ZulipEmail], Field(min_length=1), Tag("emails")],
        Discriminator(_recipients_kind),
    ] = Field(description="user ids, or Zulip API emails; not mixed")

    def form(self) -> dict[str, str]:
        """The form fields of ``POST /api/v1/messages``."""
        return {"type": "direct", "to": json.dumps(self.to), "content": self.content}


class SendZulipMessage(RootModel[SendStreamMessage | SendDirectMessage]):
    """Send a stream message (``type: stream``, ``to``, ``topic``) or a direct message
    (``type: direct``, ``to`` a list of emails or user ids), with markdown ``content``."""

    root: SendStreamMessage | SendDirectMessage = Field(discriminator="type")


class ZulipMessageSent(BaseModel):
    """The message Zulip accepted."""

    model_config = ConfigDict(frozen=True)

    message_id: int


# --- the zulip-messages source -----------------------------------------------------------------

NarrowTerm = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class ReadZulipMessages(BaseModel):
    """Which messages a ``zulip-messages`` source reads: those the bot receives (its streams
    and direct messages; every public stream with ``all_public_streams``), filtered by
    ``narrow``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    narrow: list[tuple[NarrowTerm, NarrowTerm]] = Field(
        default_factory=list,
        max_length=20,
        description='[operator, operand] pairs, e.g. [["channel", "general"], ["topic", "ci"]]',
    )
    all_public_streams: bool = Field(
        False, description="also public streams the bot is not subscribed to"
    )
    include_own_messages: bool = Field(
        False,
        description="also the bot's own messages; off, so a flow that answers in Zulip cannot "
        "trigger itself",
    )
    longpoll_timeout: float = Field(
        120.0,
        gt=0,
        le=600,
        description="seconds one GET /events may wait; Zulip answers an idle one with a "
        "heartbeat within about 90 s",
    )


class ZulipMessageReceived(BaseModel):
    """A new Zulip message, as the ``zulip-messages`` source publishes it: JSON, keyed by ``id``.

    ``type`` is ``stream`` (with ``stream``, ``stream_id``, ``topic``) or ``direct`` (with
    ``recipients``, every participant's email), the words of the ``zulip-message`` action; Zulip
    itself says ``private``. ``content`` is Zulip markdown; ``timestamp`` is in Unix seconds.
    """

    model_config = ConfigDict(frozen=True)

    id: int
    type: Literal["stream", "direct"]
    sender_id: int
    sender_email: str
    sender_full_name: str
    stream: str | None = None
    stream_id: int | None = None
    topic: str | None = None
    recipients: list[str] = Field(default_factory=list)
    content: str
    timestamp: int
    flags: list[str] = Field(default_factory=list)
