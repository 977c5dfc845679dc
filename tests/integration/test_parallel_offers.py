"""Parallel offers on the real broker and PostgreSQL: a jurisdiction that asks for them offers a call
to its best few free teams at once; the first to accept through notify gets it, a second accept is
answered 409 `call_taken`, the other offers are withdrawn and their teams freed; a short budget
turns parallel offers on; two matching processes never double-book a team."""

from __future__ import annotations

import asyncio
from collections import Counter
from functools import partial

import pytest

from services.matching.settings import MatchingSettings
from services.notify.settings import NotifySettings
from shared import topics
from shared.db import create_pool
from shared.kafka import make_producer
from tests.integration.matching_harness import (
    AGENCY_TOKENS,
    call_received,
    jurisdiction,
    load,
    new_call_id,
    publish,
    running_matching,
    team,
    topic_events,
)
from tests.integration.notify_system import running_notify
from tests.support import eventually
from tools import infra
from tools.psap import bearer
from tools.system import System

pytestmark = pytest.mark.integration

OWN = MatchingSettings(max_attempts=3, offer_timeout_s=120, offer_floor_s=1)
FAST = NotifySettings(repage_every_s=3600, expiry_interval_s=0.2)
THREE_AT_ONCE = {"version": "m1", "parallel_offers": {"teams": 3}}


async def test_three_teams_are_offered_at_once_and_the_first_to_accept_gets_the_call(settings, db, producer):
    """Four teams cover the call; the three nearest are offered it in one attempt. With matching
    stopped, `first` accepts (200) and `second`'s accept is refused 409 `call_taken`; matching, back,
    assigns `first`, withdraws the two others (`accepted_by_another_team`, each agency told on the
    bus) and frees their teams. (Before the change one team was offered, and a second was offered
    only after the first's deadline.)"""
    teams = [
        team("first", km_north=1),
        team("second", agency="south", km_north=2),
        team("third", km_north=3),
        team("fourth", agency="south", km_north=4),
    ]
    j = jurisdiction(teams, matching=THREE_AT_ONCE)
    await load(settings, j)
    async with running_notify(settings, j, FAST) as notify:
        call_id = new_call_id()
        async with running_matching(settings, OWN):
            await publish(producer, settings, call_received(call_id))
            offers = await db.wait_offers(call_id, 3)
            for o in offers:
                await eventually(partial(notify.status, o["assignment_id"]), lambda s: s == "offered")
        by_team = {o["team_id"]: o for o in offers}
        assert sorted(by_team) == ["first", "second", "third"]
        assert {o["attempt"] for o in offers} == {1}
        shared = await db.pool.fetch(
            "SELECT offered_with FROM matching.assignments WHERE call_id = $1::uuid", call_id
        )
        assert [r["offered_with"] for r in shared] == [3, 3, 3]
        async with notify.http() as http:
            r = await http.post(
                f"/v1/assignments/{by_team['first']['assignment_id']}/accept",
                headers=bearer(AGENCY_TOKENS["north"]),
            )
            assert r.status_code == 200 and r.json()["status"] == "accepted", r.text
            r = await http.post(
                f"/v1/assignments/{by_team['second']['assignment_id']}/accept",
                headers=bearer(AGENCY_TOKENS["south"]),
            )
            assert r.status_code == 409 and r.json()["code"] == "call_taken", r.text
        assert await notify.status(by_team["second"]["assignment_id"]) == "offered"
        async with running_matching(settings, OWN):
            await db.wait_call(call_id, "assigned")
            for loser in ("second", "third"):
                await eventually(
                    partial(notify.status, by_team[loser]["assignment_id"]),
                    lambda s: s == "withdrawn",
                    what=f"{loser}'s offer withdrawn at notify",
                )
            ended = {(o["team_id"], o["status"], o["reason"]) for o in await db.offers(call_id)}
            assert ended == {
                ("first", "accepted", None),
                ("second", "withdrawn", "accepted_by_another_team"),
                ("third", "withdrawn", "accepted_by_another_team"),
            }
            assert await db.team_status("first") == "assigned"
            for freed in ("second", "third", "fourth"):
                assert await db.team_status(freed) == "available"
        withdrawn = await topic_events(settings, topics.ASSIGNMENTS_WITHDRAWN, 2)
        assert sorted(w["team_id"] for w in withdrawn) == ["second", "third"]
        assert {w["offered_with"] for w in withdrawn} == {3}


async def test_a_short_budget_turns_parallel_offers_on_and_a_decline_waits_for_the_others(
    settings, db, producer
):
    """A 14 s budget, parallel offers of 2 teams once under 9 s are left, offers of 5 s. The first
    attempt (14 s left) offers `t1` alone; it expires, and the second (about 9 s left) offers `t2`
    and `t3` at once. `t2` declines: no offer is made while `t3` may still accept. `t3` declines:
    the third attempt offers `t4` and `t5` at once."""
    teams = [team(f"t{n}", km_north=n) for n in range(1, 6)]
    rules = {"version": "m1", "commit_within": 14, "parallel_offers": {"teams": 2, "below_s": 9.5}}
    j = jurisdiction(teams, matching=rules)
    await load(settings, j)
    short = OWN.model_copy(update={"offer_timeout_s": 5})
    north = bearer(AGENCY_TOKENS["north"])

    async def decline(http, offer) -> None:
        await eventually(partial(notify.status, offer["assignment_id"]), lambda s: s == "offered")
        r = await http.post(
            f"/v1/assignments/{offer['assignment_id']}/decline",
            headers=north,
            json={"reason_code": "no_capacity"},
        )
        assert r.status_code == 200, r.text

    async with running_notify(settings, j, FAST) as notify, running_matching(settings, short):
        call_id = new_call_id()
        await publish(producer, settings, call_received(call_id))
        [alone] = await db.wait_offers(call_id, 1)
        assert alone["team_id"] == "t1"
        offers = await db.wait_offers(call_id, 3)
        pair = [o for o in offers if o["attempt"] == 2]
        assert sorted(o["team_id"] for o in pair) == ["t2", "t3"]
        async with notify.http() as http:
            await decline(http, pair[0])
            await eventually(
                lambda: db.pool.fetchval(
                    "SELECT status FROM matching.assignments WHERE id = $1::uuid", pair[0]["id"]
                ),
                lambda s: s == "declined",
            )
            await asyncio.sleep(1)  # time for a wrong offer to show
            assert len(await db.offers(call_id)) == 3
            await decline(http, pair[1])
        offers = await db.wait_offers(call_id, 5)
        assert sorted(o["team_id"] for o in offers if o["attempt"] == 3) == ["t4", "t5"]


async def test_two_matching_processes_offering_in_parallel_never_double_book_a_team(
    stack: infra.InfraEndpoints,
):
    """Two matching processes share the group; 30 calls at once, each offered to 3 teams at once,
    and 10 teams: at every moment a team holds at most one call (its capacity), and every call is
    offered or handed back."""
    calls = 30
    teams = [team(f"t{n:02d}", km_north=n / 10) for n in range(10)]
    j = jurisdiction(teams, matching=THREE_AT_ONCE)
    async with System.start(
        stack,
        ["matching", "matching-2"],
        jurisdiction=j,
        mode="per-service",
        settings={"kafka_session_timeout_ms": 3000, "log_json": False},
        env={"MATCHING_OFFER_TIMEOUT_S": "120"},
        prefix="parallel",
    ) as system:
        pool = await create_pool(system.settings.database_url.get_secret_value(), max_size=2)
        producer = make_producer(system.settings)
        await producer.start()
        try:
            ids = [new_call_id() for _ in range(calls)]
            await asyncio.gather(*(publish(producer, system.settings, call_received(c)) for c in ids))

            async def settled() -> int:
                return await pool.fetchval(
                    "SELECT count(*) FROM matching.calls WHERE status IN ('offered', 'unassigned')"
                )

            await eventually(settled, lambda n: n == calls, timeout_s=60, what="every call placed")
            live = await pool.fetch("SELECT team_id FROM matching.assignments WHERE status = 'offered'")
            per_team = Counter(r["team_id"] for r in live)
            assert per_team and max(per_team.values()) == 1, per_team
            held = await pool.fetch("SELECT id, held FROM matching.teams")
            assert all(r["held"] == per_team.get(r["id"], 0) for r in held)
            assert sum(per_team.values()) <= len(teams)
        finally:
            await producer.stop()
            await pool.close()
