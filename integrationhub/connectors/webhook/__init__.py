"""Inbound webhooks: other systems call ``POST /api/v1/webhooks/{flow_id}`` to trigger a flow.

A flow opts in with ``trigger: {webhook: {...}}``. With ``signature`` and ``secret`` (the id of
a ``webhook-secret`` credential), each request must carry a valid HMAC signature:

- ``github``: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>``; the delivery id
  (``X-GitHub-Delivery``) makes a replayed delivery return the first run instead of a second.
- ``slack``: ``X-Slack-Signature: v0=<hex HMAC-SHA256 of "v0:<timestamp>:<body>">`` with
  ``X-Slack-Request-Timestamp``; timestamps older than ``max_age`` seconds are refused and a
  replayed signature returns the first run.

Without a secret the endpoint needs the hub's API key, like every other trigger.
"""

from __future__ import annotations

from integrationhub.connectors.webhook.signatures import SignatureInvalid, verify
from integrationhub.connectors.webhook.source import WebhookConnector, WebhookSecret

__all__ = ["SignatureInvalid", "WebhookConnector", "WebhookSecret", "verify"]
