"""The API's error answers become the client's typed errors, with the API's code and message."""

from __future__ import annotations

import httpx
import pytest

from integrationhub.client import (
    ClientError,
    Conflict,
    InvalidRequest,
    NotFound,
    ServerError,
    ServerUnavailable,
    Unauthorized,
)
from integrationhub.client._exceptions import error_from_response


def answer(status: int, body: object | None = None, text: str = "") -> httpx.Response:
    request = httpx.Request("GET", "http://hub/api/v1/x")
    if body is not None:
        return httpx.Response(status, json=body, request=request)
    return httpx.Response(status, text=text, request=request)


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, InvalidRequest),
        (401, Unauthorized),
        (403, Unauthorized),
        (404, NotFound),
        (409, Conflict),
        (413, InvalidRequest),
        (422, InvalidRequest),
        (429, ServerUnavailable),
        (500, ServerError),
        (502, ServerUnavailable),
        (503, ServerUnavailable),
        (504, ServerUnavailable),
        (418, ServerError),
    ],
)
def test_each_status_maps_to_its_error_class(status, cls):
    error = error_from_response(answer(status, {"error": {"code": "c", "message": "m"}}))

    assert type(error) is cls
    assert (error.status, error.code, error.message) == (status, "c", "m")
    assert isinstance(error, ClientError)


def test_an_answer_without_the_error_shape_keeps_the_status_and_reason():
    error = error_from_response(answer(502, text="<html>bad gateway</html>"))

    assert isinstance(error, ServerUnavailable)
    assert (error.code, error.message) == ("http_error", "Bad Gateway")
    assert str(error) == "Bad Gateway (502 http_error)"
