"""Matching on the real broker and PostgreSQL: choice and its explanation, roster updates, offers
that decline, expire or are withdrawn until the call is taken or handed back with a reason."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest

from services.matching import repository
from services.matching.settings import MatchingSettings
from shared import events, topics
from shared.envelope import new_event
from shared.jurisdiction import WEEKDAYS
from shared.settings import Settings
from tests.integration.matching_harness import (
    AGENCY_TOKENS,
    HERE,
    OVERSIGHT_TOKEN,
    call_received,
    call_updated,
    expired,
    jurisdiction,
    load,
    new_call_id,
    place_call,
    publish,
    responded,
    running_matching,
    status_changed,
    team,
    topic_events,
)
from tests.support import eventually, read_topic
from tools.psap import bearer


async def raw_sources(settings: Settings, topic: str, count: int) -> list[bytes]:
    """The raw values of the first `count` events on a topic."""
    return [r.value for r in await read_topic(settings, settings.topic(topic), count, 10)]


pytestmark = pytest.mark.integration

FAST = MatchingSettings(max_attempts=3)


async def test_the_best_team_is_offered_and_the_decision_is_explained(settings, db, producer):
    await load(
        settings,
        jurisdiction(
            [
                team("near-en", km_north=0.5),
                team("peer-es", km_north=1.5, skills=["peer_support_specialist"], languages=["en", "es"]),
                team("near-es", agency="south", km_north=1.0, languages=["es"]),
                team("busy-es", km_north=0.2, languages=["es"]),
            ],
            matching={
                "version": "m-7",
                "incident_types": {"MNTL": {"preferred": ["peer_support_specialist"]}},
                "preferred_skill_min": 5,
            },
        ),
    )
    await db.pool.execute("UPDATE matching.teams SET status = 'on_scene' WHERE id = 'busy-es'")
    async with running_matching(settings, FAST) as url:
        call_id, offer = await place_call(producer, settings, db, language="es-MX")
        # near-en does not speak Spanish and busy-es is on a call; the peer specialist's skill bonus
        # (5 min) outweighs near-es being 0.5 km (0.75 min) closer.
        assert offer["team_id"] == "peer-es"
        [sent] = await topic_events(settings, topics.ASSIGNMENTS_OFFERED, 1)
        assert sent["call_id"] == call_id and sent["team_id"] == "peer-es" and sent["attempt"] == 1

        async with httpx.AsyncClient(base_url=url, timeout=10) as http:
            r = await http.get(f"/v1/calls/{call_id}/match", headers=bearer(OVERSIGHT_TOKEN))
            assert r.status_code == 200, r.text
            [decision] = r.json()["decisions"]
            assert decision["outcome"] == "offered" and decision["team_id"] == "peer-es"
            assert decision["rules_version"] == "m-7"
            why = decision["explanation"]
            assert why["triage_rules_version"] == "t1"
            assert why["inputs"]["language"] == "es-MX"
            assert why["inputs"]["preferred_skills"] == ["peer_support_specialist"]
            assert why["funnel"] == {
                "teams": 4,
                "with_capacity": 4,
                "on_shift": 4,
                "in_area": 4,
                "skill_and_language": 3,
                "reachable": 3,
                "available": 2,
            }
            chosen, [runner_up] = why["chosen"], why["runners_up"]
            assert chosen["rank"] == 1 and chosen["skill_bonus_min"] == 5
            assert runner_up["team_id"] == "near-es" and runner_up["skill_bonus_min"] == 0
            # Oversight reads distances, ETAs and scores in whole units and the call on the 0.01 degree
            # grid: finer ones, with the teams' known positions, would locate the caller.
            assert chosen["score_min"] <= runner_up["score_min"]
            assert chosen["eta_min"] >= runner_up["eta_min"]
            assert all(
                float(v).is_integer() for v in (chosen["eta_min"], chosen["distance_km"], chosen["score_min"])
            )
            located = why["inputs"]["location"]
            assert located == {k: round(v, 2) for k, v in located.items()}

            tries = {
                "an agency token": (bearer(AGENCY_TOKENS["north"]), 403, "forbidden"),
                "no token": ({}, 401, "unauthenticated"),
            }
            for what, (headers, status, code) in tries.items():
                r = await http.get(f"/v1/calls/{call_id}/match", headers=headers)
                assert (r.status_code, r.json()["code"]) == (status, code), what
            for what, path in {"an unknown call": new_call_id(), "not a uuid": "nope"}.items():
                r = await http.get(f"/v1/calls/{path}/match", headers=bearer(OVERSIGHT_TOKEN))
                assert (r.status_code, r.json()["code"]) == (404, "not_found"), what


async def test_a_call_nobody_has_the_skill_or_language_for_is_handed_back(settings, db, producer):
    rules = {"version": "m-1", "incident_types": {"SUICTHRT": {"required": ["licensed_clinician"]}}}
    await load(
        settings,
        jurisdiction(
            [
                team("peer", skills=["peer_support_specialist"]),
                team("clinician-far", km_north=40, skills=["licensed_clinician"]),
            ],
            matching=rules,
        ),
    )
    async with running_matching(settings, FAST):
        for what, call in {
            "a required skill only an out-of-area team has": call_received(
                new_call_id(), incident_type="SUICTHRT"
            ),
            "a language no team speaks": call_received(new_call_id(), language="vi"),
        }.items():
            await publish(producer, settings, call)
            await db.wait_call(call.subject, "unassigned")
            assert await db.hand_back_reason(call.subject) == "no_skill_or_language", what
            assert await db.offers(call.subject) == [], what
        [skill_call, _] = await topic_events(settings, topics.CALLS_UNASSIGNED, 2)
        assert skill_call["reason_code"] == "no_skill_or_language"
        # The same roster takes a call it can serve.
        _, offer = await place_call(producer, settings, db, language="en-US")
        assert offer["team_id"] == "peer"


async def test_a_coverage_polygon_replaces_the_radius(settings, db, producer):
    d = 0.02  # about 2 km around the call
    square = [
        {"lat": HERE["lat"] + a, "lon": HERE["lon"] + b} for a, b in ((-d, -d), (-d, d), (d, d), (d, -d))
    ]
    elsewhere = [{"lat": p["lat"] + 0.5, "lon": p["lon"]} for p in square]
    await load(
        settings,
        jurisdiction(
            [
                # Nearest, but its polygon is 55 km north: it does not cover the call.
                team("polygon-elsewhere", km_north=0.1, area=elsewhere),
                # Based 30 km away with a 1 km radius, but its polygon holds the call.
                team("polygon-here", km_north=30, radius_km=1, area=square),
                team("radius-too-small", km_north=5, radius_km=2),
            ]
        ),
    )
    async with running_matching(settings, FAST):
        call_id, offer = await place_call(producer, settings, db)
        assert offer["team_id"] == "polygon-here"
        assert (
            await db.pool.fetchval(
                "SELECT explanation->'funnel'->>'in_area' FROM matching.decisions WHERE call_id = $1::uuid",
                call_id,
            )
            == "1"
        )


async def test_an_agency_updates_its_own_teams_only(settings, db):
    await load(settings, jurisdiction([team("n-1"), team("s-1", agency="south")]))
    async with running_matching(settings, FAST) as url, httpx.AsyncClient(base_url=url, timeout=10) as http:
        north = bearer(AGENCY_TOKENS["north"])
        r = await http.get("/v1/teams", headers=north)
        assert [t["id"] for t in r.json()] == ["n-1"]

        r = await http.patch("/v1/teams/n-1", json={"status": "out_of_service", "lat": 44.1}, headers=north)
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "out_of_service" and r.json()["lat"] == 44.1

        r = await http.patch("/v1/teams/s-1", json={"status": "out_of_service"}, headers=north)
        assert (r.status_code, r.json()["code"]) == (404, "not_found")
        assert await db.team_status("s-1") == "available"

        bad = {
            "an unknown status": {"status": "napping"},
            "an unknown field": {"colour": "red"},
            "negative capacity": {"capacity": -1},
            "a shift with a bad day": {"shifts": [{"days": ["funday"], "start": "08:00", "end": "09:00"}]},
            "latitude out of range": {"lat": 91},
        }
        for what, body in bad.items():
            r = await http.patch("/v1/teams/n-1", json=body, headers=north)
            assert (r.status_code, r.json()["code"]) == (422, "invalid_request"), what
        r = await http.patch("/v1/teams/n-1", content=b"{not json", headers=north)
        assert r.status_code == 422, "a body that is not JSON"
        r = await http.patch("/v1/teams/n-1", json={"status": "available"}, headers=bearer(OVERSIGHT_TOKEN))
        assert (r.status_code, r.json()["code"]) == (403, "forbidden"), "an oversight token"


async def test_the_roster_refresh_of_one_team_or_several_reads_what_the_full_read_does(settings, db):
    # One team (the usual refresh, after an offer) and several are read by different statements;
    # both must give the full read's columns, a paused agency's team with no capacity included.
    await load(settings, jurisdiction([team("n-1"), team("n-2", capacity=2), team("s-1", agency="south")]))
    async with db.pool.acquire() as conn:
        await conn.execute("UPDATE matching.agencies SET paused_at = now() WHERE id = 'south'")
        await conn.execute("UPDATE matching.teams SET held = 1, status = 'offered' WHERE id = 'n-2'")
        every = await repository.live_teams(conn)
        full = {row[0]: row for row in zip(*every, strict=True)}
        assert full["s-1"][2] == 0 and full["n-2"][2] == 2 and full["n-2"][5] == 1
        for ids in (["s-1"], ["n-2"], ["n-1", "s-1"], ["n-1", "n-2", "s-1"]):
            columns = await repository.live_teams(conn, ids=ids)
            assert sorted(zip(*columns, strict=True)) == sorted(full[i] for i in ids), ids
        assert await repository.live_teams(conn, ids=["nobody"]) == ([], [], [], [], [], [])


async def test_capacity_or_hours_dropping_to_nothing_hands_calls_back_at_once(settings, db, producer):
    await load(settings, jurisdiction([team("only-1"), team("only-2", km_north=2)]))
    north = bearer(AGENCY_TOKENS["north"])
    async with running_matching(settings, FAST) as url, httpx.AsyncClient(base_url=url, timeout=10) as http:
        for team_id in ("only-1", "only-2"):
            r = await http.patch(f"/v1/teams/{team_id}", json={"capacity": 0}, headers=north)
            assert r.status_code == 200 and r.json()["capacity"] == 0
        first = new_call_id()
        await publish(producer, settings, call_received(first))
        await db.wait_call(first, "unassigned")
        assert await db.hand_back_reason(first) == "no_community_capacity"
        assert await db.offers(first) == []
        [back] = await topic_events(settings, topics.CALLS_UNASSIGNED, 1)
        assert back == {**back, "call_id": first, "reason_code": "no_community_capacity", "psap_id": "psap"}
        assert (
            back["detail"] == "teams 2, with_capacity 0, on_shift 0, in_area 0, skill_and_language 0,"
            " reachable 0, available 0"
        )

        # Capacity returns, but the agency's hours now cover only a day that is not today.
        today = datetime.now(ZoneInfo("America/Los_Angeles")).weekday()
        other_day = {"days": [WEEKDAYS[(today + 3) % 7]], "start": "00:00", "end": "23:59"}
        for team_id in ("only-1", "only-2"):
            r = await http.patch(
                f"/v1/teams/{team_id}", json={"capacity": 1, "shifts": [other_day]}, headers=north
            )
            assert r.status_code == 200, r.text
        second = new_call_id()
        await publish(producer, settings, call_received(second))
        await db.wait_call(second, "unassigned")
        assert await db.hand_back_reason(second) == "no_team_on_shift"
        assert await db.offers(second) == []


async def test_a_team_of_capacity_two_holds_two_calls_and_a_third_is_handed_back(settings, db, producer):
    await load(settings, jurisdiction([team("pair", capacity=2)]))
    north = bearer(AGENCY_TOKENS["north"])

    async def held() -> tuple[int, set[str]]:
        n = await db.pool.fetchval("SELECT held FROM matching.teams WHERE id = 'pair'")
        calls = await db.pool.fetch("SELECT call_id::text FROM matching.holds WHERE team_id = 'pair'")
        return n, {r["call_id"] for r in calls}

    async with running_matching(settings, FAST) as url, httpx.AsyncClient(base_url=url, timeout=10) as http:
        first, offer1 = await place_call(producer, settings, db)
        accept = responded(offer1, "accepted")
        await publish(producer, settings, accept)
        await db.wait_processed(accept)
        second, offer2 = await place_call(producer, settings, db)
        assert offer1["team_id"] == offer2["team_id"] == "pair"
        assert await held() == (2, {first, second})

        third = new_call_id()
        await publish(producer, settings, call_received(third))
        await db.wait_call(third, "unassigned")
        assert await db.hand_back_reason(third) == "all_busy"
        assert await db.offers(third) == []
        r = await http.get("/v1/teams", headers=north)
        [pair] = r.json()
        assert (pair["capacity"], pair["held"], pair["current_call"], pair["status"]) == (
            2,
            2,
            second,
            "offered",
        )

        # Clearing the first call frees one place: the next call takes it, and the team shows the
        # step of its most recent call still held.
        cleared = status_changed(offer1, "cleared")
        await publish(producer, settings, cleared)
        await db.wait_processed(cleared)
        assert await held() == (1, {second})
        fourth, offer4 = await place_call(producer, settings, db)
        assert offer4["team_id"] == "pair"
        assert await held() == (2, {second, fourth})
        declined = responded(offer4, "declined")
        await publish(producer, settings, declined)
        await db.wait_processed(declined)
        assert await held() == (1, {second})
        r = await http.get("/v1/teams", headers=north)
        assert (r.json()[0]["current_call"], r.json()[0]["status"]) == (second, "offered")


async def test_an_outage_where_the_call_is_differs_from_a_place_nobody_covers(settings, db, producer):
    await load(settings, jurisdiction([team("near", km_north=1), team("far", km_north=150)]))
    north = bearer(AGENCY_TOKENS["north"])
    async with running_matching(settings, FAST) as url, httpx.AsyncClient(base_url=url, timeout=10) as http:
        r = await http.patch("/v1/teams/near", json={"capacity": 0}, headers=north)
        assert r.status_code == 200, r.text
        outage = new_call_id()
        await publish(producer, settings, call_received(outage))
        await db.wait_call(outage, "unassigned")
        # "far" has capacity but does not cover the call; "near" covers it and has none.
        assert await db.hand_back_reason(outage) == "no_capacity_in_area"
        [back] = await topic_events(settings, topics.CALLS_UNASSIGNED, 1)
        assert back["reason_code"] == "no_capacity_in_area"
        assert (
            back["detail"] == "teams 2, with_capacity 1, on_shift 1, in_area 0, skill_and_language 0,"
            " reachable 0, available 0"
        )

        # Capacity back, but "near" now stands 150 km away: nobody covers the place at all.
        away = {"capacity": 1, "lat": HERE["lat"] + 150 / 111.2, "lon": HERE["lon"]}
        r = await http.patch("/v1/teams/near", json=away, headers=north)
        assert r.status_code == 200, r.text
        nowhere = new_call_id()
        await publish(producer, settings, call_received(nowhere))
        await db.wait_call(nowhere, "unassigned")
        assert await db.hand_back_reason(nowhere) == "none_in_area"
        assert await db.offers(nowhere) == []


async def test_an_offered_team_taken_off_the_roster_loses_the_offer_at_once(settings, db, producer):
    await load(settings, jurisdiction([team("first", km_north=1), team("second", km_north=2)]))
    north = bearer(AGENCY_TOKENS["north"])
    async with running_matching(settings, FAST) as url, httpx.AsyncClient(base_url=url, timeout=10) as http:
        call_id, first = await place_call(producer, settings, db)
        assert first["team_id"] == "first"
        r = await http.patch("/v1/teams/first", json={"capacity": 0}, headers=north)
        assert r.status_code == 200 and r.json()["capacity"] == 0 and r.json()["current_call"] is None
        # The withdrawal and the next offer happen in the request, before it answers.
        withdrawn, second = await db.offers(call_id)
        assert (withdrawn["team_id"], withdrawn["status"], withdrawn["reason"]) == (
            "first",
            "withdrawn",
            "team_taken_off_roster",
        )
        assert (second["team_id"], second["status"]) == ("second", "offered")

        r = await http.patch("/v1/teams/second", json={"status": "out_of_service"}, headers=north)
        assert r.status_code == 200 and r.json()["status"] == "out_of_service"
        assert await db.call_status(call_id) == "unassigned"
        assert await db.hand_back_reason(call_id) == "no_community_capacity"
        taken_back = await topic_events(settings, topics.ASSIGNMENTS_WITHDRAWN, 2)
        assert [w["team_id"] for w in taken_back] == ["first", "second"]
        [back] = await topic_events(settings, topics.CALLS_UNASSIGNED, 1)
        assert back["call_id"] == call_id and back["reason_code"] == "no_community_capacity"


async def test_declines_move_to_the_next_team_until_none_is_left(settings, db, producer):
    await load(
        settings, jurisdiction([team("first", km_north=1), team("second", agency="south", km_north=2)])
    )
    async with running_matching(settings, MatchingSettings(max_attempts=5)):
        call_id, one = await place_call(producer, settings, db)
        assert one["team_id"] == "first"
        await publish(producer, settings, responded(one, "declined", "team_unavailable"))
        _, two = await db.wait_offers(call_id, 2)
        assert two["team_id"] == "second"
        await publish(producer, settings, responded(two, "declined", "out_of_area"))
        await db.wait_call(call_id, "unassigned")
        assert await db.hand_back_reason(call_id) == "no_acceptance_in_time"
        assert [(o["status"], o["reason"]) for o in await db.offers(call_id)] == [
            ("declined", "team_unavailable"),
            ("declined", "out_of_area"),
        ]
        assert [await db.team_status(t) for t in ("first", "second")] == ["available", "available"]
        offered = await topic_events(settings, topics.ASSIGNMENTS_OFFERED, 2)
        assert [o["team_id"] for o in offered] == ["first", "second"]
        [back] = await topic_events(settings, topics.CALLS_UNASSIGNED, 1)
        assert back["call_id"] == call_id and back["reason_code"] == "no_acceptance_in_time"


async def test_expiries_from_notify_move_to_the_next_team_until_attempts_run_out(settings, db, producer):
    """Matching expires nothing by the clock: notify's `assignments.expired.v1` frees the team and the
    next one is offered. (Before the change matching expired offers itself: with a 1 s deadline the
    offers here expired with no expiry published by anyone but matching.)"""
    teams = [team(f"t-{i}", km_north=i) for i in (1, 2, 3)]
    await load(settings, jurisdiction(teams))
    async with running_matching(settings, MatchingSettings(max_attempts=2, offer_timeout_s=1)):
        call_id, first = await place_call(producer, settings, db)
        # Well past the deadline matching wrote, nothing happens until notify says so.
        await asyncio.sleep(2)
        assert [(o["team_id"], o["status"]) for o in await db.offers(call_id)] == [("t-1", "offered")]
        await publish(producer, settings, expired(first))
        _, second = await db.wait_offers(call_id, 2)
        assert (second["team_id"], second["attempt"]) == ("t-2", 2)
        await publish(producer, settings, expired(second))
        await db.wait_call(call_id, "unassigned")
        offers = await db.offers(call_id)
        # Two attempts allowed: t-3 was never offered although it was free.
        assert [(o["team_id"], o["status"]) for o in offers] == [("t-1", "expired"), ("t-2", "expired")]
        assert await db.hand_back_reason(call_id) == "no_acceptance_in_time"
        assert [await db.team_status(t["id"]) for t in teams] == ["available"] * 3
        offered = await topic_events(settings, topics.ASSIGNMENTS_OFFERED, 2)
        assert all(o["deadline"] for o in offered) and [o["attempt"] for o in offered] == [1, 2]
        [back] = await topic_events(settings, topics.CALLS_UNASSIGNED, 1)
        assert back["reason_code"] == "no_acceptance_in_time" and back["attempts"] == 2
    # Matching published no expiry: notify is the only producer of assignments.expired.v1.
    assert [e["assignment_id"] for e in await topic_events(settings, topics.ASSIGNMENTS_EXPIRED, 3, 3)] == [
        first["assignment_id"],
        second["assignment_id"],
    ]
    assert {json.loads(r)["source"] for r in await raw_sources(settings, topics.ASSIGNMENTS_EXPIRED, 2)} == {
        "/services/notify"
    }


async def test_an_accept_read_after_the_deadline_passed_while_matching_was_down_keeps_the_one_team(
    settings, db, producer
):
    """Notify honoured an accept in time; matching, stopped, read it only after the deadline it wrote
    had passed. The call keeps the accepted team and no second team is offered. (Before the change
    matching expired the offer on restart and offered the call to `second`: two teams.)"""
    await load(settings, jurisdiction([team("first", km_north=1), team("second", km_north=2)]))
    slow = FAST.model_copy(update={"offer_timeout_s": 2})
    async with running_matching(settings, slow):
        call_id, first = await place_call(producer, settings, db)
    # Matching is down; the agency's accept (decided by notify, in time) waits on the topic.
    accept = responded(first, "accepted")
    await publish(producer, settings, accept)
    deadline = await db.pool.fetchval(
        "SELECT deadline FROM matching.assignments WHERE id = $1::uuid", first["id"]
    )
    await eventually(
        lambda: db.pool.fetchval("SELECT now() > $1::timestamptz", deadline + timedelta(seconds=1)),
        bool,
        what="the deadline to pass",
    )
    async with running_matching(settings, slow):
        await db.wait_processed(accept)
        await asyncio.sleep(1.5)  # a restarted process with a clock loop would have expired by now
        offers = await db.offers(call_id)
        assert [(o["team_id"], o["status"]) for o in offers] == [("first", "accepted")]
        assert await db.call_status(call_id) == "assigned"
        assert await db.team_status("first") == "assigned" and await db.team_status("second") == "available"


async def test_accept_and_status_reports_move_the_team_and_cleared_frees_it(settings, db, producer):
    await load(settings, jurisdiction([team("crew")]))
    async with running_matching(settings, FAST):
        call_id, offer = await place_call(producer, settings, db)
        assert await db.team_status("crew") == "offered"
        steps = [
            (responded(offer, "accepted"), "assigned"),
            (status_changed(offer, "en_route"), "en_route"),
            (status_changed(offer, "on_scene"), "on_scene"),
            (status_changed(offer, "cleared"), "available"),
        ]
        for event, team_status in steps:
            await publish(producer, settings, event)
            await db.wait_team("crew", team_status)
        await db.wait_call(call_id, "closed")


async def test_a_safety_flag_in_a_psap_update_withdraws_the_team_and_hands_back(settings, db, producer):
    await load(settings, jurisdiction([team("crew"), team("spare", km_north=3)]))
    async with running_matching(settings, FAST):
        call_id, offer = await place_call(producer, settings, db)
        await publish(producer, settings, responded(offer, "accepted"))
        await publish(producer, settings, status_changed(offer, "en_route"))
        await db.wait_team("crew", "en_route")

        update = call_updated(call_id, "police", reason="safety screen: weapon = yes -> police", weapon="yes")
        await publish(producer, settings, update)
        await db.wait_call(call_id, "unassigned")
        assert await db.team_status("crew") == "available"
        assert [(o["status"], o["reason"]) for o in await db.offers(call_id)] == [
            ("withdrawn", "withdrawn_by_psap_update")
        ]
        [withdrawn] = await topic_events(settings, topics.ASSIGNMENTS_WITHDRAWN, 1)
        assert withdrawn["assignment_id"] == offer["assignment_id"]
        assert withdrawn["reason"] == "withdrawn_by_psap_update"
        [back] = await topic_events(settings, topics.CALLS_UNASSIGNED, 1)
        assert back["call_id"] == call_id and back["reason_code"] == "withdrawn_by_psap_update"
        # The spare team was not offered the call: a safety flag ends the community response.
        assert len(await db.offers(call_id)) == 1


async def test_an_update_routing_a_call_to_community_places_it_and_one_routing_it_away_withdraws(
    settings, db, producer
):
    await load(settings, jurisdiction([team("crew")]))
    async with running_matching(settings, FAST):
        # A call first sent to review; the call-taker overrides it to a community response.
        call_id = new_call_id()
        await publish(
            producer, settings, call_updated(call_id, "community", reason="override by the call-taker")
        )
        [offer] = await db.wait_offers(call_id, 1)
        assert offer["team_id"] == "crew"
        # Then routed to police without any "yes" (the call-taker changed their mind).
        await publish(
            producer, settings, call_updated(call_id, "police", reason="override by the call-taker")
        )
        await db.wait_call(call_id, "unassigned")
        assert (await db.offers(call_id))[0]["reason"] == "withdrawn_by_psap_update"
        assert await db.team_status("crew") == "available"
        assert await db.hand_back_reason(call_id) == "withdrawn_by_psap_update"


async def test_a_cancel_withdraws_the_offer_and_frees_the_team(settings, db, producer):
    await load(settings, jurisdiction([team("crew")]))
    async with running_matching(settings, FAST):
        call_id, offer = await place_call(producer, settings, db)
        cancel = events.CallCancelled(call_id=call_id, psap_id="psap", reason="caller called back")
        await publish(producer, settings, new_event(topics.CALLS_CANCELLED, "intake", call_id, cancel))
        await db.wait_call(call_id, "cancelled")
        await db.wait_team("crew", "available")
        [withdrawn] = await topic_events(settings, topics.ASSIGNMENTS_WITHDRAWN, 1)
        assert withdrawn == {
            **withdrawn,
            "assignment_id": offer["assignment_id"],
            "reason": "cancelled_by_psap",
        }
        # A late acceptance of the withdrawn offer changes nothing.
        late = responded(offer, "accepted")
        await publish(producer, settings, late)
        await eventually(
            lambda: db.pool.fetchval(
                "SELECT count(*) FROM matching.processed_events WHERE event_id = $1", late.id
            ),
            lambda n: n == 1,
            what="the late acceptance to be processed",
        )
        assert await db.team_status("crew") == "available"
        later = new_call_id()
        await publish(producer, settings, call_received(later))
        [next_offer] = await db.wait_offers(later, 1)
        assert next_offer["team_id"] == "crew"
        assert (await db.offers(call_id))[0]["status"] == "withdrawn"


async def test_a_team_freed_by_another_replica_is_offered_before_a_hand_back(settings, db, producer):
    # This process re-reads the whole roster only once an hour: its copy goes stale.
    lazy = MatchingSettings(max_attempts=3, roster_refresh_s=3600)
    await load(settings, jurisdiction([team("only")]))
    async with running_matching(settings, lazy):
        first, offer = await place_call(producer, settings, db)
        assert offer["team_id"] == "only"
        # A second call finds the team busy (and this process has nothing left to re-read).
        busy = new_call_id()
        await publish(producer, settings, call_received(busy))
        await db.wait_call(busy, "unassigned")
        # Another matching replica frees the team (as a cancel handled there would): the copy
        # here still says it is busy.
        async with db.pool.acquire() as conn:
            await repository.release_team(conn, "only", first)
        third, again = await place_call(producer, settings, db)
    # The stale copy found nobody free; the fresh read before handing back found the team.
    assert again["team_id"] == "only"
    assert await db.call_status(third) == "offered"
