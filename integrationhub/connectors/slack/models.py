"""What the Slack connector takes and gives: two credential types, the actions' inputs and
outputs.

Limits are Slack's own (chat.postMessage and Block Kit documentation), so a message Slack would
truncate or refuse fails here, as a ``PermanentError`` before any request.
"""

from __future__ import annotations

import json
import unicodedata
from typing import Annotated, Any, ClassVar

import httpx
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    field_validator,
    model_validator,
)

from integrationhub.connectors.auth import AuthScheme, BearerToken
from integrationhub.connectors.base import Credential
from integrationhub.connectors.fields import no_nul
from integrationhub.connectors.http.credentials import http_url

__all__ = [
    "DEFAULT_BASE_URL",
    "MAX_ATTACHMENTS",
    "MAX_BLOCKS",
    "MAX_TEXT_LENGTH",
    "SendSlackMessage",
    "SendSlackWebhookMessage",
    "SlackBotCredential",
    "SlackMessageSent",
    "SlackWebhookCredential",
    "SlackWebhookMessageSent",
]

DEFAULT_BASE_URL = "https://slack.com/api"
# Slack truncates text beyond 40,000 characters; Block Kit takes 50 blocks a message, and
# chat.postMessage refuses more than 100 attachments (``too_many_attachments``).
MAX_TEXT_LENGTH = 40_000
MAX_BLOCKS = 50
MAX_ATTACHMENTS = 100


def _base_url(value: str) -> str:
    url = httpx.URL(http_url(value))
    if url.query:
        raise ValueError("must not have a query")
    return str(url).rstrip("/")


def _printable(value: str) -> str:
    for position, char in enumerate(value):
        if unicodedata.category(char) in ("Cc", "Cs"):
            raise ValueError(f"invalid character {char!r} at position {position}")
    return value


def _typed_block(value: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(value.get("type"), str) or not value["type"]:
        raise ValueError('every block needs a "type", e.g. "section"')
    return value


# A channel ID (C…, G…, D…), a user ID (U…, W…: the bot's direct message with them) or a
# channel's name, with or without "#". Slack's names have no spaces, commas or periods.
Channel = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=81, pattern=r"^#?[^\s#,.]+$"),
    AfterValidator(_printable),
]
# A message's ``ts``, its id within the channel: the spec's ``defs_ts``.
Timestamp = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\d{10}\.\d{6}$")]
Text = Annotated[str, StringConstraints(max_length=MAX_TEXT_LENGTH), AfterValidator(no_nul)]
Block = Annotated[dict[str, Any], AfterValidator(_typed_block)]
Attachment = dict[str, Any]


class SlackBotCredential(Credential):
    """A Slack app's bot token (``xoxb-…``, scope ``chat:write``), for the Web API."""

    type: ClassVar[str] = "slack-bot"
    auth: ClassVar[AuthScheme] = BearerToken("token")

    token: SecretStr = Field(description="the bot user OAuth token, xoxb-...")
    base_url: Annotated[str, AfterValidator(_base_url)] = Field(
        DEFAULT_BASE_URL, description="the Web API's URL; only an API double needs another"
    )

    @field_validator("token")
    @classmethod
    def _bot_token(cls, value: SecretStr) -> SecretStr:
        token = value.get_secret_value()
        if not token.startswith("xoxb-") or len(token) < 10:
            raise ValueError("must be a bot token, which starts with xoxb-")
        if not token.isascii() or any(c.isspace() or not c.isprintable() for c in token):
            raise ValueError("must not contain spaces, control or non-ASCII characters")
        return value


class SlackWebhookCredential(Credential):
    """A Slack app's incoming webhook: its URL, which alone lets anyone post to its channel."""

    type: ClassVar[str] = "slack-webhook"

    url: SecretStr = Field(description="https://hooks.slack.com/services/T…/B…/…")

    @field_validator("url")
    @classmethod
    def _webhook_url(cls, value: SecretStr) -> SecretStr:
        # The messages name no part of the URL: all of it is the secret.
        try:
            url = httpx.URL(http_url(value.get_secret_value()))
        except ValueError:
            raise ValueError(
                "must be the webhook's http(s) URL, https://hooks.slack.com/services/..."
            ) from None
        if url.path in ("", "/") or url.query:
            raise ValueError("must be the webhook's full URL: its path, and no query")
        return value


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    text: Text | None = Field(
        None,
        description="Slack mrkdwn (escape &, < and > meant literally); with blocks, the "
        "fallback shown in notifications",
    )
    blocks: list[Block] | None = Field(
        None, min_length=1, max_length=MAX_BLOCKS, description="Block Kit blocks"
    )
    attachments: list[Attachment] | None = Field(
        None, min_length=1, max_length=MAX_ATTACHMENTS, description="legacy attachments"
    )
    thread_ts: Timestamp | None = Field(
        None, description="the ts of the message to reply to, making this a thread reply"
    )
    mrkdwn: bool | None = Field(None, description="false sends text without mrkdwn formatting")
    unfurl_links: bool | None = Field(None, description="unfurl links to text-based content")
    unfurl_media: bool | None = Field(None, description="false: do not unfurl media links")

    @model_validator(mode="after")
    def _has_content(self) -> _Message:
        if not (self.text and self.text.strip()) and not self.blocks and not self.attachments:
            raise ValueError("a message needs text, blocks or attachments")
        return self

    def fields(self) -> dict[str, Any]:
        """What Slack takes, with the values as JSON has them; unset ones left out."""
        return self.model_dump(exclude_none=True)


class SendSlackMessage(_Message):
    """A message to a channel (by ID or name) or a user's direct messages, as the bot: text,
    Block Kit blocks or both; a thread reply with ``thread_ts``."""

    channel: Channel = Field(description="channel ID (C0123ABCDEF), #name, or user ID")
    reply_broadcast: bool = Field(
        False, description="a thread reply also shown in the channel; needs thread_ts"
    )
    username: (
        Annotated[str, StringConstraints(min_length=1, max_length=80), AfterValidator(_printable)]
        | None
    ) = Field(None, description="a name to post as; needs the chat:write.customize scope")
    icon_emoji: Annotated[str, StringConstraints(pattern=r"^:[a-z0-9_+'-]+:$")] | None = Field(
        None, description="an emoji as the icon, :robot_face:; needs chat:write.customize"
    )
    icon_url: (
        Annotated[str, StringConstraints(max_length=2048), AfterValidator(http_url)] | None
    ) = Field(None, description="an image URL as the icon; needs chat:write.customize")

    @model_validator(mode="after")
    def _consistent(self) -> SendSlackMessage:
        if self.reply_broadcast and self.thread_ts is None:
            raise ValueError("reply_broadcast applies to thread replies: set thread_ts too")
        if self.icon_emoji and self.icon_url:
            raise ValueError("give icon_emoji or icon_url, not both (Slack ignores the URL)")
        return self

    def form(self) -> dict[str, str]:
        """The form fields of ``chat.postMessage``, encoded as its spec declares them."""
        fields = self.fields()
        if not self.reply_broadcast:
            del fields["reply_broadcast"]
        if self.text is not None and not self.text.strip():
            del fields["text"]  # blank beside blocks: Slack would show it as an empty message
        return {name: _form_value(value) for name, value in fields.items()}


class SendSlackWebhookMessage(_Message):
    """A message to the incoming webhook's channel: text, Block Kit blocks or both."""

    def payload(self) -> dict[str, Any]:
        """The webhook's JSON body."""
        fields = self.fields()
        if self.text is not None and not self.text.strip():
            del fields["text"]
        return fields


def _form_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):  # blocks and attachments: "a JSON-based array … as a string"
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


class SlackMessageSent(BaseModel):
    """The message Slack accepted: its channel's ID and its ``ts``, the message's id there."""

    model_config = ConfigDict(frozen=True)

    channel: str
    ts: str
    thread_ts: str | None = None


class SlackWebhookMessageSent(BaseModel):
    """Slack accepted the message (it answered ``ok``); webhooks return no message id."""

    model_config = ConfigDict(frozen=True)
