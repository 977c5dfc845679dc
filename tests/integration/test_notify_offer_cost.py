"""What one offer costs notify in PostgreSQL, and that the statements folded still do all they did:
the assignment stored once, the feed entry counted, the event queued for the agency's topic."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest

from services.notify import handlers, repository
from shared import events, topics
from shared.db import create_pool, migrate
from shared.envelope import Envelope, new_event, utcnow
from shared.settings import Settings
from tests.integration.notify_system import CLEAR, jurisdiction, team_of

pytestmark = pytest.mark.integration

MIGRATIONS = Path(__file__).parents[2] / "services" / "notify" / "migrations"


@pytest.fixture
async def pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(settings.database_url.get_secret_value())
    await migrate(pool, "notify", [MIGRATIONS])
    async with pool.acquire() as conn:
        await repository.load_jurisdiction(conn, jurisdiction([{"id": "north"}]))
    yield pool
    await pool.close()


def _offer() -> tuple[Envelope, events.AssignmentOffered]:
    call_id = str(uuid.uuid4())
    payload = events.AssignmentOffered.model_validate(
        {
            "assignment_id": str(uuid.uuid4()),
            "call_id": call_id,
            "agency_id": "north",
            "team_id": team_of("north"),
            "attempt": 1,
            "deadline": utcnow() + timedelta(minutes=2),
            "offer": {
                "location": {"lat": 44.05, "lon": -123.09, "address": "100 W 10th Ave"},
                "presenting_problem": "MNTL",
                "safety": CLEAR,
                "callback_number": "+15415550123",
            },
        }
    )
    return new_event(topics.ASSIGNMENTS_OFFERED, "matching", call_id, payload), payload


async def _statements(pool: asyncpg.Pool, event: Envelope, offer: events.AssignmentOffered) -> list[str]:
    """The statements on_offered sends, in the consumer's kind of transaction."""
    sent: list[str] = []

    def logged(record: asyncpg.connection.LoggedQuery) -> None:
        sent.append(record.query)

    async with pool.acquire() as conn, conn.transaction():
        conn.add_query_logger(logged)
        try:
            await handlers.on_offered(conn, event, offer)
        finally:
            conn.remove_query_logger(logged)
    return sent


async def test_an_offer_costs_three_statements_and_a_repeat_one_fewer(pool: asyncpg.Pool):
    """Lock and read the agency; store the assignment; the feed entry and the agency's event.
    (Before: five, the agency read again after its lock and the event queued on its own.)"""
    event, offer = _offer()
    assert len(await _statements(pool, event, offer)) == 3
    assert len(await _statements(pool, event, offer)) == 2  # already stored: nothing sent again
    [stored] = await pool.fetch("SELECT status FROM notify.assignments")
    assert stored["status"] == "offered"
    feed = await pool.fetch(
        "SELECT seq, kind, data->>'notification_id' AS notification_id FROM notify.feed"
        " WHERE agency_id = 'north'"
    )
    assert [(f["seq"], f["kind"]) for f in feed] == [(1, "offered")]
    assert await pool.fetchval("SELECT feed_seq FROM notify.agencies WHERE id = 'north'") == 1
    [queued] = await pool.fetch("SELECT topic, key, value, headers FROM notify.outbox")
    assert (queued["topic"], queued["key"]) == (topics.agency_topic("north"), offer.call_id)
    sent = Envelope.from_bytes(bytes(queued["value"]))
    assert sent.data["assignment_id"] == offer.assignment_id and sent.data["kind"] == "offered"
    assert feed[0]["notification_id"] == str(sent.id)
    assert queued["headers"]["careroute-page"] == "1"
