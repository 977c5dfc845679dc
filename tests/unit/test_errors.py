"""A database lost mid-request answers 503 with a reason and Retry-After, never a 500."""

import asyncpg
import httpx
import pytest

from shared.http import make_app


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.InterfaceError("cannot call Transaction.__aexit__(): the underlying connection is closed"),
        asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator command"),
        asyncpg.exceptions.InternalClientError("cannot switch to state 12; another operation is in progress"),
    ],
    ids=lambda e: type(e).__name__,
)
async def test_a_lost_database_connection_is_a_503(error):
    app = make_app("test", {})

    @app.get("/boom")
    async def boom() -> None:
        raise error

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        r = await http.get("/boom")
    assert r.status_code == 503 and r.json()["code"] == "unavailable"
    assert r.headers["retry-after"] == "1"
