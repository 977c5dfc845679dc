"""A time to commit: a call no team accepted within the jurisdiction's `commit_within` of its 202 goes
back to its PSAP whatever attempts remain, its offers cut to fit, also across a restart of matching."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import partial

import pytest

from services.matching.settings import MatchingSettings
from services.notify.settings import NotifySettings
from shared import topics
from shared.kafka import make_producer
from tests.integration.matching_harness import (
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
from tests.support import TEST_SETTINGS, eventually
from tools import infra
from tools.system import System

pytestmark = pytest.mark.integration

COMMIT_WITHIN_S = 10
# Offers would last two minutes and three teams may be tried: only the budget ends the call's wait.
OWN = MatchingSettings(max_attempts=3, offer_timeout_s=120, offer_floor_s=1)
FAST = NotifySettings(repage_every_s=3600, expiry_interval_s=0.2)


async def test_a_call_no_team_accepts_in_time_is_handed_back_once_across_a_restart_of_matching(
    settings, db, producer
):
    """The first team never answers; matching is stopped while the budget runs and started again
    after it ran out. Notify expires the offer at its deadline, cut from 120 s to the call's time
    to commit; matching, back, hands the call back `no_acceptance_in_time` once, with two teams
    never offered. (Before the change the offer kept its 120 s and the second team was offered next.)"""
    teams = [team("first", km_north=1), team("second", km_north=2), team("third", km_north=3)]
    j = jurisdiction(teams, matching={"version": "m1", "commit_within": COMMIT_WITHIN_S})
    await load(settings, j)
    async with running_notify(settings, j, FAST) as notify:
        call_id = new_call_id()
        received = call_received(call_id)
        received_at = datetime.fromisoformat(received.data["received_at"])
        async with running_matching(settings, OWN):
            await publish(producer, settings, received)
            [offer] = await db.wait_offers(call_id, 1)
            await eventually(partial(notify.status, offer["assignment_id"]), lambda s: s == "offered")
        # Matching is down; the offer's deadline is the budget's end, not two minutes away.
        deadline = await db.pool.fetchval(
            "SELECT deadline FROM matching.assignments WHERE id = $1::uuid", offer["id"]
        )
        assert deadline <= received_at + timedelta(seconds=COMMIT_WITHIN_S)
        await eventually(
            partial(notify.status, offer["assignment_id"]), lambda s: s == "expired", timeout_s=30
        )
        async with running_matching(settings, OWN):
            await db.wait_call(call_id, "unassigned")
            assert await db.hand_back_reason(call_id) == "no_acceptance_in_time"
            assert [(o["team_id"], o["status"]) for o in await db.offers(call_id)] == [("first", "expired")]
        backs = [
            b for b in await topic_events(settings, topics.CALLS_UNASSIGNED, 2, 3) if b["call_id"] == call_id
        ]
        assert len(backs) == 1
        assert backs[0]["reason_code"] == "no_acceptance_in_time" and backs[0]["attempts"] == 1
        assert await db.team_status("second") == "available" and await db.team_status("first") == "available"


async def test_a_call_read_after_its_time_to_commit_ran_out_is_handed_back_unoffered(settings, db, producer):
    """A call whose `calls.received.v1` matching reads past its budget (matching was down) is never
    offered: its PSAP has waited long enough, and hears at once."""
    j = jurisdiction([team("first")], matching={"version": "m1", "commit_within": COMMIT_WITHIN_S})
    await load(settings, j)
    call_id = new_call_id()
    late = call_received(call_id)
    stale = (datetime.fromisoformat(late.data["received_at"]) - timedelta(seconds=60)).isoformat()
    late = late.model_copy(update={"data": {**late.data, "received_at": stale}})
    async with running_matching(settings, OWN):
        await publish(producer, settings, late)
        await db.wait_call(call_id, "unassigned")
        assert await db.hand_back_reason(call_id) == "no_acceptance_in_time"
        assert await db.offers(call_id) == []


async def test_a_matching_process_killed_while_the_budget_runs_still_hands_the_call_back_once(
    stack: infra.InfraEndpoints,
):
    """The same with matching and notify as their own processes and matching SIGKILLed (nothing
    flushed, nothing said) while the offer is open, and started again once notify expired it."""
    j = jurisdiction(
        [team("first", km_north=1), team("second", km_north=2)],
        matching={"version": "m1", "commit_within": COMMIT_WITHIN_S},
    )
    env = {"MATCHING_OFFER_FLOOR_S": "1", "NOTIFY_EXPIRY_INTERVAL_S": "0.2", "NOTIFY_REPAGE_EVERY_S": "3600"}
    async with (
        System.start(
            stack,
            ["matching", "notify"],
            jurisdiction=j,
            mode="per-service",
            settings=TEST_SETTINGS,
            env=env,
            prefix="budget",
        ) as system,
        system.pool() as pool,
    ):
        producer = make_producer(system.settings)
        await producer.start()
        try:
            call_id = new_call_id()
            await publish(producer, system.settings, call_received(call_id))
        finally:
            await producer.stop()

        async def state(sql: str) -> str | None:
            return await pool.fetchval(sql, call_id)

        notify_state = partial(state, "SELECT status FROM notify.assignments WHERE call_id = $1::uuid")
        await eventually(notify_state, lambda s: s == "offered", what="the offer at notify")
        system.kill("matching")
        await eventually(notify_state, lambda s: s == "expired", timeout_s=30, what="notify's expiry")
        system.spawn("matching")
        await system.wait_ready()
        await eventually(
            partial(state, "SELECT status FROM matching.calls WHERE call_id = $1::uuid"),
            lambda s: s == "unassigned",
            what="the hand-back",
        )
        backs = await topic_events(system.settings, topics.CALLS_UNASSIGNED, 2, 3)
        assert [(b["call_id"], b["reason_code"]) for b in backs] == [(call_id, "no_acceptance_in_time")]
        offered = await pool.fetch(
            "SELECT team_id FROM matching.assignments WHERE call_id = $1::uuid", call_id
        )
        assert [r["team_id"] for r in offered] == ["first"]
