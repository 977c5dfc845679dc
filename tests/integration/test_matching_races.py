"""Matching under races on the real broker and PostgreSQL: a cancel or a weapon update against an
agency's accept and reports, and events about a call read before the call itself."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from typing import Any

import pytest

from services.matching.settings import MatchingSettings
from shared import topics
from shared.envelope import Envelope
from tests.integration.matching_harness import (
    Db,
    call_cancelled,
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

pytestmark = pytest.mark.integration

OWN = MatchingSettings(max_attempts=3)
CLAIMS = ("accepted", "en_route", "on_scene", "cleared")
# The states in which an assignment holds its team.
LIVE = ("offered", "accepted", "en_route", "on_scene")


def claims(offer: dict[str, Any]) -> list[Envelope]:
    """The agency's accept and every report of a whole job, as notify publishes them."""
    return [responded(offer, "accepted")] + [status_changed(offer, s) for s in CLAIMS[1:]]


def take_away(call_id: str, how: str) -> Envelope:
    """A PSAP's cancel, or an update raising a weapon flag (intake routes it to police)."""
    if how == "cancel":
        return call_cancelled(call_id)
    return call_updated(call_id, "police", reason="safety screen: weapon = yes -> police", weapon="yes")


async def assert_no_team_held_twice(db: Db) -> None:
    """At most one live assignment per call and per team, and no team held by a finished call."""
    live = await db.pool.fetch(
        "SELECT call_id, team_id FROM matching.assignments WHERE status = ANY($1::text[])", list(LIVE)
    )
    assert max(Counter(r["call_id"] for r in live).values(), default=0) <= 1, (
        "a call with two live assignments"
    )
    assert max(Counter(r["team_id"] for r in live).values(), default=0) <= 1, (
        "a team with two live assignments"
    )
    held = await db.pool.fetch(
        "SELECT t.id, c.status FROM matching.teams t JOIN matching.calls c ON c.call_id = t.current_call"
    )
    assert [r for r in held if r["status"] not in ("offered", "assigned")] == [], (
        "a team held by a finished call"
    )


async def test_a_withdrawn_assignment_refuses_the_agencys_accept_and_reports_and_the_agency_hears_it_is_gone(
    settings, db, producer
):
    """The cancel (or weapon update) is applied first, then the agency's accept, en route, on scene and
    cleared for the withdrawn assignment arrive. Each is refused and recorded, the assignment stays
    withdrawn, the team stays free, and a withdrawal of it is on the topic for notify. (Before the
    change en route and on scene made the withdrawn assignment live again and cleared closed the
    cancelled call.)"""
    await load(settings, jurisdiction([team("crew"), team("spare", km_north=3)]))
    async with running_matching(settings, OWN):
        for how in ("cancel", "weapon"):
            call_id, offer = await place_call(producer, settings, db)
            away = take_away(call_id, how)
            await publish(producer, settings, away)
            await db.wait_processed(away)
            late = claims(offer)
            for event in late:
                await publish(producer, settings, event)
            await db.wait_processed(*late)
            [only] = await db.offers(call_id)
            assert only["status"] == "withdrawn", how
            assert await db.call_status(call_id) == ("cancelled" if how == "cancel" else "unassigned"), how
            assert await db.refusals(call_id) == [
                (e.type, "withdrawn", step, "assignment_withdrawn")
                for e, step in zip(late, CLAIMS, strict=True)
            ], how
            assert [await db.team_status(t) for t in ("crew", "spare")] == ["available", "available"], how
            await assert_no_team_held_twice(db)
        withdrawn = await topic_events(settings, topics.ASSIGNMENTS_WITHDRAWN, 2)
        assert sorted(w["reason"] for w in withdrawn) == ["cancelled_by_psap", "withdrawn_by_psap_update"]
        assert all(w["attempt"] == 1 for w in withdrawn)


async def test_a_claim_on_an_expired_offer_is_refused_and_the_agency_is_sent_a_withdrawal(
    settings, db, producer
):
    """Notify expired the offer; an accept and en route for it arrive anyway (notify's and matching's
    records disagree, e.g. restored from different moments). Both are refused and recorded, the next
    team keeps its offer, and matching sends a withdrawal of the expired assignment so the agency
    stops working it. (Before the change en route revived the expired assignment beside the next
    team's offer.)"""
    await load(settings, jurisdiction([team("first", km_north=1), team("second", km_north=2)]))
    async with running_matching(settings, OWN):
        call_id, first = await place_call(producer, settings, db)
        await publish(producer, settings, expired(first))
        await db.wait_offers(call_id, 2)
        late = [responded(first, "accepted"), status_changed(first, "en_route")]
        for event in late:
            await publish(producer, settings, event)
        await db.wait_processed(*late)
        assert [(o["team_id"], o["status"]) for o in await db.offers(call_id)] == [
            ("first", "expired"),
            ("second", "offered"),
        ]
        assert sorted(await db.refusals(call_id)) == [
            (topics.ASSIGNMENTS_RESPONDED, "expired", "accepted", "assignment_expired"),
            (topics.ASSIGNMENTS_STATUS_CHANGED, "expired", "en_route", "assignment_expired"),
        ]
        assert await db.team_status("first") == "available" and await db.team_status("second") == "offered"
        # Once, however many claims were refused: the agency hears it one time.
        withdrawn = await topic_events(settings, topics.ASSIGNMENTS_WITHDRAWN, 2, 5)
        assert [(w["assignment_id"], w["reason"], w["attempt"]) for w in withdrawn] == [
            (first["assignment_id"], "assignment_not_live", 1)
        ]


async def test_a_cleared_call_is_never_changed_back_by_a_late_cancel_or_update(settings, db, producer):
    """The whole job is applied, then the PSAP's cancel and a weapon update arrive: both are refused
    and recorded, the call stays closed and nobody is told anything. (Before the change the cancel
    turned the closed call into a cancelled one.)"""
    await load(settings, jurisdiction([team("crew")]))
    async with running_matching(settings, OWN):
        call_id, offer = await place_call(producer, settings, db)
        job = claims(offer)
        for event in job:
            await publish(producer, settings, event)
        await db.wait_call(call_id, "closed")
        late = [take_away(call_id, "cancel"), take_away(call_id, "weapon")]
        for event in late:
            await publish(producer, settings, event)
        await db.wait_processed(*late)
        assert await db.call_status(call_id) == "closed"
        # Two topics: the two may be read in either order.
        assert sorted(await db.refusals(call_id)) == [
            (topics.CALLS_CANCELLED, "closed", "cancel", "call_closed"),
            (topics.CALLS_UPDATED, "closed", "hand_back", "call_closed"),
        ]
        assert await db.team_status("crew") == "available"
        assert await topic_events(settings, topics.CALLS_UNASSIGNED, 1, 3) == []
        assert await topic_events(settings, topics.ASSIGNMENTS_WITHDRAWN, 1, 3) == []


async def test_many_cancels_and_weapon_updates_racing_accepts_never_leave_two_live_assignments(
    settings, db, producer
):
    """30 calls over 10 teams; for each, a cancel or weapon update and the agency's whole job are
    published at once from concurrent tasks (three topics, read in any order), while freed teams are
    offered the next calls. Afterwards no call or team has two live assignments, every team is free,
    no finished call holds a team, and every withdrawn assignment's agency was sent a withdrawal.
    (Before the change withdrawn assignments came back as en route or on scene beside the team's
    next offer.)"""
    teams, calls = 10, 30
    await load(settings, jurisdiction([team(f"t-{i:02}", km_north=0.1 * i) for i in range(teams)]))
    rng = random.Random(12)
    async with running_matching(settings, OWN):
        offers: dict[str, dict[str, Any]] = {}
        sent: list[Envelope] = []

        async def race(i: int) -> None:
            call_id, offer = await place_call(producer, settings, db)
            offers[call_id] = offer
            away = take_away(call_id, "cancel" if i % 2 else "weapon")
            job = claims(offer)
            sent.extend([away, *job])

            async def send_job() -> None:
                for event in job:
                    await publish(producer, settings, event)
                    await asyncio.sleep(rng.random() * 0.02)

            async def send_away() -> None:
                await asyncio.sleep(rng.random() * 0.05)
                await publish(producer, settings, away)

            await asyncio.gather(send_job(), send_away())

        # Ten at a time: each takes one of the ten teams, and the next ones find them freed.
        for start in range(0, calls, teams):
            await asyncio.gather(*(race(i) for i in range(start, start + teams)))
            await db.wait_processed(*sent)
            await assert_no_team_held_twice(db)
        # Every withdrawal matching made; fewer than `calls` come, so the read ends by its timeout.
        withdrawn = {
            w["assignment_id"] for w in await topic_events(settings, topics.ASSIGNMENTS_WITHDRAWN, calls, 10)
        }
        statuses: Counter[str] = Counter()
        for call_id, offer in offers.items():
            [only] = await db.offers(call_id)
            statuses[only["status"]] += 1
            if offer["assignment_id"] in withdrawn:
                # Withdrawn stays withdrawn whatever of the job came after, and that was refused.
                assert only["status"] == "withdrawn", only
                assert {r[1] for r in await db.refusals(call_id)} <= {"withdrawn"}
            else:
                # The whole job came first: the cancel or update found the call closed, refused.
                assert only["status"] == "cleared", only
                assert await db.call_status(call_id) == "closed"
                assert [r[3] for r in await db.refusals(call_id)] == ["call_closed"]
        assert statuses["withdrawn"] + statuses["cleared"] == calls
        held = await db.pool.fetch(
            "SELECT id FROM matching.teams WHERE status <> 'available' OR current_call IS NOT NULL"
        )
        assert held == [], "every team ends free"


async def test_a_cancel_read_before_its_call_makes_the_call_start_cancelled_and_it_is_never_offered(
    settings, db, producer
):
    """Ten calls whose cancel is consumed before their `calls.received.v1` (published first, 20 ms
    apart): every call is stored cancelled and none is offered. (Before the change the cancel of an
    unknown call was dropped and all ten were offered.)"""
    await load(settings, jurisdiction([team("crew"), team("spare", km_north=2)]))
    async with running_matching(settings, OWN):
        ids = [new_call_id() for _ in range(10)]
        cancels = [call_cancelled(c) for c in ids]
        for event in cancels:
            await publish(producer, settings, event)
            await asyncio.sleep(0.02)
        await db.wait_processed(*cancels)
        received = [call_received(c) for c in ids]
        for event in received:
            await publish(producer, settings, event)
        await db.wait_processed(*received)
        for call_id in ids:
            assert await db.call_status(call_id) == "cancelled"
            assert await db.offers(call_id) == []
        assert [await db.team_status(t) for t in ("crew", "spare")] == ["available", "available"]
        # The roster still serves a call nobody cancelled.
        _, offer = await place_call(producer, settings, db)
        assert offer["team_id"] == "crew"


async def test_an_update_read_before_its_call_is_not_lost(settings, db, producer):
    """`calls.updated.v1` consumed before `calls.received.v1`: an update routing the call away (weapon
    raised) keeps the late, older received call from being offered and the PSAP gets the hand-back
    the events in order would have given; a newer update routing it back to community (still before
    the received call) places it with the update's details, once. (Before the change the
    routed-away update was dropped and the late received call offered.)"""
    await load(settings, jurisdiction([team("crew")]))
    async with running_matching(settings, OWN):
        away_id, back_id = new_call_id(), new_call_id()
        first = [take_away(away_id, "weapon"), take_away(back_id, "weapon")]
        for event in first:
            await publish(producer, settings, event)
        await db.wait_processed(*first)
        late = [call_received(away_id)]
        await publish(producer, settings, late[0])
        await db.wait_processed(*late)
        assert await db.offers(away_id) == []
        assert await db.call_status(away_id) == "unassigned"
        assert await db.hand_back_reason(away_id) == "withdrawn_by_psap_update"
        assert await db.team_status("crew") == "available"
        [back] = await topic_events(settings, topics.CALLS_UNASSIGNED, 1)
        assert (back["call_id"], back["reason_code"], back["attempts"]) == (
            away_id,
            "withdrawn_by_psap_update",
            0,
        )

        override = call_updated(back_id, "community", reason="override by the call-taker", weapon="yes")
        await publish(producer, settings, override)
        [offer] = await db.wait_offers(back_id, 1)
        assert offer["team_id"] == "crew"
        # The older received call, read last, changes nothing: the raised flag holds in the offer.
        older = call_received(back_id)
        await publish(producer, settings, older)
        await db.wait_processed(older)
        assert len(await db.offers(back_id)) == 1
        safety = await db.pool.fetchval(
            "SELECT offer->'safety'->>'weapon' FROM matching.calls WHERE call_id = $1::uuid", back_id
        )
        assert safety == "yes"
