"""The Zulip connector: declares the ``zulip-message`` action and the ``zulip-messages``
source, nothing more."""

from __future__ import annotations

import json
from typing import Any

import httpx

from integrationhub.connectors.base import BaseConnector, Batch, Cursor, Event, action, source
from integrationhub.connectors.zulip.answers import (
    EventsAnswer,
    MessageSentAnswer,
    QueueRegisteredAnswer,
    ReceivedMessage,
    queue_gone,
    read_answer,
)
from integrationhub.connectors.zulip.models import (
    ReadZulipMessages,
    SendZulipMessage,
    ZulipCredential,
    ZulipMessageReceived,
    ZulipMessageSent,
)
from integrationhub.errors import PermanentError, RetryableError

__all__ = ["ZulipConnector"]

_CONNECT_TIMEOUT = 10.0


class ZulipConnector(BaseConnector[ZulipCredential]):
    """Post to Zulip as a bot (REST API v1). Credential: site, email, api_key."""

    name = "zulip"
    # Zulip's documented default: 200 requests per minute per user (api_docs/http-headers.md
    # and the server's RATE_LIMITING_RULES). The bot is one user, whatever the replica.
    rate_limit = "200 per 60 seconds"

    @action("zulip-message", safe_to_repeat=False)
    async def send_message(self, params: SendZulipMessage) -> ZulipMessageSent:
        """Send a stream message to a topic, or a direct message to users, as the bot."""
        what = "Zulip POST /messages"
        credential = self._credential()
        try:
            response = await self.http.post(
                f"{credential.site}/api/v1/messages",
                data=params.root.form(),
                auth=self.auth,
            )
        except httpx.TransportError as exc:
            # The message may have reached Zulip before a read failed: the engine weighs that
            # against ``safe_to_repeat=False``, not us.
            raise RetryableError(f"{what} failed: {type(exc).__name__}") from exc
        answer = read_answer(response, MessageSentAnswer, what=what)
        return ZulipMessageSent(message_id=answer.id)

    @source("zulip-messages", event=ZulipMessageReceived, topic="integrationhub.zulip.messages")
    async def read_messages(self, cursor: Cursor | None, options: ReadZulipMessages) -> Batch:
        """New messages the bot receives, in the narrow, through a Zulip event queue read by
        long-poll; each is published keyed by its message id."""
        credential = self._credential()
        registration = _registration(credential, options)
        queue = _QueueCursor.read(cursor)
        if queue is None or queue.registration != registration:
            gap = None
            if cursor is not None:
                gap = "registered a new Zulip event queue for changed options or credential; "
                gap += "messages the old queue held unread are not read"
            return await self._register(credential, options, registration, gap=gap)

        what = "Zulip GET /events"
        try:
            response = await self.http.get(
                f"{credential.site}/api/v1/events",
                params={"queue_id": queue.queue_id, "last_event_id": queue.last_event_id},
                auth=self.auth,
                timeout=httpx.Timeout(options.longpoll_timeout, connect=_CONNECT_TIMEOUT),
            )
        except httpx.TransportError as exc:
            raise RetryableError(f"{what} failed: {type(exc).__name__}") from exc
        if queue_gone(response):
            gap = f"Zulip event queue {queue.queue_id} is gone and was registered anew; "
            gap += "messages sent while it was gone are not read (Zulip cannot replay them)"
            return await self._register(credential, options, registration, gap=gap)
        answer = read_answer(response, EventsAnswer, what=what)

        own = credential.email.lower()
        events = [
            Event(key=str(event.message.id), payload=_received(event.message, event.flags))
            for event in answer.events  # heartbeats too move the cursor on, and are skipped
            if event.type == "message"
            and event.message is not None
            and (options.include_own_messages or event.message.sender_email.lower() != own)
        ]
        last_event_id = max((event.id for event in answer.events), default=queue.last_event_id)
        return Batch(events=events, cursor=queue.moved_to(last_event_id).dump())

    async def _register(
        self,
        credential: ZulipCredential,
        options: ReadZulipMessages,
        registration: dict[str, Any],
        *,
        gap: str | None,
    ) -> Batch:
        what = "Zulip POST /register"
        form = {"event_types": '["message"]', "narrow": json.dumps(options.narrow)}
        if options.all_public_streams:
            form["all_public_streams"] = "true"
        try:
            response = await self.http.post(
                f"{credential.site}/api/v1/register", data=form, auth=self.auth
            )
        except httpx.TransportError as exc:
            raise RetryableError(f"{what} failed: {type(exc).__name__}") from exc
        answer = read_answer(response, QueueRegisteredAnswer, what=what)
        queue = _QueueCursor(answer.queue_id, answer.last_event_id, registration)
        return Batch(events=[], cursor=queue.dump(), gap=gap)

    def _credential(self) -> ZulipCredential:
        if not isinstance(self.credential, ZulipCredential):
            raise PermanentError("the zulip connector needs a zulip credential")
        return self.credential


class _QueueCursor:
    """The cursor of ``zulip-messages``: the event queue, the last event id read from it, and
    what the queue was registered for (a change of options needs a new queue)."""

    __slots__ = ("last_event_id", "queue_id", "registration")

    def __init__(self, queue_id: str, last_event_id: int, registration: dict[str, Any]) -> None:
        self.queue_id = queue_id
        self.last_event_id = last_event_id
        self.registration = registration

    @classmethod
    def read(cls, cursor: Cursor | None) -> _QueueCursor | None:
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

    def moved_to(self, last_event_id: int) -> _QueueCursor:
        return _QueueCursor(self.queue_id, last_event_id, self.registration)

    def dump(self) -> Cursor:
        return {
            "queue_id": self.queue_id,
            "last_event_id": self.last_event_id,
            "registration": self.registration,
        }


def _registration(credential: ZulipCredential, options: ReadZulipMessages) -> dict[str, Any]:
    """What a queue is registered for; the secret is not part of it."""
    return {
        "site": credential.site,
        "email": credential.email,
        "narrow": [list(term) for term in options.narrow],
        "all_public_streams": options.all_public_streams,
    }


def _received(message: ReceivedMessage, flags: list[str]) -> ZulipMessageReceived:
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
