"""The inbox: an event id recorded in the same transaction as its effect, so redelivery is a no-op."""

from __future__ import annotations

import asyncpg

from shared.db import check_identifier
from shared.envelope import Envelope


async def claim(conn: asyncpg.Connection, schema: str, events: list[Envelope]) -> set[str]:
    """Record events as processed in the caller's transaction, in one statement; the ids of those
    that were not already (a redelivered event's effect is then skipped)."""
    rows = await conn.fetch(
        f"INSERT INTO {check_identifier(schema)}.processed_events (event_id, event_type)"
        " SELECT * FROM unnest($1::uuid[], $2::text[]) ON CONFLICT (event_id) DO NOTHING"
        " RETURNING event_id::text",
        [e.id for e in events],
        [e.type for e in events],
    )
    return {r[0] for r in rows}
