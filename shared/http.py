"""The HTTP skeleton every service shares: health, readiness, metrics, header and body limits, error shape."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

import asyncpg
from fastapi import Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi_offline import FastAPIOffline
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.errors import error_responses, install_error_handlers
from shared.metrics import HTTP_REQUESTS
from shared.numbers import InexactNumber, check_exact

ReadinessCheck = Callable[[], Awaitable[bool]]


async def refuse(scope: Scope, receive: Receive, send: Send, status: int, code: str, detail: str) -> None:
    """Answer a request refused before any route, in the project's error shape, and close."""
    response = JSONResponse(
        {"detail": detail, "code": code}, status_code=status, headers={"Connection": "close"}
    )
    await response(scope, receive, send)


def _is_json(scope: Scope) -> bool:
    """Whether FastAPI would parse this body as JSON: no content type, or application/json or */*+json."""
    raw = dict(scope.get("headers", ())).get(b"content-type")
    if raw is None:
        return True
    kind = raw.split(b";")[0].strip().lower()
    return kind.startswith(b"application/") and (kind == b"application/json" or kind.endswith(b"+json"))


def _decodes(body: bytes) -> bool:
    """Whether the body decodes as the JSON text encoding it announces (what json.loads does)."""
    try:
        body.decode(json.detect_encoding(body), "surrogatepass")
    except UnicodeDecodeError:
        return False
    return True


class BodyLimitMiddleware:
    """Refuses a request body over `max_bytes` with 413, a JSON body that is not text with 422
    `invalid_request`, and a JSON body holding a number no double holds exactly (or NaN, Infinity)
    with 422 `inexact_number`, before any route reads it: every value a service accepts must reach
    the audit trail as the number that was sent."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Buffer the body up to the limit, then replay it to the app."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers", ())).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await self._too_large(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if body and _is_json(scope):
            if not _decodes(body):
                # FastAPI answers such a body 400 with no code; it is as invalid as malformed JSON.
                await refuse(
                    scope, receive, send, 422, "invalid_request", "the body is not JSON text (UTF-8)"
                )
                return
            try:
                check_exact(body)
            except InexactNumber as exc:
                await refuse(
                    scope, receive, send, 422, "inexact_number", f"{exc}; send numbers a double holds"
                )
                return
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Read and discard the rest of the body (up to a cap) before answering: a client still
        # sending when the connection closes sees a reset instead of our 413 and its reason.
        drained = 0
        while drained < 64 * self.max_bytes:
            message = await receive()
            if message["type"] != "http.request":
                break
            drained += len(message.get("body", b""))
            if not message.get("more_body", False):
                break
        await refuse(
            scope, receive, send, 413, "body_too_large", f"request body larger than {self.max_bytes} bytes"
        )


# What no client of ours needs more of: a CAD, an agency's software or a browser sends a few
# hundred bytes of headers (the longest is a signature or a bearer token of at most 512 bytes).
MAX_HEADER_BYTES = 16 * 1024
MAX_HEADER_LINE_BYTES = 8 * 1024
MAX_HEADER_COUNT = 100


class HeaderLimitMiddleware:
    """Refuses a request whose header lines, count or total size pass the limits with 431,
    before any route, authentication or audit record sees it."""

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int = MAX_HEADER_BYTES,
        max_line_bytes: int = MAX_HEADER_LINE_BYTES,
        max_count: int = MAX_HEADER_COUNT,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_line_bytes = max_line_bytes
        self.max_count = max_count

    def _problem(self, headers: list[tuple[bytes, bytes]]) -> str | None:
        if len(headers) > self.max_count:
            return f"more than {self.max_count} header lines"
        total = 0
        for name, value in headers:
            line = len(name) + len(value) + 4  # "name: value\r\n"
            if line > self.max_line_bytes:
                return f"a header line longer than {self.max_line_bytes} bytes"
            total += line
        if total > self.max_bytes:
            return f"headers larger than {self.max_bytes} bytes in all"
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer 431 for oversized headers, else pass the request on."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        problem = self._problem(scope.get("headers", []))
        if problem is None:
            await self.app(scope, receive, send)
            return
        await refuse(scope, receive, send, 431, "headers_too_large", f"request refused: {problem}")


class RequestCounterMiddleware:
    """Counts answered requests by method and status (plain ASGI: no task or stream per request)."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on and count the status of its answer."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                HTTP_REQUESTS.labels(
                    service=self.service, method=scope["method"], status=message["status"]
                ).inc()
            await send(message)

        await self.app(scope, receive, counting_send)


async def app_pool(request: Request) -> asyncpg.Pool:
    """The database pool the composition root put in `app.state.pool` (a FastAPI dependency)."""
    pool: asyncpg.Pool = request.app.state.pool
    return pool


Pool = Annotated[asyncpg.Pool, Depends(app_pool)]


class Health(BaseModel):
    """The process answers."""

    status: Literal["ok"]


class Readiness(BaseModel):
    """Whether each backing service is reachable and the consumers run."""

    status: Literal["ready", "not ready"]
    checks: dict[str, bool]


def _errors_in_json(schema: dict[str, Any]) -> None:
    """Document every error as the JSON it is, also on routes that answer text, CSV or a stream
    (FastAPI files a route's extra responses under the route's own media type)."""
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            for status, response in operation.get("responses", {}).items():
                content = response.get("content", {})
                if status.startswith("2") or "application/json" in content:
                    continue
                error = next((c for c in content.values() if "ErrorBody" in str(c.get("schema"))), None)
                if error is not None:
                    response["content"] = {"application/json": error}


def make_app(
    service: str,
    readiness: dict[str, ReadinessCheck],
    *,
    max_body_bytes: int = 1_000_000,
    description: str = "",
    security_schemes: dict[str, dict[str, Any]] | None = None,
) -> FastAPI:
    """A FastAPI app with /healthz, /readyz, /metrics, /docs and /redoc served without any CDN, and
    the project's error handling; `security_schemes` adds schemes that no dependency declares."""
    app = FastAPIOffline(title=f"careroute {service}", description=description, version="0.1.0")
    install_error_handlers(app)
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        schema = generate()
        _errors_in_json(schema)
        if security_schemes:
            schema.setdefault("components", {}).setdefault("securitySchemes", {}).update(security_schemes)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]

    # The last added runs first: count every answer, then refuse oversized headers, then bodies.
    app.add_middleware(BodyLimitMiddleware, max_bytes=max_body_bytes)
    app.add_middleware(HeaderLimitMiddleware)
    app.add_middleware(RequestCounterMiddleware, service=service)

    @app.get("/healthz", tags=["health"], responses=error_responses())
    async def healthz() -> Health:
        """The process is alive."""
        return Health(status="ok")

    @app.get(
        "/readyz",
        tags=["health"],
        response_model=Readiness,
        responses={
            **error_responses(),
            503: {"model": Readiness, "description": "A backing service is away or a consumer stopped"},
        },
    )
    async def readyz() -> JSONResponse:
        """The database and broker are reachable and the consumers run."""
        results: dict[str, bool] = {}
        for name, check in readiness.items():
            try:
                results[name] = await asyncio.wait_for(check(), timeout=3)
            except (TimeoutError, OSError):
                results[name] = False
        ok = all(results.values())
        return JSONResponse(
            {"status": "ready" if ok else "not ready", "checks": results}, status_code=200 if ok else 503
        )

    @app.get(
        "/metrics",
        tags=["health"],
        response_class=PlainTextResponse,
        responses={
            200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}},
            **error_responses(),
        },
    )
    async def metrics() -> Response:
        """Prometheus metrics of this process."""
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app
