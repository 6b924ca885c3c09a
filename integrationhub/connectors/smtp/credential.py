from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import EmailStr, Field, SecretStr

from integrationhub.connectors.base import Credential

__all__ = ["SmtpCredential"]


class SmtpCredential(Credential):
    type: ClassVar[str] = "smtp"

    host: str = Field(min_length=1, max_length=253)
    port: int = Field(ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    security: Literal["none", "starttls", "tls"] = "starttls"
    from_address: EmailStr
    ca_cert: str | None = Field(None, description="PEM bundle to trust instead of the system CAs")
