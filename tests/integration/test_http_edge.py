"""The HTTP edge of all four services refuses what no client needs: oversized headers answer 431,
and a flood of unknown tokens from one address answers 429 and is recorded as a count, not a row each."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from fastapi import Depends, FastAPI

from shared.auth import Authenticator, Credential, Principal, replace_credentials
from shared.db import connect, create_pool, migrate
from shared.errors import install_error_handlers
from shared.settings import SERVICE_NAMES, Settings
from shared.throttle import FailureThrottle
from tools.system import System

pytestmark = pytest.mark.integration


@asynccontextmanager
async def all_four(settings: Settings) -> AsyncIterator[dict[str, int]]:
    """The four services in this process on free ports."""
    async with System.start(settings, jurisdiction=None) as system:
        yield {name: system.port(name) for name in SERVICE_NAMES}


async def raw_request(port: int, head: bytes) -> bytes:
    """Send raw request bytes and read the whole answer (the server closes after a 431)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 30)
    finally:
        writer.close()


def status_and_body(answer: bytes) -> tuple[int, bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


async def test_oversized_headers_get_431_with_a_code_on_every_service(settings: Settings):
    """Tried on each service: one 20 KiB header line, 200 small header lines, and 8 MB of headers
    in 64 KiB lines (before, all were read and passed to the routes); each answers 431
    `headers_too_large`, and the service still answers the next request."""
    tries = {
        "one long line": b"X-Long: " + b"a" * 20_000 + b"\r\n",
        "too many lines": b"".join(b"X-H%d: v\r\n" % n for n in range(200)),
        "8 MB in all": b"".join(b"X-Big%d: %s\r\n" % (n, b"b" * 65_000) for n in range(128)),
    }
    async with all_four(settings) as ports:
        for service, port in ports.items():
            for what, extra in tries.items():
                request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + extra + b"Connection: close\r\n\r\n"
                status, body = status_and_body(await raw_request(port, request))
                assert status == 431 and b'"code":"headers_too_large"' in body, (service, what, body[:200])
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                assert (await http.get("/healthz")).status_code == 200, service


async def access_rows(settings: Settings, schema: str) -> list[dict[str, object]]:
    conn = await connect(settings.database_url.get_secret_value())
    try:
        rows = await conn.fetch(
            f"SELECT convert_from(value, 'utf8')::jsonb -> 'data' AS data FROM {schema}.outbox"
            " WHERE topic = 'access.recorded.v1' ORDER BY id"
        )
        return [r["data"] for r in rows]
    finally:
        await conn.close()


async def test_a_flood_of_unknown_tokens_is_throttled_on_every_service(settings: Settings):
    """Tried: 30 requests with an unknown token from one address to a route of each service. The
    first 10 answer 401 and are recorded one by one; the rest answer 429 with Retry-After and add
    no row each (before, every one answered 401 and wrote an audit event)."""
    routes = {
        "intake": ("GET", "/v1/calls/00000000-0000-0000-0000-000000000000"),
        "matching": ("GET", "/v1/teams"),
        "notify": ("GET", "/v1/assignments"),
        "audit": ("GET", "/v1/audit/verify"),
    }
    async with all_four(settings) as ports:
        for service, (method, path) in routes.items():
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{ports[service]}") as http:
                answers = [
                    await http.request(method, path, headers={"Authorization": "Bearer not-a-known-token"})
                    for _ in range(30)
                ]
            statuses = [a.status_code for a in answers]
            assert statuses == [401] * 10 + [429] * 20, (service, statuses)
            for throttled in answers[10:]:
                assert throttled.json()["code"] == "too_many_failed_attempts"
                assert 1 <= int(throttled.headers["Retry-After"]) <= 60
        for service in routes:
            denied = [a for a in await access_rows(settings, service) if a["outcome"] == "denied"]
            assert len(denied) == 10, (service, len(denied))


async def test_a_throttled_window_becomes_one_counted_summary(settings: Settings):
    """Tried: 25 unknown tokens from one address within a 1 s window, then a valid request after
    it ended: 5 rows one by one, then one summary event counting the other 20."""
    pool = await create_pool(settings.database_url.get_secret_value())
    try:
        await migrate(pool, "audit", [])
        auth = Authenticator(pool, "audit", FailureThrottle(burst=5, window_s=1.0))
        async with pool.acquire() as conn:
            await replace_credentials(conn, "audit", [Credential("good-token-1234", "board", "oversight")])
        app = FastAPI()
        install_error_handlers(app)

        @app.get("/x")
        async def read(who: Principal = Depends(auth.require("oversight"))) -> dict[str, str]:
            return {"who": who.tenant_id}

        transport = httpx.ASGITransport(app=app, client=("127.0.0.9", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://edge") as http:
            bad = [
                (await http.get("/x", headers={"Authorization": "Bearer nope"})).status_code
                for _ in range(25)
            ]
            assert bad == [401] * 5 + [429] * 20
            await asyncio.sleep(1.1)
            good = await http.get("/x", headers={"Authorization": "Bearer good-token-1234"})
            assert good.status_code == 200
        rows = await access_rows(settings, "audit")
        denied = [r for r in rows if r["outcome"] == "denied"]
        assert len(denied) == 6
        [summary] = [r for r in denied if r.get("count")]
        assert summary["count"] == 20 and summary["client"] == "127.0.0.9"
    finally:
        await pool.close()
