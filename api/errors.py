"""The one place where errors become HTTP responses: ``{"error": {"code", "message"}}`` with the
status that :data:`STATUS_BY_CODE` gives the error's code."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.errors import ErrorCode, OverloadedError, RateLimitedError, SupportbotError

logger = logging.getLogger(__name__)

STATUS_BY_CODE: dict[str, int] = {
    "malformed_body": 400,
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.NOT_FOUND: 404,
    "method_not_allowed": 405,
    ErrorCode.ALREADY_HANDLED: 409,
    ErrorCode.PAYLOAD_TOO_LARGE: 413,
    ErrorCode.UNSUPPORTED_FILE: 415,
    ErrorCode.INVALID_INPUT: 422,
    "validation_error": 422,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.CONFIG: 500,
    "internal_error": 500,
    ErrorCode.BACKEND_UNAVAILABLE: 503,
    ErrorCode.OVERLOADED: 503,
    ErrorCode.TIMEOUT: 504,
}


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: list[dict[str, Any]] | None = None


class ErrorBody(BaseModel):
    """Every error response has this shape."""

    error: ErrorDetail


def error_payload(code: str, message: str, details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return ErrorBody(error=ErrorDetail(code=code, message=message, details=details)).model_dump(exclude_none=True)


def error_response(exc: SupportbotError) -> JSONResponse:
    headers = {}
    if isinstance(exc, RateLimitedError | OverloadedError):
        headers["Retry-After"] = str(max(1, round(exc.retry_after_s + 0.499)))
    return JSONResponse(error_payload(exc.code, exc.message), status_code=STATUS_BY_CODE[exc.code], headers=headers)


def _validation_details(exc: RequestValidationError) -> tuple[str, str, list[dict[str, Any]]]:
    details = []
    for error in exc.errors():
        location = ".".join(str(part) for part in error.get("loc", ()))
        details.append({"location": location, "type": error.get("type", ""), "message": error.get("msg", "")})
    if any(d["type"] == "json_invalid" for d in details):
        return "malformed_body", "the request body is not valid JSON (or not UTF-8)", details
    summary = "; ".join(f"{d['location']}: {d['message']}" for d in details[:5])
    return "validation_error", f"invalid request: {summary}", details


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(SupportbotError)
    async def _supportbot_error(_request: Request, exc: SupportbotError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        code, message, details = _validation_details(exc)
        return JSONResponse(error_payload(code, message, details), status_code=STATUS_BY_CODE[code])

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: ErrorCode.NOT_FOUND.value, 405: "method_not_allowed"}.get(exc.status_code, "malformed_body")
        return JSONResponse(error_payload(code, str(exc.detail)), status_code=STATUS_BY_CODE[code],
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error", exc_info=exc)
        return JSONResponse(error_payload("internal_error", "internal server error"), status_code=500)


_DESCRIPTIONS = {400: "malformed body", 401: "missing, unknown or revoked API key",
                 403: "a public key outside the chat widget's routes or channel, or not an admin key",
                 404: "not found in this tenant", 413: "body too large", 415: "unsupported file type",
                 422: "invalid request", 429: "rate limit exceeded (see Retry-After)",
                 503: "overloaded (see Retry-After) or a backend is unavailable", 504: "no answer in time"}


def documented(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the error statuses a route can return."""
    return {status: {"model": ErrorBody, "description": _DESCRIPTIONS[status]} for status in statuses}


AUTHENTICATED = (400, 401, 403, 413, 422, 429)
"""What any authenticated route can answer besides its own errors."""
