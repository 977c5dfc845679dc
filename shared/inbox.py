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


async def claim_unless_parked(
    conn: asyncpg.Connection, schema: str, group: str, events: list[Envelope]
) -> set[str] | None:
    """`claim`, unless a subject of `events` is parked by an open dead letter of `group`
    (`shared.dead_letters`): then None and nothing claimed. One statement, so checking the park
    costs a run no round trip."""
    s = check_identifier(schema)
    rows = await conn.fetch(
        f"WITH parked AS (SELECT 1 FROM {s}.dead_letters WHERE resumed_at IS NULL"
        "  AND consumer_group = $3 AND subject = ANY($4::text[]) LIMIT 1),"
        f" claimed AS (INSERT INTO {s}.processed_events (event_id, event_type)"
        "  SELECT * FROM unnest($1::uuid[], $2::text[]) WHERE NOT EXISTS (SELECT 1 FROM parked)"
        "  ON CONFLICT (event_id) DO NOTHING RETURNING event_id::text)"
        " SELECT event_id FROM claimed UNION ALL SELECT NULL FROM parked",
        [e.id for e in events],
        [e.type for e in events],
        group,
        sorted({e.subject for e in events}),
    )
    if any(r[0] is None for r in rows):
        return None
    return {r[0] for r in rows}
