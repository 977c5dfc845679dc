"""Agencies that are really there: an agency counts as reachable only while one of its channels shows
life (a stream, a webhook answering 2xx, a consumer in one of its groups, a request of its own).
Silent past its `liveness_timeout_s`, its teams are skipped (`agency_unreachable`) and its held offer
moves on; the first sign of life brings it back. Real broker and PostgreSQL, notify and matching
running."""

from __future__ import annotations

from functools import partial
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from services.matching.service import build as build_matching
from services.matching.settings import MatchingSettings
from services.notify.liveness import agency_of_group
from services.notify.service import build as build_notify
from services.notify.settings import NotifySettings
from shared import topics
from shared.jurisdiction import Jurisdiction
from shared.kafka import client_options
from shared.settings import Settings
from shared.topics import agency_topic
from tests.integration.matching_harness import (
    AGENCY_TOKENS,
    Db,
    call_received,
    jurisdiction,
    load,
    new_call_id,
    place_call,
    publish,
    team,
    topic_events,
)
from tests.integration.webhook_receiver import SPEC_SECRET, Receiver, serving
from tests.support import eventually
from tools.jurisdictions import small
from tools.psap import bearer
from tools.system import System

pytestmark = pytest.mark.integration

TIMEOUT_S = 10
NORTH = bearer(AGENCY_TOKENS["north"])
BUILDERS = {
    "matching": partial(build_matching, matching=MatchingSettings(max_attempts=3)),
    "notify": partial(build_notify, settings=NotifySettings(liveness_check_s=0.5, repage_every_s=3600)),
}


async def _unreachable_since(db: Db, agency_id: str) -> Any:
    return await db.pool.fetchval("SELECT unreachable_since FROM matching.agencies WHERE id = $1", agency_id)


async def _reachable(db: Db, agency_id: str) -> bool:
    return bool(await db.pool.fetchval("SELECT reachable FROM notify.agencies WHERE id = $1", agency_id))


def _watched(teams: list[dict[str, Any]], **agencies: dict[str, Any]) -> Jurisdiction:
    """The test deployment with both agencies watched (`agencies` adds to each by id)."""
    return small(
        psap_token="psap-token-0000000001",
        agencies=[
            {"id": a, "name": a, "token": tok, "liveness_timeout_s": TIMEOUT_S, **agencies.get(a, {})}
            for a, tok in AGENCY_TOKENS.items()
        ],
        teams=teams,
        timezone="America/Los_Angeles",
    )


def test_a_consumer_group_is_an_agencys_only_under_its_own_prefix():
    assert agency_of_group("ns.agency.north.console", "ns.agency.") == "north"
    assert agency_of_group("ns.agency.north", "ns.agency.") is None  # no group of its own: a topic name
    assert agency_of_group("ns.matching", "ns.agency.") is None


async def test_a_silent_agency_is_skipped_and_comes_back_with_its_first_sign_of_life(
    settings: Settings, db: Db, producer
):
    """north (nearest, watched, 10 s) shows no life; south (a webhook answering 2xx, watched too)
    is pinged and stays reachable. Past 10 s north's held offer moves to south (agency_unreachable)
    and a call only north covers goes back agency_unreachable. A heartbeat brings north back at
    once; a consumer connected in one of its groups keeps it there past its timeout; the
    consumer gone, it is unreachable again. (Before, an agency counted as there forever.)"""
    receiver = Receiver(secrets={"south": SPEC_SECRET}, fail_first={}, always={})
    hook = {"url": receiver.url("south"), "secret": SPEC_SECRET, "allow_private": True}
    j = _watched(
        [team("n-1", km_north=1), team("s-1", agency="south", km_north=3), team("n-far", km_north=200)],
        south={"channels": ["webhook"], "webhook": hook},
    )
    await load(settings, j)
    async with (
        serving(receiver),
        System.start(settings, ["matching", "notify"], jurisdiction=None, builders=BUILDERS) as running,
        httpx.AsyncClient(base_url=running.url("notify"), timeout=10) as http,
    ):
        first, offer = await place_call(producer, settings, db)
        assert offer["team_id"] == "n-1"

        await eventually(partial(_unreachable_since, db, "north"), lambda t: t is not None, timeout_s=30)
        offers = await db.wait_offers(first, 2)
        assert [(o["team_id"], o["status"], o["reason"]) for o in offers] == [
            ("n-1", "withdrawn", "agency_unreachable"),
            ("s-1", "offered", None),
        ]
        assert await _reachable(db, "south") and receiver.answered("south")  # pinged, answered 2xx
        told = [
            e
            for e in await topic_events(settings, topics.AGENCIES_REACHABILITY, 1, 10)
            if e["agency_id"] == "north"
        ]
        assert told[0]["reachable"] is False and told[0]["timeout_s"] == TIMEOUT_S

        # n-far is north's and the only team 200 km north: nobody else covers that call.
        far = new_call_id()
        await publish(producer, settings, call_received(far, km_north=200))
        await db.wait_call(far, "unassigned")
        assert await db.hand_back_reason(far) == "agency_unreachable"

        r = await http.post("/v1/heartbeat", headers=NORTH)
        assert r.status_code == 200, r.text
        assert r.json()["reachable"] is True and r.json()["last_sign"] == "request"
        await eventually(partial(_unreachable_since, db, "north"), lambda t: t is None, timeout_s=10)
        _, offer = await place_call(producer, settings, db)
        assert offer["team_id"] == "n-1"

        group = settings.topic(f"{topics.AGENCY_TOPIC_PREFIX}north.console")
        consumer = AIOKafkaConsumer(
            settings.topic(agency_topic("north")), group_id=group, **client_options(settings)
        )
        await consumer.start()
        try:
            await consumer.getmany(timeout_ms=1000)
            # Past the timeout with no request of its own: the connected consumer keeps north there.
            await eventually(
                partial(db.pool.fetchval, "SELECT last_sign FROM notify.agencies WHERE id = 'north'"),
                lambda s: s == "kafka_group",
                timeout_s=15,
            )
        finally:
            await consumer.stop()
        assert await _reachable(db, "north")
        await eventually(partial(_reachable, db, "north"), lambda r: r is False, timeout_s=30)


async def test_a_heartbeat_takes_an_agency_token(settings: Settings):
    """Tried: no token, a token nobody holds, a PSAP's token (401 with a code each), and a good
    token with a body of 10 kB of bytes that are not JSON (422 with a code: a heartbeat has no body)."""
    await load(settings, jurisdiction([team("n-1")]))
    async with (
        System.start(settings, ["notify"], jurisdiction=None, builders=BUILDERS) as running,
        httpx.AsyncClient(base_url=running.url("notify"), timeout=10) as http,
    ):
        for headers in ({}, bearer("nobody-holds-this-token-000"), bearer("psap-token-0000000001")):
            r = await http.post("/v1/heartbeat", headers=headers)
            assert r.status_code == 401 and r.json()["code"], (headers, r.text)
        r = await http.post("/v1/heartbeat", headers=NORTH, content=b"\xff" * 10_000)
        assert r.status_code == 422 and r.json()["code"], r.text
        r = await http.post("/v1/heartbeat", headers=NORTH)
        assert r.status_code == 200 and r.json()["liveness_timeout_s"] is None  # not watched
