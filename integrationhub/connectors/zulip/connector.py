"""The Zulip connector: declares the ``zulip-message`` action, nothing more."""

from __future__ import annotations

import httpx

from integrationhub.connectors.base import BaseConnector, action
from integrationhub.connectors.zulip.answers import MessageSentAnswer, read_answer
from integrationhub.connectors.zulip.models import (
    SendZulipMessage,
    ZulipCredential,
    ZulipMessageSent,
)
from integrationhub.errors import PermanentError, RetryableError

__all__ = ["ZulipConnector"]


class ZulipConnector(BaseConnector[ZulipCredential]):
    """Post to Zulip as a bot (REST API v1). Credential: site, email, api_key."""

    name = "zulip"

    @action("zulip-message", safe_to_repeat=False)
    async def send_message(self, params: SendZulipMessage) -> ZulipMessageSent:
        """Send a stream message to a topic, or a direct message to users, as the bot."""
        what = "Zulip POST /messages"
        credential = self._credential()
        try:
            response = await self.http.post(
                f"{credential.site}/api/v1/messages",
                data=params.root.form(),
                auth=httpx.BasicAuth(credential.email, credential.api_key.get_secret_value()),
            )
        except httpx.TransportError as exc:
            # The message may have reached Zulip before a read failed: the engine weighs that
            # against ``safe_to_repeat=False``, not us.
            raise RetryableError(f"{what} failed: {type(exc).__name__}") from exc
        answer = read_answer(response, MessageSentAnswer, what=what)
        return ZulipMessageSent(message_id=answer.id)

    def _credential(self) -> ZulipCredential:
        if not isinstance(self.credential, ZulipCredential):
            raise PermanentError("zulip-message needs a zulip credential")
        return self.credential
