"""The shapes Zulip answers in: its success and error envelopes, and a message object."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from starlette.responses import JSONResponse

__all__ = ["zulip_error", "zulip_message", "zulip_success"]


def zulip_error(status: int, msg: str, code: str = "BAD_REQUEST", **extra: Any) -> JSONResponse:
    """Zulip's error shape (``CodedError`` and its relatives in the spec)."""
    return JSONResponse({"result": "error", "msg": msg, "code": code, **extra}, status_code=status)


def zulip_success(**data: Any) -> JSONResponse:
    """Zulip's success shape (``JsonSuccessBase`` plus the operation's fields)."""
    return JSONResponse({"result": "success", "msg": "", **data})


def zulip_message(
    *,
    message_id: int,
    sender_id: int,
    sender_email: str,
    content: str,
    stream: tuple[int, str] | None = None,
    topic: str = "",
    recipients: Iterable[tuple[int, str]] = (),
    sender_full_name: str = "",
) -> dict[str, Any]:
    """A message object as Zulip puts it in a ``message`` event (spec: ``MessagesEvent``).

    ``stream`` is ``(stream_id, name)`` for a stream message; else ``recipients`` are the
    ``(user_id, email)`` of a direct message's participants.
    """
    message: dict[str, Any] = {
        "id": message_id,
        "sender_id": sender_id,
        "sender_email": sender_email,
        "sender_full_name": sender_full_name or sender_email.split("@")[0],
        "sender_realm_str": "zulip",
        "content": content,
        "content_type": "text/x-markdown",
        "client": "ZulipDouble",
        "timestamp": int(time.time()),
        "is_me_message": False,
        "reactions": [],
        "submessages": [],
        "topic_links": [],
        "avatar_url": None,
    }
    if stream is not None:
        stream_id, name = stream
        message |= {
            "type": "stream",
            "stream_id": stream_id,
            "display_recipient": name,
            "subject": topic,
            "recipient_id": 1000 + stream_id,
        }
    else:
        users = sorted({(sender_id, sender_email), *recipients})
        message |= {
            "type": "private",
            "subject": "",
            "recipient_id": 2000 + len(users),
            "display_recipient": [
                {
                    "id": uid,
                    "email": email,
                    "full_name": email.split("@")[0],
                    "is_mirror_dummy": False,
                }
                for uid, email in users
            ],
        }
    return message
