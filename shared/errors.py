"""One error shape for every HTTP answer: `{"detail": ..., "code": ...}` with the right status."""

from __future__ import annotations

from typing import Any

import asyncpg
from aiokafka.errors import KafkaError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.domain_errors import (
    Conflict,
    DomainError,
    Forbidden,
    Invalid,
    NotAcceptable,
    NotConfigured,
    NotFound,
)
from shared.failures import is_conflict, is_unavailable

# Seconds a caller is asked to wait before retrying a request the backing services could not take.
RETRY_AFTER_S = 1

# The driver errors among which `shared.failures` tells an outage or a lost race; any other one
# is re-raised and answers 500, as a bug should.
_DRIVER_ERRORS: tuple[type[Exception], ...] = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.InternalClientError,
    OSError,
    KafkaError,
)


class ApiError(Exception):
    """An error a caller caused or may see, with its HTTP status and a stable code."""

    def __init__(self, status: int, code: str, detail: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = headers


# The status each kind of domain error is answered with (a kind not listed: its nearest base's).
DOMAIN_STATUS: dict[type[DomainError], int] = {
    DomainError: 422,
    Invalid: 422,
    NotFound: 404,
    Forbidden: 403,
    Conflict: 409,
    NotAcceptable: 406,
    NotConfigured: 503,
}


def status_of(error: DomainError) -> int:
    """The HTTP status a domain error is answered with."""
    return next(DOMAIN_STATUS[k] for k in type(error).__mro__ if k in DOMAIN_STATUS)


class Problem(BaseModel):
    """What a request's validation found wrong: where, what, and the kind of error."""

    loc: list[str | int]
    msg: str
    type: str


class ErrorBody(BaseModel):
    """The one error shape every service answers with."""

    detail: str | list[Problem] = Field(description="What went wrong (for 422 invalid_request: each problem)")
    code: str = Field(description="A stable code naming the error, e.g. not_found, rate_limited")


# What each status means wherever it is answered, for the OpenAPI description of every route.
_MEANING = {
    401: "Missing, malformed or unknown credentials (unauthenticated)",
    403: "The credentials are valid but may not do this (forbidden: the role; sender_mismatch: an EIDO"
    " naming another sender)",
    404: "No such object, or another tenant's (not_found)",
    406: "The Accept header names no representation the route answers with (not_acceptable)",
    409: "The request conflicts with the object's state (the code says which)",
    413: "The request body is larger than the service accepts (body_too_large)",
    422: "The request is not valid (invalid_request, or a code naming the rule)",
    429: "Too many requests or failed authentications; see Retry-After",
    431: "The request's headers are too large or too many (headers_too_large)",
    503: "A backing service is unavailable or not configured, or a race was lost; retry (see Retry-After)",
}

# Every request can meet these, before any route: the body and header limits and the JSON number check.
EDGE = (413, 422, 431)


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` declaring each status with the one error shape."""
    return {s: {"model": ErrorBody, "description": _MEANING[s]} for s in sorted({*EDGE, *statuses})}


def not_found(what: str) -> ApiError:
    """The answer for a missing object and for another tenant's object alike."""
    return ApiError(404, "not_found", f"{what} not found")


def _error(status: int, code: str, detail: Any, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail, "code": code}, status_code=status, headers=headers)


def _clean(errors: Any) -> list[dict[str, Any]]:
    # Keep what tells the caller what to fix; the raw input may be large or contain secrets.
    return [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in errors
    ]


def install_error_handlers(app: FastAPI) -> None:
    """Map every error a request can cause to the project's JSON error shape."""

    async def on_api_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        if exc.headers:
            headers = {**(headers or {}), **exc.headers}
        return _error(exc.status, exc.code, exc.detail, headers)

    async def on_domain_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, DomainError)
        return _error(status_of(exc), exc.code, exc.detail)

    async def on_validation(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return _error(422, "invalid_request", _clean(exc.errors()))

    async def on_http(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}.get(
            exc.status_code, "http_error"
        )
        return _error(exc.status_code, code, exc.detail)

    async def on_driver_error(_: Request, exc: Exception) -> JSONResponse:
        # The database or broker is away, starting or full, or the transaction lost a race that
        # the handler's own retries did not win: the caller did nothing wrong and may retry.
        retry = {"Retry-After": str(RETRY_AFTER_S)}
        if is_unavailable(exc):
            return _error(503, "unavailable", "a backing service is unavailable; retry shortly", retry)
        if is_conflict(exc):
            return _error(503, "conflict_retry", "the request met a concurrent change; retry it", retry)
        raise exc

    async def on_unstorable_text(_: Request, exc: Exception) -> JSONResponse:
        # JSON may carry "\u0000"; PostgreSQL stores no NUL character in text or jsonb.
        return _error(422, "invalid_text", "text must not contain the NUL character (\\u0000)")

    for text_error in (
        asyncpg.exceptions.UntranslatableCharacterError,
        asyncpg.exceptions.CharacterNotInRepertoireError,
    ):
        app.add_exception_handler(text_error, on_unstorable_text)
    for kind in _DRIVER_ERRORS:
        app.add_exception_handler(kind, on_driver_error)
    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(DomainError, on_domain_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
