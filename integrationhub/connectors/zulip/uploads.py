"""What the ``zulip-upload`` action takes and gives (operation ``upload-file``).

The file travels in the step's input as text, or as base64 for anything else (the encoding
the ``http-request`` action gives binary bodies in), and is refused here, before any request,
when Zulip would refuse it or could only store it under another name.
"""

from __future__ import annotations

import base64
import binascii
import functools
import mimetypes
import re
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from integrationhub.connectors.zulip.models import _printable

__all__ = ["MAX_UPLOAD_BYTES", "UploadZulipFile", "ZulipFileUploaded", "markdown_link"]

# Zulip's default ``MAX_FILE_UPLOAD_SIZE`` (25 MiB). A server may allow less (its answer then
# says so, and the step fails) or more (uploads that large belong to Zulip's resumable ``tus``
# endpoint, which this action does not speak).
MAX_UPLOAD_BYTES = 25 * 1024 * 1024
_MAX_BASE64_CHARS = (MAX_UPLOAD_BYTES + 2) // 3 * 4


def _bare_filename(value: str) -> str:
    # Zulip keeps only the last part of a path; a caller who sends one most likely meant
    # something else (a file on the hub, which this action never reads), so say so.
    if "/" in value or "\\" in value:
        raise ValueError("must be a file name without / or \\, not a path")
    if value in (".", ".."):
        raise ValueError("must be a file name, not . or ..")
    return _printable(value)


def _size_error(size: int) -> ValueError:
    return ValueError(
        f"is {size} bytes, over Zulip's default upload limit of 25 MiB ({MAX_UPLOAD_BYTES} bytes)"
    )


def _decode(content: str, encoding: str) -> bytes:
    if encoding == "base64":
        compact = "".join(content.split())  # line breaks, as base64 tools often wrap
        if len(compact) > _MAX_BASE64_CHARS:  # before decoding what cannot be sent anyway
            raise _size_error(len(compact) // 4 * 3)
        try:
            data = base64.b64decode(compact, validate=True)
        except binascii.Error:
            raise ValueError("is not valid base64 (standard alphabet, with padding)") from None
    else:
        if len(content) > MAX_UPLOAD_BYTES:  # a character is at least a byte
            raise _size_error(len(content))
        try:
            data = content.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("is not text (it holds a lone surrogate); send base64") from None
    if len(data) > MAX_UPLOAD_BYTES:
        raise _size_error(len(data))
    # Zulip would store an empty file; a flow that uploads one almost always rendered an
    # empty template, which is better caught here.
    if not data:
        raise ValueError("must not be empty")
    return data


# type/subtype in RFC 6838's characters, parameters allowed; nothing else, as it becomes a
# header of the upload's part.
_MEDIA_TYPE = re.compile(
    r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*"
    r"( *; *[A-Za-z0-9!#$&^_.+-]+=[A-Za-z0-9!#$&^_.+-]+)*"
)


def _media_type(value: str) -> str:
    if not _MEDIA_TYPE.fullmatch(value):
        raise ValueError("must be a media type such as application/pdf or text/csv; charset=utf-8")
    return value


@functools.cache
def _media_types() -> mimetypes.MimeTypes:
    # Python's own table only: the host's /etc/mime.types must not change what is sent.
    return mimetypes.MimeTypes()


FileName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=255),
    AfterValidator(_bare_filename),
]
MediaType = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=200), AfterValidator(_media_type)
]


class UploadZulipFile(BaseModel):
    """Upload a file for the bot, to link in a message: ``content`` as text, or as base64
    with ``encoding: base64``; at most 25 MiB."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    filename: FileName = Field(description='the name Zulip shows, e.g. "report.pdf"; no path')
    encoding: Literal["text", "base64"] = Field(
        "text", description="how content is given: text (sent as UTF-8) or base64 (any bytes)"
    )
    content: str = Field(description="the file's content, in the encoding")
    content_type: MediaType | None = Field(
        None, description="e.g. application/pdf; guessed from the filename when not given"
    )

    @field_validator("content")
    @classmethod
    def _content_decodes_within_the_limit(cls, value: str, info: ValidationInfo) -> str:
        if "encoding" in info.data:  # else the encoding is what failed
            _decode(value, info.data["encoding"])
        return value

    @functools.cached_property
    def data(self) -> bytes:
        """The bytes to upload."""
        return _decode(self.content, self.encoding)

    def media_type(self) -> str:
        """The content type to send: the given one, else guessed from the name."""
        if self.content_type:
            return self.content_type
        guessed, _ = _media_types().guess_type(self.filename)
        if guessed:
            return guessed
        return "text/plain" if self.encoding == "text" else "application/octet-stream"


class ZulipFileUploaded(BaseModel):
    """The uploaded file. ``url`` is Zulip's, a path on the organisation's site, which is how
    a message links it; ``markdown`` is that link, ready to post; ``absolute_url`` opens it
    from elsewhere (for people logged in to Zulip). Only the bot sees the file until a
    message links it."""

    model_config = ConfigDict(frozen=True)

    url: str
    absolute_url: str
    filename: str
    markdown: str
    size: int
    content_type: str


def markdown_link(filename: str, url: str) -> str:
    """``[filename](url)``, as Zulip's upload-file documentation says to link an upload."""
    # "[" and "]" would end the link text early (Zulip's advice is to drop them).
    text = filename.replace("[", "").replace("]", "").strip() or "file"
    return f"[{text}]({url})"
