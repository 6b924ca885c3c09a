"""The double's ``upload-file`` operation, as Zulip's ``upload_file_backend`` does it: exactly
one file part (whatever the part's name), within the organisation's upload limit, stored under
``/user_uploads/<realm>/<random>/<sanitised name>``.

The multipart body itself is checked twice: openapi-core decodes it against the spec's schema
(an object whose ``filename`` property is binary), and the double reads the parts' file names
and content types, which that decoding drops, with Starlette's form parser."""

from __future__ import annotations

import re
import secrets
import unicodedata
from typing import TYPE_CHECKING
from urllib.parse import quote

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response

from tests.doubles.zulip.records import Call, RecordedFile, Upload
from tests.doubles.zulip.shapes import zulip_error, zulip_success

if TYPE_CHECKING:
    from tests.doubles.zulip.double import ZulipDouble

__all__ = ["REALM_ID", "file_parts", "upload_file"]

REALM_ID = 2
URL_LEVEL = 272  # Zulip 9.0: ``url`` beside the deprecated ``uri``
FILENAME_LEVEL = 285  # Zulip 10.0: the ``filename`` the upload was stored as


async def file_parts(request: Request) -> list[RecordedFile]:
    """The file parts of a multipart request (parts with a file name, as Django counts them)."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        return []
    files = []
    async with request.form(max_part_size=64 * 1024 * 1024) as form:
        for name, value in form.multi_items():
            if isinstance(value, UploadFile) and value.filename:
                data = await value.read()
                content_type = value.content_type or "application/octet-stream"
                files.append(RecordedFile(name, value.filename, content_type, data))
    return files


def sanitize_name(name: str) -> str:
    """Zulip's ``sanitize_name``: letters, digits, ``.``, ``-`` and ``_``, safe in a URL."""
    value = unicodedata.normalize("NFKC", name)
    value = re.sub(r"[^\w\s.-]", "", value).strip()
    value = re.sub(r"[-\s]+", "-", value)
    return "uploaded-file" if value in {"", ".", ".."} else value


async def upload_file(zulip: ZulipDouble, call: Call) -> Response:
    if not call.files:
        return zulip_error(400, "You must specify a file to upload")
    if len(call.files) != 1:
        return zulip_error(400, "You may only upload one file at a time")
    (part,) = call.files
    if len(part.data) > zulip.max_upload_mib * 1024 * 1024:
        return zulip_error(
            400, f"Uploaded file is larger than the allowed limit of {zulip.max_upload_mib} MiB"
        )
    path_id = "/".join(
        [
            str(REALM_ID),
            f"{secrets.randbits(8):02x}",
            secrets.token_urlsafe(18),
            sanitize_name(part.filename),
        ]
    )
    url = f"/user_uploads/{quote(path_id)}"
    zulip.uploads.append(Upload(url, part.filename, part.content_type, part.data))
    answer = {"uri": url}
    if zulip.feature_level >= URL_LEVEL:
        answer["url"] = url
    if zulip.feature_level >= FILENAME_LEVEL:
        answer["filename"] = part.filename
    return zulip_success(**answer)
