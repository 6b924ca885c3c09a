"""Zulip: send stream and direct messages as a bot, and read new ones (REST API v1, Zulip 7.0
or newer).

Setup
-----
1. In Zulip, open *Personal settings → Bots → Add a new bot* and choose a *Generic bot*
   (an *Incoming webhook* bot can send, but cannot register the event queues that reading
   messages needs).
2. The new bot's card shows its email (``hub-bot@example.zulipchat.com``) and its **API key**;
   its downloadable ``zuliprc`` holds the same values as ``site``, ``email`` and ``key``.
3. Subscribe the bot to every stream it should post to (private streams refuse others).
4. Store the credential in the hub::

       PUT /api/v1/credentials/zulip-bot
       {"type": "zulip", "data": {"site": "https://example.zulipchat.com",
                                  "email": "hub-bot@example.zulipchat.com", "api_key": "..."}}

Quirks (checked against ``shared/specs/zulip.yaml``, operation ``send-message``)
-------------------------------------------------------------------------------
- Auth is HTTP Basic with the bot's *email* as user name and the *API key* as password.
- Requests are form-encoded, but ``to`` is JSON inside the form: a list for direct messages,
  a number or a JSON string for a stream. Zulip also takes a bare stream name; we always send
  JSON, as the spec says, which also keeps a stream named ``"2024"`` from being read as an id.
- ``type: "direct"`` needs Zulip 7.0 (feature level 174); ``"stream"`` works everywhere (Zulip
  9.0 added the synonym ``"channel"``).
- Zulip silently truncates content over 10000 characters and topics over 60, and refuses
  control characters in topics. We refuse all three before sending rather than lose text.
- Errors come as ``{"result": "error", "msg": ..., "code": ...}``, usually with a 400 (a 200
  carrying one is treated the same). A 429's body gives ``retry-after`` in seconds,
  fractional although the spec types it ``integer``.
- Sending is not idempotent: Zulip has no idempotency key for ``POST /messages``.

Reading messages (source ``zulip-messages``, operations ``register-queue`` and ``get-events``)
----------------------------------------------------------------------------------------------
Configure it as an inbound source, e.g. ``INTEGRATIONHUB_SOURCES='[{"id": "zulip-general",
"source": "zulip-messages", "credential": "zulip-bot", "options": {"narrow": [["channel",
"general"]]}}]'``; each new message goes to ``integrationhub.zulip.messages`` (or the source's
``topic``) as JSON (``ZulipMessageReceived``) keyed by the message id.

- ``POST /register`` with ``event_types=["message"]`` and the narrow creates an event queue;
  ``GET /events?queue_id&last_event_id`` long-polls it and acknowledges everything up to
  ``last_event_id``. The cursor the hub persists is ``{queue_id, last_event_id, registration}``,
  so a restarted hub continues on the same queue, from the first event it had not published.
- An idle long-poll is answered with a ``heartbeat`` event (about every minute, under 90 s):
  it moves the cursor on and is not published. The HTTP timeout is ``longpoll_timeout``.
- Zulip drops a queue nobody polled for about 10 minutes (and on a server restart); the next
  ``GET /events`` answers 400 ``BAD_EVENT_QUEUE_ID``. The source then registers a new queue and
  reports the gap: Zulip cannot replay the messages sent in between.
- The narrow only filters what the bot receives: it must be subscribed to the streams (or use
  ``all_public_streams``). Its own messages are skipped unless ``include_own_messages``.
"""

from __future__ import annotations

from integrationhub.connectors.zulip.answers import read_answer
from integrationhub.connectors.zulip.connector import ZulipConnector
from integrationhub.connectors.zulip.models import (
    ReadZulipMessages,
    SendDirectMessage,
    SendStreamMessage,
    SendZulipMessage,
    ZulipCredential,
    ZulipMessageReceived,
    ZulipMessageSent,
)

__all__ = [
    "ReadZulipMessages",
    "SendDirectMessage",
    "SendStreamMessage",
    "SendZulipMessage",
    "ZulipConnector",
    "ZulipCredential",
    "ZulipMessageReceived",
    "ZulipMessageSent",
    "read_answer",
]
