"""The ``example`` connector: a credential type, two models and one action. It only declares;
the hub resolves the credential, signs the request in, rate-limits, retries and records."""

from __future__ import annotations

from typing import Annotated, ClassVar

import httpx
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr

from integrationhub.connectors.auth import AuthScheme, BearerToken
from integrationhub.connectors.base import BaseConnector, Credential, action
from integrationhub.connectors.http.credentials import http_url
from integrationhub.core.http import raise_for_status, transport_failure
from integrationhub.errors import PermanentError

__all__ = ["EchoMessage", "ExampleConnector", "ExampleCredential", "MessageEchoed"]


class ExampleCredential(Credential):
    """Where the API is, and the token it takes."""

    type: ClassVar[str] = "example"
    auth: ClassVar[AuthScheme] = BearerToken("token")  # the hub signs every request in

    base_url: Annotated[str, AfterValidator(http_url)]
    token: SecretStr = Field(min_length=1)


class EchoMessage(BaseModel):
    """Echo one line of text."""

    model_config = ConfigDict(extra="forbid")

    message: str = Field(min_length=1, max_length=1000, pattern=r"^[^\r\n]*$")


class MessageEchoed(BaseModel):
    """What the API sent back."""

    message: str
    signed_in: bool


class ExampleConnector(BaseConnector[ExampleCredential]):
    """Echo messages through an httpbin-like API."""

    name = "example"
    rate_limit = "10/second"  # the API's documented limit, per credential

    @action("example-echo", safe_to_repeat=True, timeout=10)
    async def echo(self, params: EchoMessage) -> MessageEchoed:
        """Post the message to ``/anything`` and return the echo."""
        what = "example POST /anything"
        try:
            response = await self.http.post(
                f"{self.credential.base_url.rstrip('/')}/anything",
                json={"message": params.message},
                auth=self.auth,
            )
        except httpx.TransportError as exc:
            raise transport_failure(what, exc) from exc  # says whether it may have been sent
        raise_for_status(response, what=what)  # 429/5xx retryable, other 4xx permanent
        try:
            echoed = response.json()
            return MessageEchoed(
                message=echoed["json"]["message"],
                signed_in=echoed["headers"].get("authorization", "").startswith("Bearer "),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise PermanentError(f"{what} answered with something that is not an echo") from exc
