"""The ``zulip-messages`` source's bookkeeping: the cursor it persists, and how a message of
Zulip's event queue becomes the event the hub publishes."""

from __future__ import annotations

from typing import Any

from integrationhub.connectors.base import Cursor
from integrationhub.connectors.zulip.answers import ReceivedMessage
from integrationhub.connectors.zulip.models import (
    ReadZulipMessages,
    ZulipCredential,
    ZulipMessageReceived,
)

__all__ = ["QueueCursor", "received", "registered_for"]


class QueueCursor:
    """The cursor of ``zulip-messages``: the event queue, the last event id read from it, and
    what the queue was registered for (a change of options needs a new queue)."""

    __slots__ = ("last_event_id", "queue_id", "registration")

    def __init__(self, queue_id: str, last_event_id: int, registration: dict[str, Any]) -> None:
        self.queue_id = queue_id
        self.last_event_id = last_event_id
        self.registration = registration

    @classmethod
    def read(cls, cursor: Cursor | None) -> QueueCursor | None:
        if cursor is None:
            return None
        queue_id, last_event_id = cursor.get("queue_id"), cursor.get("last_event_id")
        registration = cursor.get("registration")
        if not (
            isinstance(queue_id, str)
            and isinstance(last_event_id, int)
            and isinstance(registration, dict)
        ):
            return None
        return cls(queue_id, last_event_id, registration)

    def moved_to(self, last_event_id: int) -> QueueCursor:
        return QueueCursor(self.queue_id, last_event_id, self.registration)

    def dump(self) -> Cursor:
        return {
            "queue_id": self.queue_id,
            "last_event_id": self.last_event_id,
            "registration": self.registration,
        }


def registered_for(credential: ZulipCredential, options: ReadZulipMessages) -> dict[str, Any]:
    """What a queue is registered for; the secret is not part of it."""
    return {
        "site": credential.site,
        "email": credential.email,
        "narrow": [list(term) for term in options.narrow],
        "all_public_streams": options.all_public_streams,
    }


def received(message: ReceivedMessage, flags: list[str]) -> ZulipMessageReceived:
    common: dict[str, Any] = {
        "id": message.id,
        "sender_id": message.sender_id,
        "sender_email": message.sender_email,
        "sender_full_name": message.sender_full_name,
        "content": message.content,
        "timestamp": message.timestamp,
        "flags": flags,
    }
    if isinstance(message.display_recipient, list):
        return ZulipMessageReceived(
            type="direct", recipients=[r.email for r in message.display_recipient], **common
        )
    return ZulipMessageReceived(
        type="stream",
        stream=message.display_recipient,
        stream_id=message.stream_id,
        topic=message.subject,
        **common,
    )
