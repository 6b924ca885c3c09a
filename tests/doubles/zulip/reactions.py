"""The double's reaction operations, ``add-reaction`` and ``remove-reaction``, with the checks
and messages of Zulip's ``check_add_reaction``/``remove_reaction``: the message must be one the
bot can see, the emoji must exist (by name, or by code within its type), and a reaction that
already is as asked is refused with ``REACTION_ALREADY_EXISTS``/``REACTION_DOES_NOT_EXIST``
(a plain ``BAD_REQUEST`` before feature level 193)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.responses import Response

from tests.doubles.zulip.records import Call, Reaction
from tests.doubles.zulip.shapes import zulip_error, zulip_success

if TYPE_CHECKING:
    from tests.doubles.zulip.double import ZulipDouble

__all__ = ["add_reaction", "remove_reaction"]

# A few of Zulip's Unicode emoji by name (aliases included), its one extra emoji, and one
# custom emoji of the organisation (id "1").
UNICODE_EMOJI = {
    "+1": "1f44d",
    "thumbs_up": "1f44d",
    "octopus": "1f419",
    "tada": "1f389",
    "eyes": "1f440",
    "check": "2714",
    "heart": "2764",
}
CUSTOM_EMOJI = {"1": "hub_parrot"}
EXTRA_EMOJI = {"zulip"}
REACTION_CODES_LEVEL = 193  # Zulip 8.0: REACTION_ALREADY_EXISTS / REACTION_DOES_NOT_EXIST


def _emoji_by_name(name: str) -> tuple[str, str] | None:
    """``(emoji_code, reaction_type)`` of a name, looked up as Zulip does: custom emoji first."""
    for code, custom in CUSTOM_EMOJI.items():
        if custom == name:
            return code, "realm_emoji"
    if name in UNICODE_EMOJI:
        return UNICODE_EMOJI[name], "unicode_emoji"
    if name in EXTRA_EMOJI:
        return name, "zulip_extra_emoji"
    return None


def _check_emoji(name: str, code: str, reaction_type: str) -> str | None:
    """Zulip's ``check_emoji_request``: what is wrong with a name, code and type, if anything."""
    if reaction_type == "realm_emoji":
        if code not in CUSTOM_EMOJI:
            return "Invalid custom emoji."
        return None if CUSTOM_EMOJI[code] == name else "Invalid custom emoji name."
    if reaction_type == "zulip_extra_emoji":
        if code not in EXTRA_EMOJI:
            return "Invalid emoji code."
        return None if name == code else "Invalid emoji name."
    if reaction_type == "unicode_emoji":
        if code not in UNICODE_EMOJI.values():
            return "Invalid emoji code."
        return None if UNICODE_EMOJI.get(name) == code else "Invalid emoji name."
    return "Invalid emoji type."


def _resolve(call: Call) -> tuple[str, str, str] | Response:
    """The reaction's ``(name, code, type)``, filling in what the request left out, or the
    error Zulip answers."""
    params = call.params
    name: str = params.get("emoji_name", "")
    code: str | None = params.get("emoji_code")
    reaction_type: str | None = params.get("reaction_type")
    if code is None or reaction_type is None:
        found = _emoji_by_name(name)
        if found is None:
            return zulip_error(400, f"Emoji '{name}' does not exist")
        code = code or found[0]
        reaction_type = reaction_type or found[1]
    return name, code, reaction_type


async def add_reaction(zulip: ZulipDouble, call: Call) -> Response:
    message_id: int = call.params["message_id"]
    if message_id not in zulip.known_messages:
        return zulip_error(400, "Invalid message(s)")
    resolved = _resolve(call)
    if isinstance(resolved, Response):
        return resolved
    name, code, reaction_type = resolved
    on_message = [r for r in zulip.reactions if r.message_id == message_id]
    if any(
        (r.user_id, r.emoji_code, r.reaction_type) == (zulip.user_id, code, reaction_type)
        for r in on_message
    ):
        return _already(zulip, "Reaction already exists.", "REACTION_ALREADY_EXISTS")
    # Like Zulip, check the emoji only for a new reaction, not a vote for someone else's.
    voted = any((r.emoji_code, r.reaction_type) == (code, reaction_type) for r in on_message)
    if not voted and (problem := _check_emoji(name, code, reaction_type)):
        return zulip_error(400, problem)
    zulip.reactions.append(Reaction(message_id, zulip.user_id, name, code, reaction_type))
    return zulip_success()


async def remove_reaction(zulip: ZulipDouble, call: Call) -> Response:
    message_id: int = call.params["message_id"]
    if message_id not in zulip.known_messages:
        return zulip_error(400, "Invalid message(s)")
    if "emoji_code" not in call.params and "emoji_name" not in call.params:
        return zulip_error(
            400,
            "At least one of the following arguments must be present: emoji_name, emoji_code",
        )
    resolved = _resolve(call)
    if isinstance(resolved, Response):
        return resolved
    _, code, reaction_type = resolved
    key = (message_id, zulip.user_id, code, reaction_type)
    mine = [
        r
        for r in zulip.reactions
        if (r.message_id, r.user_id, r.emoji_code, r.reaction_type) == key
    ]
    if not mine:
        return _already(zulip, "Reaction doesn't exist.", "REACTION_DOES_NOT_EXIST")
    zulip.reactions.remove(mine[0])
    return zulip_success()


def _already(zulip: ZulipDouble, msg: str, code: str) -> Response:
    return zulip_error(
        400, msg, code if zulip.feature_level >= REACTION_CODES_LEVEL else "BAD_REQUEST"
    )
