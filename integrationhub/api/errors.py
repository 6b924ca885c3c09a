"""Every error leaves as ``{"error": {"code", "message"}}`` with a fitting status, and never
carries a secret: messages come from our own exception tree, request values are not echoed."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from integrationhub import errors

__all__ = ["ApiError", "error_response", "install_error_handlers"]

log = structlog.get_logger()

# Most specific first: the first class an error is an instance of decides its status.
STATUS: list[tuple[type[errors.IntegrationHubError], int]] = [
    (errors.FlowNotFound, 404),
    (errors.RunNotFound, 404),
    (errors.CredentialNotFound, 404),
    (errors.IdempotencyConflict, 409),
    (errors.RunStateConflict, 409),
    (errors.FlowReadOnly, 409),
    (errors.CredentialStoreUnavailable, 503),
    (errors.BusError, 503),
    (errors.ParametersInvalid, 422),
    (errors.FlowInvalid, 422),
    (errors.TemplateError, 422),
    (errors.CredentialInvalid, 422),
]


class ApiError(Exception):
    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message}}, status_code=status, headers=headers
    )


def status_of(exc: errors.IntegrationHubError) -> int:
    for cls, status in STATUS:
        if isinstance(exc, cls):
            return status
    return 500


def _validation_message(exc: RequestValidationError) -> tuple[int, str, str]:
    problems: list[str] = []
    for err in exc.errors():
        if err.get("type") == "json_invalid":
            return 400, "malformed_json", "request body is not valid JSON"
        loc = [str(p) for p in err.get("loc", ()) if p != "body"]
        problems.append(f"{'.'.join(loc) or 'body'}: {err.get('msg')}")
    return 422, "validation_error", "; ".join(problems[:10])


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(errors.IntegrationHubError)
    async def _hub_error(_: Request, exc: errors.IntegrationHubError) -> JSONResponse:
        return error_response(status_of(exc), exc.code, exc.message)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(*_validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(
            exc.status_code, "http_error"
        )
        return error_response(exc.status_code, code, str(exc.detail), _headers(exc))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.error("api.unexpected_error", exc_info=exc)
        return error_response(500, "internal_error", "internal error; see the hub's logs")


def _headers(exc: StarletteHTTPException) -> Any:
    return getattr(exc, "headers", None)
