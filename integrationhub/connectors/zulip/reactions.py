"""What the ``zulip-reaction`` action takes and gives (operations ``add-reaction`` and
``remove-reaction``).

Zulip knows an emoji by name (``octopus``), and, to be exact, by ``emoji_code`` within a
``reaction_type``; the name alone is enough for most uses, and Zulip looks the code up.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

from integrationhub.connectors.zulip.models import MessageId

__all__ = ["ReactToZulipMessage", "ZulipReactionSet"]


def _bare_emoji_name(value: object) -> object:
    # ``:octopus:`` is how people write an emoji in Zulip; the API wants ``octopus``.
    if isinstance(value, str):
        value = value.strip()
        if len(value) > 2 and value.startswith(":") and value.endswith(":"):
            value = value[1:-1]
    return value


# Zulip's emoji names (Unicode ones and custom ones alike) are lower-case letters, digits,
# "_", "-" and "+" (``+1``); anything else cannot name an emoji, so it fails here rather than
# after a round trip.
EmojiName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=60, pattern=r"^[0-9a-z_+\-]+$"),
    BeforeValidator(_bare_emoji_name),  # runs first, on the raw input
]
# A dash-separated hex code point sequence (unicode_emoji), a number (realm_emoji), or a name
# (zulip_extra_emoji).
EmojiCode = Annotated[
    str, StringConstraints(min_length=1, max_length=100, pattern=r"^[0-9a-z_\-]+$")
]


class ReactToZulipMessage(BaseModel):
    """Add an emoji reaction of the bot to a message (``remove: true`` takes it away)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    message_id: MessageId
    emoji_name: EmojiName = Field(description='the emoji\'s name, e.g. "octopus" or ":tada:"')
    emoji_code: EmojiCode | None = Field(
        None, description='to be exact where names changed, e.g. "1f419"; Zulip looks it up'
    )
    reaction_type: Literal["unicode_emoji", "realm_emoji", "zulip_extra_emoji"] | None = Field(
        None, description="the namespace of emoji_code; Zulip looks it up"
    )
    remove: bool = Field(False, description="remove the bot's reaction instead of adding it")

    def form(self) -> dict[str, str]:
        """The form fields of ``POST`` (and ``DELETE``) ``/api/v1/messages/{id}/reactions``."""
        form = {"emoji_name": self.emoji_name}
        if self.emoji_code is not None:
            form["emoji_code"] = self.emoji_code
        if self.reaction_type is not None:
            form["reaction_type"] = self.reaction_type
        return form


class ZulipReactionSet(BaseModel):
    """The bot's reaction is now ``present`` (or not); ``changed`` is false when it already
    was, and Zulip had nothing to do."""

    model_config = ConfigDict(frozen=True)

    message_id: int
    emoji_name: str
    present: bool
    changed: bool
