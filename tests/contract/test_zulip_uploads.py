"""``zulip-upload`` against the Zulip double, which checks every request (the multipart body
with openapi-core, the file parts by hand) and every answer with Zulip's spec (operation
``upload-file``); the ``zulip`` fixture fails a test on any violation."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from integrationhub.connectors.zulip import (
    MAX_UPLOAD_BYTES,
    UploadZulipFile,
    ZulipConnector,
    ZulipFileUploaded,
)
from integrationhub.errors import PermanentError
from tests.contract.zulip_support import *  # noqa: F403
from tests.contract.zulip_support import Invoke
from tests.doubles.zulip import ZulipDouble

pytestmark = pytest.mark.contract


def test_uploading_is_not_safe_to_repeat() -> None:
    assert not ZulipConnector.actions["zulip-upload"].safe_to_repeat


async def test_text_upload_arrives_intact_with_a_link_to_post(
    zulip: ZulipDouble, invoke: Invoke
) -> None:
    text = "Déploiement terminé ✅\nall 312 checks green\n"

    result = await invoke("zulip-upload", {"filename": "report.txt", "content": text})

    (stored,) = zulip.uploads
    assert stored.data == text.encode("utf-8")
    assert (stored.filename, stored.content_type) == ("report.txt", "text/plain")
    (request,) = zulip.requests
    assert (request.method, request.path, request.user) == (
        "POST",
        "/api/v1/user_uploads",
        zulip.email,
    )
    assert [(f.field, f.filename) for f in request.files] == [("filename", "report.txt")]
    assert request.body == {"filename": text.encode("utf-8")}  # as openapi-core decoded it
    assert result == ZulipFileUploaded(
        url=stored.url,
        absolute_url=zulip.url + stored.url,
        filename="report.txt",
        markdown=f"[report.txt]({stored.url})",
        size=len(text.encode("utf-8")),
        content_type="text/plain",
    )
    assert stored.url.startswith("/user_uploads/") and stored.url.endswith("/report.txt")


@pytest.mark.parametrize("wrap", [False, True], ids=["one-line", "wrapped-at-76"])
async def test_binary_upload_arrives_byte_for_byte(
    zulip: ZulipDouble, invoke: Invoke, wrap: bool
) -> None:
    data = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40 + b"\x00\xff"
    encoded = (base64.encodebytes if wrap else base64.b64encode)(data).decode()

    result = await invoke(
        "zulip-upload", {"filename": "chart.png", "content": encoded, "encoding": "base64"}
    )

    assert zulip.uploads[0].data == data
    assert zulip.requests[0].files[0].content_type == "image/png"  # guessed from the name
    assert result.size == len(data)  # type: ignore[attr-defined]


async def test_given_content_type_is_sent(zulip: ZulipDouble, invoke: Invoke) -> None:
    await invoke(
        "zulip-upload",
        {"filename": "data", "content": "a,b\n1,2\n", "content_type": "text/csv; charset=utf-8"},
    )

    assert zulip.uploads[0].content_type == "text/csv; charset=utf-8"


async def test_markdown_link_drops_brackets_from_the_name(
    zulip: ZulipDouble, invoke: Invoke
) -> None:
    name = "Q3 [draft] résumé.pdf"

    result = await invoke("zulip-upload", {"filename": name, "content": "%PDF-1.7"})

    assert zulip.uploads[0].filename == name
    assert result.filename == name  # type: ignore[attr-defined]
    assert result.markdown == f"[Q3 draft résumé.pdf]({zulip.uploads[0].url})"  # type: ignore[attr-defined]
    assert " " not in zulip.uploads[0].url and "[" not in zulip.uploads[0].url


@pytest.mark.parametrize(
    ("feature_level", "answered"),
    [(284, {"uri", "url"}), (271, {"uri"})],
    ids=["zulip-9-no-filename", "zulip-8-uri-only"],
)
async def test_older_servers_answer_is_read(
    zulip: ZulipDouble, invoke: Invoke, feature_level: int, answered: set[str]
) -> None:
    zulip.feature_level = feature_level

    result = await invoke("zulip-upload", {"filename": "a.txt", "content": "hi"})

    assert isinstance(result, ZulipFileUploaded)
    assert result.url == zulip.uploads[0].url
    assert result.filename == "a.txt"
    assert result.markdown == f"[a.txt]({zulip.uploads[0].url})"


async def test_upload_over_the_servers_own_limit_is_permanent(
    zulip: ZulipDouble, invoke: Invoke
) -> None:
    zulip.max_upload_mib = 1
    content = base64.b64encode(b"\x00" * (1024 * 1024 + 1)).decode()

    with pytest.raises(PermanentError) as caught:
        await invoke(
            "zulip-upload", {"filename": "big.bin", "content": content, "encoding": "base64"}
        )

    assert caught.value.message == (
        "Zulip POST /user_uploads answered 400: "
        "Uploaded file is larger than the allowed limit of 1 MiB (BAD_REQUEST)"
    )
    assert zulip.uploads == []


@pytest.mark.parametrize(
    ("params", "complaint"),
    [
        pytest.param({"filename": "../../etc/passwd"}, "not a path", id="dot-dot-path"),
        pytest.param({"filename": "/etc/passwd"}, "not a path", id="absolute-path"),
        pytest.param({"filename": "reports/q3.txt"}, "not a path", id="relative-path"),
        pytest.param({"filename": "C:\\Users\\x\\q3.txt"}, "not a path", id="windows-path"),
        pytest.param({"filename": ".."}, "not . or ..", id="dot-dot"),
        pytest.param({"filename": "a\r\nContent-Type: x"}, "invalid character", id="crlf"),
        pytest.param({"filename": "a\x00.txt"}, "invalid character '\\x00'", id="nul"),
        pytest.param({"filename": "  "}, "at least 1 character", id="blank"),
        pytest.param({"filename": "x" * 256}, "at most 255 characters", id="long-name"),
        pytest.param(
            {"content": "x" * (MAX_UPLOAD_BYTES + 1)},
            f"is {MAX_UPLOAD_BYTES + 1} bytes, over Zulip's default upload limit of 25 MiB",
            id="oversized-text",
        ),
        pytest.param(
            {"content": "é" * (MAX_UPLOAD_BYTES // 2 + 1)},
            f"is {MAX_UPLOAD_BYTES + 2} bytes",
            id="oversized-once-utf-8",
        ),
        pytest.param(
            {"content": "AAAA" * (MAX_UPLOAD_BYTES // 3 + 2), "encoding": "base64"},
            "over Zulip's default upload limit",
            id="oversized-base64",
        ),
        pytest.param(
            {"content": "not base64!", "encoding": "base64"}, "not valid base64", id="bad-base64"
        ),
        pytest.param({"content": "aGk", "encoding": "base64"}, "not valid base64", id="unpadded"),
        pytest.param({"content": ""}, "content: Value error, must not be empty", id="empty"),
        pytest.param({"encoding": "hex"}, "encoding: Input should be 'text' or 'base64'", id="hex"),
        pytest.param(
            {"content_type": "text/plain\r\nX-Injected: 1"}, "must be a media type", id="crlf-type"
        ),
        pytest.param({"content_type": "pdf"}, "must be a media type", id="bare-type"),
        pytest.param({"path": "/etc/passwd"}, "Extra inputs are not permitted", id="extra"),
    ],
)
async def test_invalid_upload_is_refused_before_any_request(
    zulip: ZulipDouble, invoke: Invoke, params: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(PermanentError, match="invalid input for zulip-upload") as caught:
        await invoke("zulip-upload", {"filename": "a.txt", "content": "hi", **params})

    assert complaint in caught.value.message
    assert zulip.requests == []


def test_content_of_exactly_the_limit_is_accepted() -> None:
    upload = UploadZulipFile(filename="full.bin", content="x" * MAX_UPLOAD_BYTES)  # type: ignore[call-arg]

    assert len(upload.data) == MAX_UPLOAD_BYTES


# --- the double holds uploads and reactions to the spec ------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "request_args", "complaint"),
    [
        pytest.param(
            "POST",
            "/api/v1/messages/1/reactions",
            {"data": {"emoji_code": "1f389"}},
            "'emoji_name' is a required property",
            id="reaction-without-name",
        ),
        pytest.param(
            "POST",
            "/api/v1/messages/first/reactions",
            {"data": {"emoji_name": "tada"}},
            "Failed to cast value to integer type: first",
            id="message-id-not-a-number",
        ),
        pytest.param(
            "POST",
            "/api/v1/user_uploads",
            {"data": {"filename": "a.txt"}},
            "Content for the following mimetype not found: application/x-www-form-urlencoded",
            id="upload-not-multipart",
        ),
        pytest.param(
            "POST",
            "/api/v1/user_uploads",
            {"content": b"raw bytes", "headers": {"Content-Type": "application/octet-stream"}},
            "Content for the following mimetype not found: application/octet-stream",
            id="upload-raw-body",
        ),
    ],
)
async def test_double_records_a_reaction_or_upload_that_breaks_the_spec(
    zulip: ZulipDouble,
    http: httpx.AsyncClient,
    method: str,
    path: str,
    request_args: dict[str, Any],
    complaint: str,
) -> None:
    response = await http.request(
        method, zulip.url + path, auth=(zulip.email, zulip.api_key), **request_args
    )

    assert response.status_code == 400
    (violation,) = zulip.take_violations()
    assert (violation.kind, violation.path) == ("request", path)
    assert complaint in violation.message
    assert zulip.reactions == [] and zulip.uploads == []


@pytest.mark.parametrize(
    ("files", "zulip_says"),
    [
        pytest.param([], "You must specify a file to upload", id="no-file"),
        pytest.param(
            [("a", ("a.txt", b"1")), ("b", ("b.txt", b"2"))],
            "You may only upload one file at a time",
            id="two-files",
        ),
    ],
)
async def test_double_refuses_an_upload_without_exactly_one_file_as_zulip_does(
    zulip: ZulipDouble, http: httpx.AsyncClient, files: list[Any], zulip_says: str
) -> None:
    response = await http.post(
        f"{zulip.url}/api/v1/user_uploads",
        data={"note": "x"},
        files=files or [("empty", ("", b""))],  # a part without a file name is no file
        auth=(zulip.email, zulip.api_key),
    )

    assert response.status_code == 400
    assert response.json()["msg"] == zulip_says
    assert zulip.uploads == []
