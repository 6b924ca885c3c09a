"""The Slack connector: declares the ``slack-message`` and ``slack-webhook-message`` actions,
nothing more."""

from __future__ import annotations

import httpx

from integrationhub.connectors.base import BaseConnector, action
from integrationhub.connectors.slack.answers import (
    read_message_answer,
    read_webhook_answer,
    redacting,
)
from integrationhub.connectors.slack.models import (
    SendSlackMessage,
    SendSlackWebhookMessage,
    SlackBotCredential,
    SlackMessageSent,
    SlackWebhookCredential,
    SlackWebhookMessageSent,
)
from integrationhub.core.http import transport_failure
from integrationhub.errors import PermanentError

__all__ = ["SlackConnector"]


class SlackConnector(BaseConnector[SlackBotCredential | SlackWebhookCredential]):
    """Post to Slack as a bot (Web API chat.postMessage) or through an incoming webhook."""

    name = "slack"
    # chat.postMessage allows about one message a second per channel, with short bursts, and
    # an incoming webhook (one channel) the same. The hub counts per credential, not per
    # channel: 5 in any 5 s admits a short burst and keeps one channel at Slack's pace. A bot
    # that posts to many channels at once may raise it with its credential's ``rate_limit``.
    rate_limit = "5 per 5 seconds"

    @action("slack-message", safe_to_repeat=False)
    async def send_message(self, params: SendSlackMessage) -> SlackMessageSent:
        """Post a message to a channel, or a thread in it, as the bot (chat.postMessage)."""
        credential = self.credential
        if not isinstance(credential, SlackBotCredential):
            raise PermanentError("slack-message needs a slack-bot credential")
        what = "Slack chat.postMessage"
        with redacting(credential.token.get_secret_value()):
            try:
                response = await self.http.post(
                    f"{credential.base_url}/chat.postMessage", data=params.form(), auth=self.auth
                )
            except httpx.TransportError as exc:
                # Retried although the message may have reached Slack before a read failed:
                # a rare duplicate is the lesser harm than a lost message.
                raise transport_failure(what, exc) from exc
            answer = read_message_answer(response, what=what)
        thread_ts = answer.message.thread_ts if answer.message else None
        return SlackMessageSent(
            channel=answer.channel, ts=answer.ts, thread_ts=thread_ts or params.thread_ts
        )

    @action("slack-webhook-message", safe_to_repeat=False)
    async def send_webhook_message(
        self, params: SendSlackWebhookMessage
    ) -> SlackWebhookMessageSent:
        """Post a message to the channel of an incoming webhook."""
        credential = self.credential
        if not isinstance(credential, SlackWebhookCredential):
            raise PermanentError("slack-webhook-message needs a slack-webhook credential")
        what = "Slack incoming webhook"
        url = credential.url.get_secret_value()
        with redacting(*_parts(url)):
            try:
                response = await self.http.post(url, json=params.payload())
            except httpx.TransportError as exc:
                # Not chained: the exception holds the request, and so the URL.
                raise transport_failure(what, exc) from None
            read_webhook_answer(response, what=what)
        return SlackWebhookMessageSent()


def _parts(url: str) -> tuple[str, ...]:
    """The webhook URL as errors may quote it: as given, as httpx normalises it, its path and
    the path's last segment (the secret part of ``/services/T…/B…/<secret>``)."""
    parsed = httpx.URL(url)
    return (
        url,
        str(parsed),
        parsed.path,
        parsed.raw_path.decode("ascii"),
        parsed.path.rsplit("/")[-1],
    )
