"""The inbox: an event id recorded in the same transaction as its effect, so redelivery is a no-op."""

from __future__ import annotations

import asyncpg

from shared.db import check_identifier
from shared.envelope import Envelope


async def claim(conn: asyncpg.Connection, schema: str, event: Envelope) -> bool:
    """Record `event` as processed in the caller's transaction; False when it already was."""
    inserted = await conn.fetchval(
        f"INSERT INTO {check_identifier(schema)}.processed_events (event_id, event_type)"
        " VALUES ($1, $2) ON CONFLICT (event_id) DO NOTHING RETURNING true",
        event.id,
        event.type,
    )
    return bool(inserted)


async def claim_many(conn: asyncpg.Connection, schema: str, events: list[Envelope]) -> set[str]:
    """Record a run of events as processed in one statement; the ids that were not already."""
    rows = await conn.fetch(
        f"INSERT INTO {check_identifier(schema)}.processed_events (event_id, event_type)"
        " SELECT * FROM unnest($1::uuid[], $2::text[]) ON CONFLICT (event_id) DO NOTHING"
        " RETURNING event_id::text",
        [e.id for e in events],
        [e.type for e in events],
    )
    return {r[0] for r in rows}
