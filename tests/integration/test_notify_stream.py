"""The SSE stream: an agency's own offers and updates live, resumed with Last-Event-ID after a break."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import httpx
import pytest
from httpx_sse import ServerSentEvent, aconnect_sse

from services.notify.settings import NotifySettings
from shared.settings import Settings
from tests.integration.notify_system import Notify, jurisdiction, running_notify
from tests.support import eventually

pytestmark = pytest.mark.integration


@pytest.fixture
async def notify(settings: Settings) -> AsyncIterator[Notify]:
    agencies: list[dict[str, Any]] = [{"id": "mobile", "channels": ["sse"]}, {"id": "elsewhere"}]
    async with running_notify(
        settings, jurisdiction(agencies), NotifySettings(repage_every_s=3600, sse_ping_s=1)
    ) as n:
        yield n


async def read(notify: Notify, count: int, last_event_id: str | None = None) -> list[ServerSentEvent]:
    """Open the stream as agency `mobile`, take `count` events, and hang up."""
    headers = notify.auth("mobile") | ({"Last-Event-ID": last_event_id} if last_event_id else {})
    seen: list[ServerSentEvent] = []
    # No read timeout on the stream itself: asyncio.timeout below bounds the whole read.
    async with (
        httpx.AsyncClient(base_url=notify.url, timeout=httpx.Timeout(10, read=None)) as http,
        aconnect_sse(http, "GET", "/v1/assignments/stream", headers=headers) as source,
    ):
        assert source.response.status_code == 200, await source.response.aread()
        async with asyncio.timeout(30):
            async for event in source.aiter_sse():
                seen.append(event)
                if len(seen) == count:
                    break
    return seen


async def test_the_stream_shows_the_agencys_own_offers_and_updates_and_resumes_after_a_break(notify: Notify):
    first = await notify.offer("mobile")
    elsewhere = await notify.offer("elsewhere")  # another agency's offer never shows up in this stream
    for offer in (first, elsewhere):
        await eventually(partial(notify.status, offer.assignment_id), lambda s: s == "offered")
    [offered] = await read(notify, 1)
    data = json.loads(offered.data)
    assert offered.event == "offered" and data["assignment_id"] == first.assignment_id
    assert data["details"]["language"] == "es" and data["deadline"]

    # While the agency is away: it accepts by API, a second offer arrives and is withdrawn.
    async with notify.http() as http:
        accepted = await http.post(
            f"/v1/assignments/{first.assignment_id}/accept", headers=notify.auth("mobile")
        )
        assert accepted.status_code == 200, accepted.text
    second = await notify.offer("mobile")
    await eventually(partial(notify.status, second.assignment_id), lambda s: s == "offered")
    await notify.withdraw(second)
    await eventually(partial(notify.status, second.assignment_id), lambda s: s == "withdrawn")

    missed = await read(notify, 3, last_event_id=offered.id)
    assert [(e.event, json.loads(e.data)["assignment_id"]) for e in missed] == [
        ("accepted", first.assignment_id),
        ("offered", second.assignment_id),
        ("withdrawn", second.assignment_id),
    ]
    assert [int(e.id) for e in missed] == sorted(int(e.id) for e in missed)
    assert all(int(e.id) > int(offered.id) for e in missed)
    assert json.loads(missed[0].data)["status"] == "accepted"

    # Resuming from the last one waits for new events only: the next is a live status update.
    async def live() -> list[ServerSentEvent]:
        return await read(notify, 1, last_event_id=missed[-1].id)

    reading = asyncio.create_task(live())
    async with notify.http() as http:
        en_route = await http.post(
            f"/v1/assignments/{first.assignment_id}/status",
            json={"status": "en_route"},
            headers=notify.auth("mobile"),
        )
        assert en_route.status_code == 200, en_route.text
    [update] = await reading
    assert update.event == "en_route" and json.loads(update.data)["assignment_id"] == first.assignment_id

    # Each offer the stream handed to the agency is recorded as an SSE delivery.
    channels = await notify.pool.fetch(
        "SELECT DISTINCT channel, outcome FROM notify.deliveries WHERE assignment_id = $1::uuid",
        first.assignment_id,
    )
    assert [tuple(r) for r in channels] == [("sse", "delivered")]


async def test_a_malformed_last_event_id_or_a_missing_token_is_a_clear_4xx(notify: Notify):
    async with notify.http() as http:
        bad = await http.get(
            "/v1/assignments/stream", headers=notify.auth("mobile") | {"Last-Event-ID": "yesterday"}
        )
        assert bad.status_code == 422 and bad.json()["code"] == "invalid_last_event_id", bad.text
        anonymous = await http.get("/v1/assignments/stream")
        assert anonymous.status_code == 401 and anonymous.json()["code"] == "unauthenticated"
