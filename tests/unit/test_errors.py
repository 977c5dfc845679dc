"""A database or broker that is away answers 503 with a reason and Retry-After, never a 500."""

import asyncpg
import httpx
import pytest
from aiokafka.errors import KafkaConnectionError

from shared.http import make_app

E = asyncpg.exceptions


async def _answer(error: Exception) -> httpx.Response:
    app = make_app("test", {})

    @app.get("/boom")
    async def boom() -> None:
        raise error

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        return await http.get("/boom")


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.InterfaceError("cannot call Transaction.__aexit__(): the underlying connection is closed"),
        E.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        E.AdminShutdownError("terminating connection due to administrator command"),
        E.InternalClientError("cannot switch to state 12; another operation is in progress"),
        E.CannotConnectNowError("the database system is starting up"),
        E.CrashShutdownError("terminating connection because of crash of another server process"),
        E.TooManyConnectionsError("sorry, too many clients already"),
        TimeoutError(),
        ConnectionRefusedError(111, "Connect call failed"),
        KafkaConnectionError("Unable to bootstrap"),
    ],
    ids=lambda e: type(e).__name__,
)
async def test_an_unavailable_dependency_is_a_503(error: Exception) -> None:
    r = await _answer(error)
    assert r.status_code == 503 and r.json()["code"] == "unavailable"
    assert r.headers["retry-after"] == "1"


@pytest.mark.parametrize(
    "error",
    [E.DeadlockDetectedError("deadlock detected"), E.SerializationError("could not serialize access")],
    ids=lambda e: type(e).__name__,
)
async def test_a_lost_race_that_reaches_the_edge_is_a_503_to_retry(error: Exception) -> None:
    r = await _answer(error)
    assert r.status_code == 503 and r.json()["code"] == "conflict_retry"
    assert r.headers["retry-after"] == "1"


async def test_any_other_driver_error_is_still_a_500() -> None:
    r = await _answer(E.UndefinedTableError('relation "x" does not exist'))
    assert r.status_code == 500


async def test_a_json_body_that_is_not_text_is_a_422_in_the_error_shape() -> None:
    app = make_app("test", {})

    @app.post("/things")
    async def things(body: dict[str, int]) -> dict[str, int]:
        return body

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        r = await http.post(
            "/things", content=b'{"\xff\xfe": 1}', headers={"content-type": "application/json"}
        )
        assert r.status_code == 422 and r.json()["code"] == "invalid_request"
        # UTF-16 is JSON text still (json.loads reads it), so it reaches the route.
        r = await http.post(
            "/things", content='{"a": 1}'.encode("utf-16"), headers={"content-type": "application/json"}
        )
        assert r.status_code == 200 and r.json() == {"a": 1}
