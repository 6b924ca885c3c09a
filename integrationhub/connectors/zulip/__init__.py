"""Zulip: send stream and direct messages as a bot, react to messages, upload files, and read
new messages (REST API v1, Zulip 7.0 or newer).

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
--------------------------------------------------------------------------------
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

Rate limits (``api_docs/http-headers.md`` of Zulip; not in the YAML)
--------------------------------------------------------------------
- Zulip limits each user, so the bot, to 200 requests a minute by default (the connector's
  default ``rate_limit``); servers may configure other limits.
- Every answer carries ``X-RateLimit-Limit``, ``X-RateLimit-Remaining`` and
  ``X-RateLimit-Reset`` (Unix time; Zulip truncates it to whole seconds). When ``Remaining``
  reaches 0, the hub holds every later call with the credential until the reset, in every
  replica.
- Over the limit, Zulip answers 429 ``RATE_LIMIT_HIT`` with ``retry-after`` in the body and
  the ``Retry-After`` header, both fractional seconds: ``RateLimited`` waiting the body's value
  (the header's without a body), which also holds back later calls. The three actions
  share the bot's budget, and all honour this.

Reacting (action ``zulip-reaction``, operations ``add-reaction`` and ``remove-reaction``)
-----------------------------------------------------------------------------------------
- ``emoji_name`` alone is enough (``octopus``; ``:octopus:`` is sent as ``octopus``): Zulip
  looks up ``emoji_code`` and ``reaction_type``, which a step may give to be exact.
- Adding a reaction the bot already made answers 400 ``REACTION_ALREADY_EXISTS``; removing
  one it has not made, ``REACTION_DOES_NOT_EXIST`` (Zulip 8.0, feature level 193; before,
  ``BAD_REQUEST`` with "Reaction already exists." / "Reaction doesn't exist."). Both mean the
  state asked for holds: success with ``changed: false``. That makes the action safe to
  repeat. Zulip translates ``msg`` into the bot's language, so on servers older than 8.0
  only an English-speaking bot's "already" is recognised.
- A message that does not exist or the bot cannot see answers "Invalid message(s)", an
  unknown emoji "Emoji '...' does not exist": ``PermanentError`` with Zulip's message.
- The body of ``DELETE`` is form-encoded like the ``POST``'s, as the spec describes it.

Uploading (action ``zulip-upload``, operation ``upload-file``)
--------------------------------------------------------------
- ``multipart/form-data`` with one file part (the spec names it ``filename``); Zulip keeps
  the part's file name. The content comes as text (sent as UTF-8) or base64
  (``encoding: base64``, as ``http-request`` gives binary bodies); the content type is
  guessed from the name unless given.
- At most 25 MiB, Zulip's default ``max_file_upload_size_mib``: more is refused before
  sending, and a server with a lower limit answers 400, a ``PermanentError``. Larger files
  need Zulip's resumable ``tus`` endpoint (Zulip 10.0), which the action does not speak. A
  step's input that comes through the API is also capped by
  ``INTEGRATIONHUB_MAX_BODY_BYTES`` (1 MiB by default); larger files come from an earlier
  step's output.
- File names that look like paths (``/``, ``\\``, ``..``) or hold control characters are
  refused: Zulip would keep only a part of them.
- The answer gives the URL as ``url`` since Zulip 9.0 (feature level 272) and as ``uri``
  before (still sent, deprecated); since Zulip 10.0 (feature level 285) also the
  ``filename`` it stored. The URL is a path on the site (``/user_uploads/...``), which Zulip
  markdown links as is: the result's ``markdown`` is ``[filename](url)`` with ``[`` and ``]``
  dropped from the name, as the spec advises, ready for a ``zulip-message`` step. Only the
  bot can open the file until a message links it.
- Not safe to repeat: a second upload is a second file, and Zulip has no idempotency key.

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
from integrationhub.connectors.zulip.reactions import ReactToZulipMessage, ZulipReactionSet
from integrationhub.connectors.zulip.uploads import (
    MAX_UPLOAD_BYTES,
    UploadZulipFile,
    ZulipFileUploaded,
)

__all__ = [
    "MAX_UPLOAD_BYTES",
    "ReactToZulipMessage",
    "ReadZulipMessages",
    "SendDirectMessage",
    "SendStreamMessage",
    "SendZulipMessage",
    "UploadZulipFile",
    "ZulipConnector",
    "ZulipCredential",
    "ZulipFileUploaded",
    "ZulipMessageReceived",
    "ZulipMessageSent",
    "ZulipReactionSet",
    "read_answer",
]
