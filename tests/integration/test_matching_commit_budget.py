"""A time to commit: a call no team accepted within the jurisdiction's `commit_within` of its 202 goes
back to its PSAP whatever attempts remain, its offers cut to fit, also across a restart of matching."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import partial

import pytest

from services.matching.settings import MatchingSettings
from services.notify.settings import NotifySettings
from shared import topics
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
from tests.support import eventually

pytestmark = pytest.mark.integration

COMMIT_WITHIN_S = 6
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
            partial(notify.status, offer["assignment_id"]), lambda s: s == "expired", timeout_s=20
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
