"""Credential models for the API: what goes in, and the metadata that comes out."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

__all__ = ["CredentialId", "CredentialPublic", "CredentialPut"]

CredentialId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")]


class CredentialPut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
    data: dict[str, Any] = Field(max_length=100)


class CredentialPublic(BaseModel):
    """Metadata only: a secret value never leaves the hub."""

    id: str
    type: str
    fields: list[str]
    version: int
    updated_at: datetime
