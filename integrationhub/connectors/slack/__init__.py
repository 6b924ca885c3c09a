"""Slack: post messages as a bot through the Web API (``chat.postMessage``), or to one channel
through an incoming webhook.

Setup
-----
1. At https://api.slack.com/apps, *Create New App → From scratch*, in your workspace.
2. *OAuth & Permissions → Bot Token Scopes*: add ``chat:write``. Add ``chat:write.public`` to
   post in public channels the bot has not joined, and ``chat:write.customize`` to use
   ``username``/``icon_emoji``/``icon_url``.
3. *Install to Workspace*, then copy the **Bot User OAuth Token** (``xoxb-…``).
4. Invite the bot to every private channel it posts to (``/invite @your-app``); without
   ``chat:write.public``, to the public ones too.
5. Store the credential in the hub::

       PUT /api/v1/credentials/slack-bot
       {"type": "slack-bot", "data": {"token": "xoxb-..."}}

For ``slack-webhook-message``: in the same app, *Incoming Webhooks → Activate*, then *Add New
Webhook to Workspace* and pick the channel. Store the URL it shows; it is the secret::

       PUT /api/v1/credentials/slack-alerts
       {"type": "slack-webhook", "data": {"url": "https://hooks.slack.com/services/T…/B…/…"}}

Quirks (checked against ``shared/specs/slack_web_openapi_v2.json``, operation ``chat_postMessage``)
------------------------------------------------------------------------------------------------
- The spec declares the token as a required *header parameter named* ``token``; Slack reads
  ``Authorization: Bearer xoxb-…``, which the credential's scheme sends. The token never goes
  into the body.
- Every argument is declared ``in: formData`` (the spec ``consumes`` form or JSON, but
  describes no JSON body), so we send ``application/x-www-form-urlencoded`` as declared:
  booleans as ``true``/``false``, ``blocks`` and ``attachments`` as "a JSON-based array …
  presented as a URL-encoded string". A form also needs no ``charset`` parameter, without which
  Slack warns ``missing_charset`` on JSON bodies.
- Failures come back as **HTTP 200** with ``{"ok": false, "error": "…"}`` (the spec's
  ``default`` response). The spec (2020) lists 16 error codes; Slack returns more
  (``missing_scope``, ``invalid_blocks``, ``internal_error``…): an unknown code is permanent,
  the documented transient ones (``internal_error``, ``fatal_error``, ``service_unavailable``,
  ``request_timeout``, ``team_added_to_org``) are retried.
- Rate limits are HTTP 429 with ``Retry-After`` in seconds and error ``ratelimited``; the
  spec's enum spells it ``rate_limited``. Both are ``RateLimited``, which holds back every
  later call with the credential for that long.
- ``text`` is mrkdwn: ``<https://example.com|label>``, ``<@U0123ABCD>``, ``<!here>``; a literal
  ``&``, ``<`` or ``>`` must be sent as ``&amp;``, ``&lt;``, ``&gt;``. With ``blocks``, ``text``
  is the fallback notifications show. Slack truncates text over 40,000 characters, takes 50
  blocks and 100 attachments; we refuse more before sending.
- ``channel`` may be a name, but an ID (``C0123ABCDEF``) survives renames; the answer always
  carries the ID. A user's ID posts to the bot's direct messages with them.
- ``ts`` is the message's id in its channel (``"1503435956.000247"``), a string: as a float it
  would lose digits. Pass it as ``thread_ts`` to reply in the thread.
- Posting is not idempotent: chat.postMessage has no idempotency key. A 5xx, a transient
  error (Slack says "some aspect of the operation" may have succeeded) or a connection lost
  after sending is still retried: a rare duplicate is the lesser harm than a lost message.

Incoming webhooks (not part of the Web API spec; checked against Slack's webhook documentation)
-------------------------------------------------------------------------------------------------
- The URL alone authorises: no header is sent, and no error or log quotes the URL or its path.
- The body is JSON: ``text``, ``blocks``, ``attachments``, ``thread_ts``, ``mrkdwn``,
  ``unfurl_links``, ``unfurl_media``. Webhooks of Slack apps ignore ``channel``, ``username``
  and icon overrides, so they are not offered.
- Slack answers a plain-text ``ok``; errors are plain-text codes: 400 (``invalid_payload``,
  ``no_text``), 403 (``action_prohibited``, ``invalid_token``), 404 (``channel_not_found``,
  ``no_service``), 410 (``channel_is_archived``), 429 with ``Retry-After``, 500
  (``rollup_error``). The answer carries no ``ts``: a webhook's message cannot be threaded on.
"""

from __future__ import annotations

from integrationhub.connectors.slack.answers import (
    read_message_answer,
    read_webhook_answer,
    redacting,
)
from integrationhub.connectors.slack.connector import SlackConnector
from integrationhub.connectors.slack.models import (
    SendSlackMessage,
    SendSlackWebhookMessage,
    SlackBotCredential,
    SlackMessageSent,
    SlackWebhookCredential,
    SlackWebhookMessageSent,
)

__all__ = [
    "SendSlackMessage",
    "SendSlackWebhookMessage",
    "SlackBotCredential",
    "SlackConnector",
    "SlackMessageSent",
    "SlackWebhookCredential",
    "SlackWebhookMessageSent",
    "read_message_answer",
    "read_webhook_answer",
    "redacting",
]
