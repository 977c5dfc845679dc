"""What matching and notify do, in the dead-letter transaction, about an event that can never be
processed: the call is handed back, or the offer expired, so nothing waits on it forever."""

from __future__ import annotations

import json
from functools import partial
from typing import Any

import asyncpg
import pytest

from services.matching import handlers as matching_handlers
from services.matching.matcher import Matcher
from services.matching.settings import MatchingSettings
from services.notify import handlers as notify_handlers
from services.notify.settings import NotifySettings
from shared import topics
from shared.settings import Settings
from tests.integration.matching_harness import (
    jurisdiction,
    load,
    place_call,
    publish,
    responded,
    running_matching,
    team,
)
from tests.integration.notify_system import jurisdiction as notify_jurisdiction
from tests.integration.notify_system import running_notify
from tests.support import eventually

pytestmark = pytest.mark.integration


async def outbox(pool: asyncpg.Pool, schema: str, topic: str, call_id: str) -> list[dict[str, Any]]:
    """The payloads a service wrote for a call to a topic."""
    rows = await pool.fetch(
        f"SELECT value FROM {schema}.outbox WHERE topic = $1 AND key = $2 ORDER BY id", topic, call_id
    )
    return [json.loads(bytes(r["value"]))["data"] for r in rows]


async def test_matchings_hook_hands_a_live_call_back_and_frees_its_team(settings, db, producer):
    """A dead-lettered event of a call with an accepted team: the assignment is withdrawn
    (processing_failed), the team is free, the PSAP gets calls.unassigned.v1 with the attempts; a
    finished call is left alone. (Before the change there was no hook: the team stayed held.)"""
    await load(settings, jurisdiction([team("crew")]))
    matcher = Matcher()
    async with running_matching(settings, MatchingSettings()):
        call_id, offer = await place_call(producer, settings, db)
        accept = responded(offer, "accepted")
        await publish(producer, settings, accept)
        await db.wait_call(call_id, "assigned")
        async with db.pool.acquire() as conn, conn.transaction():
            await matching_handlers.on_dead_letter(matcher, conn, accept)
        assert await db.call_status(call_id) == "unassigned"
        assert await db.team_status("crew") == "available"
        [only] = await db.offers(call_id)
        assert (only["status"], only["reason"]) == ("withdrawn", "processing_failed")
        [withdrawn] = await outbox(db.pool, "matching", topics.ASSIGNMENTS_WITHDRAWN, call_id)
        assert (withdrawn["reason"], withdrawn["attempt"]) == ("processing_failed", 1)
        [back] = await outbox(db.pool, "matching", topics.CALLS_UNASSIGNED, call_id)
        assert (back["reason_code"], back["attempts"]) == ("processing_failed", 1)
        assert await db.hand_back_reason(call_id) == "processing_failed"
        # Again, on the call now finished: nothing more.
        async with db.pool.acquire() as conn, conn.transaction():
            await matching_handlers.on_dead_letter(matcher, conn, accept)
        assert len(await outbox(db.pool, "matching", topics.CALLS_UNASSIGNED, call_id)) == 1


async def test_notifys_hook_expires_an_offer_it_could_not_take_so_matching_moves_on(settings: Settings):
    """An offer notify stored and one it never could: both are expired by notify
    (assignments.expired.v1 with the attempt), and the one never stored is not delivered if it is
    replayed later. (Before the change there was no hook: matching waited on the offer until a
    deadline nobody would act on.)"""
    async with running_notify(settings, notify_jurisdiction([{"id": "north"}]), NotifySettings()) as notify:
        stored = await notify.offer("north")
        await eventually(partial(notify.status, stored.assignment_id), lambda s: s == "offered")
        never = await notify.offer("north", publish=False)
        for offer in (stored, never):
            async with notify.pool.acquire() as conn, conn.transaction():
                await notify_handlers.on_dead_letter(conn, offer.event)
            [expiry] = await outbox(notify.pool, "notify", topics.ASSIGNMENTS_EXPIRED, offer.call_id)
            assert (expiry["assignment_id"], expiry["attempt"]) == (offer.assignment_id, 1)
        assert await notify.status(stored.assignment_id) == "expired"
        await notify.publish(topics.ASSIGNMENTS_OFFERED, never.event)
        await eventually(partial(notify.status, never.assignment_id), lambda s: s == "expired")
        sent = await notify.pool.fetch(
            "SELECT kind FROM notify.feed WHERE assignment_id = $1::uuid", never.assignment_id
        )
        assert sent == [], "an offer expired before it arrived is never delivered"
