"""A status callback's POST: signed as Standard Webhooks says, and a failure told by its class alone."""

from __future__ import annotations

import json

import httpx
import pytest

from services.intake.callbacks import Attempt, post_signed
from tools.psap import verify

SECRET = "psap-signing-secret-0123"


async def attempt(handler: httpx.MockTransport, url: str = "http://psap.example/status") -> Attempt:
    async with httpx.AsyncClient(transport=handler) as http:
        return await post_signed(http, url, SECRET, "cb_7", {"call_id": "c1", "unitStatus": "Assigned"})


async def test_a_delivered_callback_is_signed_and_carries_the_payload():
    seen: list[httpx.Request] = []

    def server(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    assert await attempt(httpx.MockTransport(server)) == Attempt()
    [request] = seen
    assert request.headers["webhook-id"] == "cb_7"
    assert verify(SECRET, request.headers, request.content)
    assert json.loads(request.content) == {"call_id": "c1", "unitStatus": "Assigned"}


@pytest.mark.parametrize(
    ("status", "error_class"), [(503, "http_5xx"), (404, "http_4xx"), (302, "http_other")]
)
async def test_an_answer_that_is_not_2xx_is_classed_by_its_status(status: int, error_class: str):
    got = await attempt(httpx.MockTransport(lambda _: httpx.Response(status)))
    assert got == Attempt(f"HTTP {status}", error_class)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("exc", "error_class"),
    [
        (httpx.ConnectTimeout("slow"), "timeout"),
        (httpx.ReadTimeout("slow"), "timeout"),
        (httpx.ConnectError("refused"), "connect"),
        (httpx.UnsupportedProtocol("ftp://"), "invalid_url"),
        (httpx.RemoteProtocolError("garbled"), "transport"),
    ],
)
async def test_a_request_that_never_got_an_answer_is_classed_by_what_went_wrong(
    exc: httpx.HTTPError, error_class: str
):
    def server(request: httpx.Request) -> httpx.Response:
        raise exc

    got = await attempt(httpx.MockTransport(server))
    assert got.error_class == error_class and got.error is not None


async def test_a_url_that_cannot_be_parsed_is_invalid_url():
    got = await attempt(httpx.MockTransport(lambda _: httpx.Response(204)), url="http://[::1")
    assert got.error_class == "invalid_url"
