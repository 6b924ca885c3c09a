"""What the double records, and what an operation of the double is handed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Call", "Reaction", "RecordedFile", "RecordedRequest", "Upload"]


@dataclass(frozen=True)
class RecordedFile:
    """One file part of a multipart request, as it arrived."""

    field: str
    filename: str
    content_type: str
    data: bytes


@dataclass
class RecordedRequest:
    """One request as it arrived: ``form`` as sent, ``body`` as the spec decodes it (``to``
    JSON-decoded, booleans parsed), ``files`` the file parts of a multipart body, ``user`` the
    basic-auth user name, ``at`` its arrival (``time.monotonic()``), ``status`` our answer."""

    method: str
    path: str
    query: dict[str, str]
    form: dict[str, str]
    body: dict[str, Any] | None
    user: str | None
    files: list[RecordedFile] = field(default_factory=list)
    at: float = 0.0
    status: int | None = None


@dataclass(frozen=True)
class Call:
    """What an operation of the double is handed: path, query and body parameters merged, as
    the spec decodes them, and the file parts of a multipart body."""

    params: dict[str, Any]
    files: list[RecordedFile] = field(default_factory=list)


@dataclass(frozen=True)
class Reaction:
    """An emoji reaction on a message, as Zulip stores it."""

    message_id: int
    user_id: int
    emoji_name: str
    emoji_code: str
    reaction_type: str


@dataclass(frozen=True)
class Upload:
    """A file the double stored: ``url`` is what Zulip answers (``/user_uploads/...``),
    ``filename`` the name it was uploaded under, ``data`` its bytes as they arrived."""

    url: str
    filename: str
    content_type: str
    data: bytes
