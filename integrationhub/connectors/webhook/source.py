from __future__ import annotations

from typing import ClassVar

from pydantic import Field, SecretStr

from integrationhub.connectors.base import BaseConnector, Credential

__all__ = ["WebhookConnector", "WebhookSecret"]


class WebhookSecret(Credential):
    """The shared secret a webhook sender signs its requests with."""

    type: ClassVar[str] = "webhook-secret"

    secret: SecretStr = Field(min_length=8)


class WebhookConnector(BaseConnector[WebhookSecret]):
    """Receive signed webhooks (GitHub, Slack) as flow triggers."""

    name = "webhook"
