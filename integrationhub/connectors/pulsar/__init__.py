"""Publish to any Pulsar topic on the hub's own broker, as a flow step.

No credential: the hub's connection to Pulsar is used. Short topic names get the hub's tenant
and namespace; full names (``persistent://tenant/namespace/topic``) are used as they are.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from integrationhub.connectors.base import BaseConnector, action
from integrationhub.errors import BusError, PermanentError, RetryableError

__all__ = ["MessagePublished", "PublishMessage", "PulsarConnector"]


class PublishMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    topic: str = Field(min_length=1, max_length=512)
    payload: Any = Field(description="any JSON value; sent as JSON")
    key: str | None = Field(None, max_length=512)
    properties: dict[str, str] = Field(default_factory=dict, max_length=64)


class MessagePublished(BaseModel):
    topic: str
    bytes: int


class PulsarConnector(BaseConnector[None]):
    """Publish messages to Pulsar topics."""

    name = "pulsar"

    @action("pulsar-publish", safe_to_repeat=False, timeout=15)
    async def publish(self, params: PublishMessage) -> MessagePublished:
        """Publish a JSON message, optionally with a key and properties."""
        if self.context.bus is None:
            raise PermanentError("pulsar-publish needs the hub's bus, which is not running")
        payload = json.dumps(params.payload).encode()
        try:
            await self.context.bus.publish(
                params.topic, payload, key=params.key, properties=params.properties
            )
        except BusError as exc:
            raise RetryableError(exc.message) from exc
        return MessagePublished(topic=params.topic, bytes=len(payload))
