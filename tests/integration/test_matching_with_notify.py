"""Matching and notify together on the real broker and PostgreSQL: notify alone decides an offer's
deadline, matching follows it, and an agency working a withdrawn assignment hears it is gone."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from functools import partial

import pytest

from services.matching.settings import MatchingSettings
from services.notify.settings import NotifySettings
from shared import topics
from shared.settings import Settings
from tests.integration.matching_harness import (
    AGENCY_TOKENS,
    call_cancelled,
    jurisdiction,
    load,
    place_call,
    publish,
    running_matching,
    team,
)
from tests.integration.notify_system import Notify, running_notify
from tests.support import eventually, read_topic
from tools.psap import bearer

pytestmark = pytest.mark.integration

NORTH = bearer(AGENCY_TOKENS["north"])
OWN = MatchingSettings(max_attempts=3)
FAST = NotifySettings(repage_every_s=3600, expiry_interval_s=0.2)


async def expiries(settings: Settings, at_most: int) -> list[dict[str, object]]:
    """Every `assignments.expired.v1` on the topic (the read ends by its timeout), with its source."""
    records = await read_topic(settings, settings.topic(topics.ASSIGNMENTS_EXPIRED), at_most, 5)
    return [{**json.loads(r.value)["data"], "source": json.loads(r.value)["source"]} for r in records]


async def test_an_accept_while_matching_is_stopped_keeps_one_team_after_the_deadline(settings, db, producer):
    """The agency accepts through notify while matching is not consuming, and the offer's deadline
    passes before matching is back: the call has the accepted team and no second offer, and nobody
    expires the offer. (Before the change matching, back, expired the offer by its own clock and
    offered the call to `second` while `first` was working it.)"""
    j = jurisdiction([team("first", km_north=1), team("second", km_north=2)])
    await load(settings, j)
    short = OWN.model_copy(update={"offer_timeout_s": 2})
    async with running_notify(settings, j, FAST) as notify:
        async with running_matching(settings, short):
            call_id, offer = await place_call(producer, settings, db)
            await eventually(partial(notify.status, offer["assignment_id"]), lambda s: s == "offered")
        async with notify.http() as http:
            r = await http.post(f"/v1/assignments/{offer['assignment_id']}/accept", headers=NORTH)
            assert r.status_code == 200 and r.json()["status"] == "accepted", r.text
        deadline = await db.pool.fetchval(
            "SELECT deadline FROM matching.assignments WHERE id = $1::uuid", offer["id"]
        )
        await eventually(
            lambda: db.pool.fetchval("SELECT now() > $1::timestamptz", deadline + timedelta(seconds=1)),
            bool,
            what="the deadline to pass",
        )
        async with running_matching(settings, short):
            await db.wait_call(call_id, "assigned")
            await asyncio.sleep(1.5)  # time for any clock-driven expiry to show
            assert [(o["team_id"], o["status"]) for o in await db.offers(call_id)] == [("first", "accepted")]
            assert (
                await db.team_status("first") == "assigned" and await db.team_status("second") == "available"
            )
        assert await notify.status(offer["assignment_id"]) == "accepted"
        assert await expiries(settings, 1) == []


async def test_an_accept_after_the_deadline_is_refused_and_only_notify_expires_the_offer(
    settings, db, producer
):
    """Nobody answers in time; the agency's late accept answers 409 offer_expired; the expiry is
    published once, by notify, with the attempt, and matching offers the next team from it.
    (Before the change matching published the expiry.)"""
    j = jurisdiction([team("first", km_north=1), team("second", km_north=2)])
    await load(settings, j)
    short = OWN.model_copy(update={"offer_timeout_s": 2})
    async with running_notify(settings, j, FAST) as notify, running_matching(settings, short):
        call_id, first = await place_call(producer, settings, db)
        await eventually(partial(notify.status, first["assignment_id"]), lambda s: s == "offered")
        await eventually(
            lambda: db.pool.fetchval(
                "SELECT now() > deadline FROM matching.assignments WHERE id = $1::uuid", first["id"]
            ),
            bool,
            what="the deadline to pass",
        )
        async with notify.http() as http:
            r = await http.post(f"/v1/assignments/{first['assignment_id']}/accept", headers=NORTH)
            assert r.status_code == 409 and r.json()["code"] == "offer_expired", r.text
        _, second = await db.wait_offers(call_id, 2)
        assert (second["team_id"], second["attempt"]) == ("second", 2)
        assert [o["status"] for o in await db.offers(call_id)] == ["expired", "offered"]
        await eventually(partial(notify.status, second["assignment_id"]), lambda s: s == "offered")
        # The second offer's deadline may pass meanwhile too; each offer expires once, by notify.
        found = await expiries(settings, 3)
        [expiry] = [e for e in found if e["assignment_id"] == first["assignment_id"]]
        assert expiry["attempt"] == 1
        assert len(found) == len({e["assignment_id"] for e in found})
        assert {e["source"] for e in found} == {"/services/notify"}


async def report(
    notify: Notify, assignment_id: str, path: str, body: dict[str, str] | None
) -> tuple[int, str]:
    async with notify.http() as http:
        r = await http.post(f"/v1/assignments/{assignment_id}/{path}", json=body, headers=NORTH)
    return r.status_code, r.json().get("code", "") if r.status_code != 200 else ""


async def test_cancels_racing_the_agencys_accept_and_reports_end_with_the_agency_told(settings, db, producer):
    """Twenty calls; for each, the PSAP's cancel and the agency's accept, en route and on scene go at
    once. Every answer is 200 or 409 with a code; afterwards every assignment is withdrawn in both
    services, every team is free, and the agency's feed says withdrawn for each. (Before the change
    matching applied reports to withdrawn assignments, making them live again.)"""
    calls = 20
    j = jurisdiction([team(f"t-{i:02}", km_north=0.1 * i) for i in range(calls)])
    await load(settings, j)
    async with running_notify(settings, j, FAST) as notify, running_matching(settings, OWN):
        placed = [await place_call(producer, settings, db) for _ in range(calls)]
        for _, offer in placed:
            await eventually(partial(notify.status, offer["assignment_id"]), lambda s: s == "offered")

        async def race(call_id: str, assignment_id: str) -> list[tuple[int, str]]:
            async def agency() -> list[tuple[int, str]]:
                return [
                    await report(notify, assignment_id, "accept", None),
                    await report(notify, assignment_id, "status", {"status": "en_route"}),
                    await report(notify, assignment_id, "status", {"status": "on_scene"}),
                ]

            answers, _ = await asyncio.gather(agency(), publish(producer, settings, call_cancelled(call_id)))
            return answers

        results = await asyncio.gather(*(race(c, o["assignment_id"]) for c, o in placed))
        answers = {a for r in results for a in r}
        assert answers <= {(200, ""), (409, "offer_withdrawn")}, answers
        for call_id, offer in placed:
            await db.wait_call(call_id, "cancelled")
            await eventually(partial(notify.status, offer["assignment_id"]), lambda s: s == "withdrawn")
            [only] = await db.offers(call_id)
            assert only["status"] == "withdrawn"
            kinds = await notify.pool.fetch(
                "SELECT kind FROM notify.feed WHERE assignment_id = $1::uuid ORDER BY seq",
                offer["assignment_id"],
            )
            assert [k["kind"] for k in kinds][-1] == "withdrawn"
        await asyncio.sleep(1)  # the last reports reach matching
        held = await db.pool.fetch(
            "SELECT id FROM matching.teams WHERE status <> 'available' OR current_call IS NOT NULL"
        )
        assert held == []
        live = await db.pool.fetchval(
            "SELECT count(*) FROM matching.assignments"
            " WHERE status IN ('offered', 'accepted', 'en_route', 'on_scene')"
        )
        assert live == 0
