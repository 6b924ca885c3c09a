"""The Zulip connector: declares the ``zulip-message``, ``zulip-reaction`` and ``zulip-upload``
actions and the ``zulip-messages`` source, nothing more."""

from __future__ import annotations

import json
from typing import Any

import httpx

from integrationhub.connectors.base import BaseConnector, Batch, Cursor, Event, action, source
from integrationhub.connectors.zulip.answers import (
    EventsAnswer,
    FileUploadedAnswer,
    MessageSentAnswer,
    QueueRegisteredAnswer,
    SuccessAnswer,
    already_so,
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
from integrationhub.connectors.zulip.queue import QueueCursor, received, registered_for
from integrationhub.connectors.zulip.reactions import ReactToZulipMessage, ZulipReactionSet
from integrationhub.connectors.zulip.uploads import (
    UploadZulipFile,
    ZulipFileUploaded,
    markdown_link,
)
from integrationhub.core.http import transport_failure
from integrationhub.errors import PermanentError

__all__ = ["ZulipConnector"]

_CONNECT_TIMEOUT = 10.0
# What Zulip answers when a reaction already is as asked, by ``remove``: the code (Zulip 8.0,
# feature level 193, and later) and, for older servers, the message of their BAD_REQUEST.
_ALREADY_SO = {
    False: ("REACTION_ALREADY_EXISTS", "Reaction already exists."),
    True: ("REACTION_DOES_NOT_EXIST", "Reaction doesn't exist."),
}


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
            raise transport_failure(what, exc) from exc
        answer = read_answer(response, MessageSentAnswer, what=what)
        return ZulipMessageSent(message_id=answer.id)

    # Safe to repeat: the action asks for a state (the bot's reaction present, or absent), and
    # Zulip's "already so" answer to a repeat counts as success. A repeat is then harmless.
    @action("zulip-reaction", safe_to_repeat=True)
    async def react(self, params: ReactToZulipMessage) -> ZulipReactionSet:
        """Add the bot's emoji reaction to a message, or remove it (``remove: true``); a
        reaction that is already so succeeds with ``changed: false``."""
        method = "DELETE" if params.remove else "POST"
        path = f"/messages/{params.message_id}/reactions"
        what = f"Zulip {method} {path}"
        credential = self._credential()
        try:
            response = await self.http.request(
                method, f"{credential.site}/api/v1{path}", data=params.form(), auth=self.auth
            )
        except httpx.TransportError as exc:
            raise transport_failure(what, exc) from exc
        code, legacy_msg = _ALREADY_SO[params.remove]
        already = already_so(response, code=code, legacy_msg=legacy_msg)
        if not already:
            read_answer(response, SuccessAnswer, what=what)
        return ZulipReactionSet(
            message_id=params.message_id,
            emoji_name=params.emoji_name,
            present=not params.remove,
            changed=not already,
        )

    # Not safe to repeat: each upload is a new file with a new URL, and Zulip has no key to
    # recognise a repeat by. A lost answer leaves an orphan only the bot can see.
    @action("zulip-upload", safe_to_repeat=False, timeout=120)
    async def upload_file(self, params: UploadZulipFile) -> ZulipFileUploaded:
        """Upload a file (at most 25 MiB) for the bot; returns its URL and a markdown link to
        post in a message, which shares it."""
        what = "Zulip POST /user_uploads"
        credential = self._credential()
        data, content_type = params.data, params.media_type()
        try:
            response = await self.http.post(
                f"{credential.site}/api/v1/user_uploads",
                # The spec names the part ``filename``; Zulip takes the one file, whatever its
                # part's name, under the part's file name.
                files={"filename": (params.filename, data, content_type)},
                auth=self.auth,
            )
        except httpx.TransportError as exc:
            raise transport_failure(what, exc) from exc
        answer = read_answer(response, FileUploadedAnswer, what=what)
        url = answer.location
        filename = answer.filename or params.filename  # Zulip before 10.0 does not say
        absolute = url
        if not url.startswith(("https://", "http://")):
            absolute = f"{credential.site}/{url.lstrip('/')}"
        return ZulipFileUploaded(
            url=url,
            absolute_url=absolute,
            filename=filename,
            markdown=markdown_link(filename, url),
            size=len(data),
            content_type=content_type,
        )

    @source("zulip-messages", event=ZulipMessageReceived, topic="integrationhub.zulip.messages")
    async def read_messages(self, cursor: Cursor | None, options: ReadZulipMessages) -> Batch:
        """New messages the bot receives, in the narrow, through a Zulip event queue read by
        long-poll; each is published keyed by its message id."""
        credential = self._credential()
        registration = registered_for(credential, options)
        queue = QueueCursor.read(cursor)
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
            raise transport_failure(what, exc) from exc
        if queue_gone(response):
            gap = f"Zulip event queue {queue.queue_id} is gone and was registered anew; "
            gap += "messages sent while it was gone are not read (Zulip cannot replay them)"
            return await self._register(credential, options, registration, gap=gap)
        answer = read_answer(response, EventsAnswer, what=what)

        own = credential.email.lower()
        events = [
            Event(key=str(event.message.id), payload=received(event.message, event.flags))
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
            raise transport_failure(what, exc) from exc
        answer = read_answer(response, QueueRegisteredAnswer, what=what)
        queue = QueueCursor(answer.queue_id, answer.last_event_id, registration)
        return Batch(events=[], cursor=queue.dump(), gap=gap)

    def _credential(self) -> ZulipCredential:
        if not isinstance(self.credential, ZulipCredential):
            raise PermanentError("the zulip connector needs a zulip credential")
        return self.credential
